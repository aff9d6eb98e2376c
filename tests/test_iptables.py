"""The iptables target without a kernel: its lexical helpers, its dispatch tree, and
``npc compile --target iptables`` through the command line."""

from __future__ import annotations

import random
import re
from pathlib import Path

import netaddr
import pytest

import npc
from npc.backends.grants import cidr_blocks
from npc.backends.iptables import syntax
from npc.backends.iptables.dispatch import FANOUT, dispatch_tree, join_runs
from npc.cli import main

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "golden"
APP = GOLDEN / "seed002-testing-app"
APP_FILES = ("-f", str(APP / "input.yaml"), "-f", str(APP / "cluster.yaml"))
DUAL = GOLDEN / "dualstack-named-ports"
DUAL_FILES = ("-f", str(DUAL / "input.yaml"), "-f", str(DUAL / "cluster.yaml"))
MARKER = "#### npc: what follows is PATH.ipset (npc compile -o PATH writes it there) ####\n"


def _run(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(["--color", "never", *args])
    out, err = capsys.readouterr()
    return status, out, err


# -- syntax -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "quoted"),
    [
        ("ns/policy", '"ns/policy"'),
        ('a "quoted" \\ word', '"a _quoted_ _ word"'),
        ("new\nline\ttab", '"new_line_tab"'),
        ("x" * 300, '"' + "x" * 252 + '..."'),
        ("", '"_"'),
    ],
)
def test_comments_need_no_escapes_and_fit_the_comment_match(text: str, quoted: str) -> None:
    got = syntax.comment(text)
    assert got == quoted
    assert len(got.encode()) - 2 <= syntax.COMMENT_MAX


def test_names_fit_the_kernel_limits_and_are_stable() -> None:
    chain = syntax.chain_name("IT", "6 " + "f" * 500)
    assert chain.startswith("NPC-IT-") and len(chain) <= syntax.CHAIN_MAX
    assert chain == syntax.chain_name("IT", "6 " + "f" * 500)
    assert len(syntax.set_name(6, "x")) <= syntax.SET_MAX
    assert syntax.is_own(chain) and not syntax.is_own("KUBE-ROUTER-FORWARD")


def test_blocks_are_spelled_like_iptables_save_and_ipset_save() -> None:
    assert syntax.block(4, 0x0A000001, 0x0A000001) == "10.0.0.1/32"
    assert syntax.set_entry(4, 0x0A000001, 0x0A000001) == "10.0.0.1"
    assert syntax.block(6, 0xFD << 120, (0xFD << 120) + (1 << 120) - 1) == "fd00::/8"
    with pytest.raises(ValueError, match="not a CIDR block"):
        syntax.block(4, 1, 2)
    with pytest.raises(ValueError, match="/0"):
        syntax.set_entry(4, 0, 2**32 - 1)  # hash:net refuses a /0


@pytest.mark.parametrize("seed", range(20))
def test_multiport_groups_never_exceed_fifteen_ports(seed: int) -> None:
    rng = random.Random(seed)
    ranges = sorted({(p, p + rng.choice([0, 0, 3])) for p in rng.sample(range(1, 60000, 10), 40)})
    groups = syntax.multiport_groups(ranges)
    assert [r for g in groups for r in g] == ranges
    for group in groups:
        assert sum(1 if a == b else 2 for a, b in group) <= syntax.MULTIPORT_MAX


# -- the dispatch tree ------------------------------------------------------------------------


def _walk(chains: dict[str, tuple[str, ...]], root: str, address: int, version: int) -> str | None:
    """Where a packet from ``address`` ends up: every jump is a goto, so a match on a tree
    chain continues there and a match on anything else is the answer."""
    chain = root
    while True:
        for rule in chains[chain]:
            option, block, goto, target = rule.split()
            assert option == "-s" and goto == "-g"
            if netaddr.IPAddress(address, version) in netaddr.IPNetwork(block):
                if target not in chains:
                    return target
                chain = target
                break
        else:
            return None


@pytest.mark.parametrize("version", [4, 6])
@pytest.mark.parametrize("seed", range(15))
def test_the_tree_sends_every_address_to_its_chain_and_no_other(seed: int, version: int) -> None:
    rng = random.Random(seed)
    bits = 32 if version == 4 else 128
    base = (10 << 24) if version == 4 else (0xFD << 120)
    spread = rng.choice([300, 5000, 1 << 20])
    addresses = sorted(rng.sample(range(base, base + spread), rng.randint(1, 250)))
    targets = [(a, f"class{rng.randrange(1, 4) if rng.random() < 0.7 else 0}") for a in addresses]
    blocks = join_runs(targets, bits)
    tree = dispatch_tree("ROOT", version, "-s", blocks, lambda lo, length: f"T-{lo:x}-{length}")
    chains = {c.name: c.rules for c in tree}
    assert tree[0].name == "ROOT" and len(chains) == len(tree)
    for address, chain in targets:
        assert _walk(chains, "ROOT", address, version) == chain
    wanted = {a for a, _ in targets}
    for other in rng.sample(range(base - 10, base + spread + 10), 200):
        if other not in wanted:
            assert _walk(chains, "ROOT", other, version) is None
    for rules in chains.values():  # no chain makes a packet walk a long list
        assert len(rules) <= 2 * FANOUT
    if len(blocks) > FANOUT:
        assert len(chains["ROOT"]) <= FANOUT


def test_runs_of_one_class_become_blocks() -> None:
    targets = [(a, "c") for a in range(16, 32)] + [(40, "c"), (41, "d")]
    assert join_runs(targets, 32) == [((16, 31), "c"), ((40, 40), "c"), ((41, 41), "d")]
    assert cidr_blocks(16, 31, 32) == [(16, 31)]


# -- the command line -------------------------------------------------------------------------


def test_output_is_two_files_and_stdout_shows_both(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "rules"
    status, stdout, _ = _run("compile", "-t", "iptables", *APP_FILES, "-o", str(out), capsys=capsys)
    assert status == 0 and stdout == ""
    rules, ipsets = out.read_text(), (tmp_path / "rules.ipset").read_text()
    status, shown, _ = _run("compile", "-t", "iptables", *APP_FILES, capsys=capsys)
    assert shown == rules + MARKER + ipsets
    assert rules.count("*filter") == 2 and rules.count("\nCOMMIT\n") == 2
    assert "create NPC-" not in rules and "-A NPC-" not in ipsets
    artifact = npc.compile(
        npc.load(npc.read_sources([str(APP / "input.yaml"), str(APP / "cluster.yaml")])), "iptables"
    )
    assert artifact.files == (("", rules), (".ipset", ipsets))


def test_every_rule_lives_in_an_npc_chain_the_file_declares(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, text, _ = _run("compile", "-t", "iptables", *DUAL_FILES, capsys=capsys)
    rules = text.partition(MARKER)[0]
    declared = set(re.findall(r"^:(\S+) - \[0:0\]$", rules, re.MULTILINE))
    appended = set(re.findall(r"^-A (\S+) ", rules, re.MULTILINE))
    targets = set(re.findall(r" -[jg] (\S+)$", rules, re.MULTILINE))
    assert appended <= declared and all(syntax.is_own(c) for c in declared)
    assert targets - declared <= {"ACCEPT", "DROP", "RETURN"}
    assert not re.search(r"^-[AIDRN] (?!NPC-)", rules, re.MULTILINE)
    sets = set(re.findall(r"--match-set (\S+) ", rules))
    created = set(re.findall(r"^create (\S+) ", text.partition(MARKER)[2], re.MULTILINE))
    assert sets == created


def test_family_and_sets_options(capsys: pytest.CaptureFixture[str]) -> None:
    _, four, err = _run("compile", "-t", "iptables", *DUAL_FILES, "--family", "4", capsys=capsys)
    assert "# iptables-restore --noflush" in four and "ip6tables-restore --noflush (" not in four
    assert "IPv6 addresses" in err and "warning" in err  # their IPv6 traffic is not filtered
    _, six, _ = _run("compile", "-t", "iptables", *DUAL_FILES, "--family", "6", capsys=capsys)
    assert "# ip6tables-restore --noflush (IPv6)" in six and "(IPv4)" not in six
    _, none, _ = _run("compile", "-t", "iptables", *DUAL_FILES, "--sets", "none", capsys=capsys)
    assert "-m set" not in none and "\ncreate " not in none
    status, _, err = _run("compile", "-t", "iptables", *DUAL_FILES, "--sets", "x", capsys=capsys)
    assert status == 2 and "--sets" in err


def test_options_of_other_targets_are_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "rules"
    status, _, err = _run(
        "compile", "-t", "iptables", *APP_FILES, "--table", "x", "-o", str(out), capsys=capsys
    )
    assert status == 2 and "--table does not apply to target iptables" in err
    assert not out.exists() and not (tmp_path / "rules.ipset").exists()
    status, _, err = _run("compile", "-t", "nft", *APP_FILES, "--family", "4", capsys=capsys)
    assert status == 2 and "--family does not apply to target nft" in err


def test_a_snapshot_is_required(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "rules"
    policies = str(GOLDEN / "seed001-access-nginx" / "input.yaml")
    status, stdout, err = _run("compile", "-t", "iptables", "-f", policies, "-o", str(out),
                               capsys=capsys)  # fmt: skip
    assert status == 2 and stdout == "" and "needs a cluster snapshot" in err
    assert not out.exists() and not (tmp_path / "rules.ipset").exists()
