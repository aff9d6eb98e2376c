"""The iptables target in the real kernel, with both iptables variants (``iptables-legacy``
and ``iptables-nft``): rulesets and ipsets loaded with ``npc apply`` inside a node namespace
that routes between pod namespaces, probed with real TCP, UDP, SCTP and ICMP packets and
compared flow by flow with the reference semantics (``npc.analysis.semantics``). Nothing is ever
loaded into the root namespace: every command runs under ``ip netns exec``."""

from __future__ import annotations

import random
import re
import textwrap
from collections.abc import Callable
from pathlib import Path

import netaddr
import pytest

import npc
from npc.backends.base import Emitted
from npc.errors import BackendError
from npc.snapshot import Namespace, Pod, Snapshot, frozen_labels
from npc.targets import get_backend
from tests.kernel import probe
from tests.kernel.check import (
    EXTERNAL,
    assert_agrees_with_reach,
    assert_enforces_semantics,
    hosts_of,
)
from tests.kernel.conftest import SHAPE, MakeLab, Ports
from tests.kernel.netns import Lab, run
from tests.kernel.test_nft_kernel import ICMP_CASE
from tests.synth import cluster_yaml, policy_yaml, probe_ports, random_cluster, random_policies

GOLDEN = Path(__file__).resolve().parents[2] / "golden"
# Every golden case with a snapshot, the ClusterNetworkPolicy ones (cnp-*, the conformance
# suite's conformance-*) included.
CASES = sorted(p for p in GOLDEN.iterdir() if (p / "cluster.yaml").exists())
SEED_CASE = GOLDEN / "seed002-testing-app"
OTHER_CASE = GOLDEN / "seed003-my-app-ns"
VARIANTS = ("legacy", "nft")


@pytest.fixture(scope="session")
def iptables_ok(netns_ok: None) -> None:
    missing = [
        tool
        for tool in (
            "iptables-legacy-restore",
            "iptables-nft-restore",
            "ip6tables-legacy-restore",
            "ip6tables-nft-restore",
            "ipset",
        )
        if run("sh", "-c", f"command -v {tool}", check=False).returncode != 0
    ]
    if missing:
        pytest.skip(f"IPTABLES KERNEL TESTS SKIPPED: {', '.join(missing)} not installed")


def _load(*paths: Path) -> npc.Bundle:
    return npc.load(npc.read_sources([str(p) for p in paths]))


def _apply(lab: Lab, node: str, *paths: Path, variant: str, extra: tuple[str, ...] = ()) -> str:
    args = [a for p in paths for a in ("-f", str(p))]
    done = lab.npc(node, "apply", "--target", "iptables", "--variant", variant, *args, *extra)
    assert done.returncode == 0, f"npc apply failed ({done.returncode}):\n{done.stderr}"
    return done.stdout


def _in(lab: Lab, node: str, *command: str, check: bool = True) -> str:
    return run("ip", "netns", "exec", lab.nodes[node], *command, check=check).stdout


def state(lab: Lab, node: str, variant: str, *, seeds: bool = False) -> str:
    """Everything iptables and ipset hold in the node's namespace (counters, generated-at
    comments and, unless ``seeds``, the random hash seed each new ipset gets left out)."""
    ipsets = _in(lab, node, "ipset", "save")
    if not seeds:  # members are listed in hash order, which depends on the seed
        ipsets = "\n".join(sorted(re.sub(r" initval 0x[0-9a-f]+", "", ipsets).splitlines()))
    saves = [_in(lab, node, f"{tool}-{variant}-save") for tool in ("iptables", "ip6tables")]
    text = re.sub(r"^#.*\n", "", "\n".join([*saves, ipsets]), flags=re.MULTILINE)
    return re.sub(r"\[\d+:\d+\]", "[0:0]", text)


def _dumper(lab: Lab, variant: str) -> Callable[[str], str]:
    return lambda node: state(lab, node, variant)


def _write(tmp_path: Path, policies: npc.ir.PolicySet, snapshot: Snapshot) -> tuple[Path, Path]:
    pol, clu = tmp_path / "policies.yaml", tmp_path / "cluster.yaml"
    pol.write_text(policy_yaml(policies), encoding="utf-8")
    clu.write_text(cluster_yaml(snapshot), encoding="utf-8")
    return pol, clu


# -- every golden case with a snapshot --------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden_case_is_enforced(
    case: Path,
    variant: str,
    iptables_ok: None,
    make_lab: MakeLab,
    probe_ports_for: Callable[[Ports], Ports],
) -> None:
    files = (case / "input.yaml", case / "cluster.yaml")
    bundle = _load(*files)
    assert bundle.snapshot is not None
    lab = make_lab(hosts_of(bundle.snapshot, node="node"))
    assert "loaded" in _apply(lab, "node", *files, variant=variant)
    ports = probe_ports_for(probe_ports(bundle.snapshot, bundle.policies))
    total, allowed = assert_enforces_semantics(
        lab,
        bundle.policies,
        bundle.snapshot,
        ports,
        _dumper(lab, variant),
        cluster_policies=bundle.cluster_policies,
    )
    assert 0 < allowed < total, "the case should both allow and deny something"
    if variant == "nft":
        assert_agrees_with_reach(lab, [str(f) for f in files], ports)


# -- randomized policy sets -------------------------------------------------------------------



@pytest.fixture(
    scope="module",
    params=[(v, ipv6) for v in VARIANTS for ipv6 in (False, True)],
    ids=[f"{v}-{'dualstack' if ipv6 else 'ipv4'}" for v in VARIANTS for ipv6 in (False, True)],
)
def random_lab(
    request: pytest.FixtureRequest, iptables_ok: None, make_module_lab: MakeLab
) -> tuple[str, bool, Lab]:
    """One router per variant and family for all seeds (pods get addresses by index)."""
    variant, ipv6 = request.param
    snapshot = random_cluster(random.Random(0), **SHAPE, ipv6=ipv6)
    return variant, ipv6, make_module_lab(hosts_of(snapshot, node="node"))


@pytest.mark.parametrize(("seed", "sets"), [(0, "ipset"), (1, "ipset"), (2, "none")])
def test_random_policies_are_enforced(
    seed: int,
    sets: str,
    random_lab: tuple[str, bool, Lab],
    tmp_path: Path,
    probe_ports_for: Callable[[Ports], Ports],
) -> None:
    variant, ipv6, lab = random_lab
    rng = random.Random(7000 + seed)
    snapshot = random_cluster(rng, **SHAPE, ipv6=ipv6)
    policies = random_policies(rng, snapshot, count=5, ipv6=ipv6)
    files = _write(tmp_path, policies, snapshot)
    _apply(lab, "node", *files, variant=variant, extra=("--sets", sets))
    ports = probe_ports_for(probe_ports(snapshot, policies))
    assert_enforces_semantics(lab, policies, snapshot, ports, _dumper(lab, variant))


@pytest.mark.parametrize("seed", range(1))
def test_per_node_rulesets_enforce_together(
    seed: int,
    iptables_ok: None,
    two_node_lab: tuple[bool, Lab],
    tmp_path: Path,
    probe_ports_for: Callable[[Ports], Ports],
) -> None:
    """Each node loads only its own pods (``--node``); egress is checked where a flow
    leaves, ingress where it arrives, and together they are exact."""
    ipv6, lab = two_node_lab
    rng = random.Random(9000 + seed)
    snapshot = random_cluster(rng, **SHAPE, ipv6=ipv6)
    policies = random_policies(rng, snapshot, count=5, ipv6=ipv6)
    files = _write(tmp_path, policies, snapshot)
    for node in sorted(lab.nodes):
        _apply(lab, node, *files, variant="legacy", extra=("--node", node))
    ports = probe_ports_for(probe_ports(snapshot, policies))
    assert_enforces_semantics(lab, policies, snapshot, ports, _dumper(lab, "legacy"))


# -- a dispatch tree several levels deep ------------------------------------------------------


def _striped_cluster(pods: int) -> Snapshot:
    """Pods in one namespace whose consecutive addresses alternate between three labels, so
    no two neighbours share an isolation class and the dispatch cannot join them into a
    block: the tree must split them over several levels."""
    ns = Namespace("striped", frozen_labels({"kubernetes.io/metadata.name": "striped"}))
    return Snapshot(
        (ns,),
        tuple(
            Pod(
                namespace="striped",
                name=f"p{i}",
                labels=frozen_labels({"app": f"a{i % 3}"}),
                ips=(
                    netaddr.IPAddress(f"10.78.{i // 200}.{i % 200 + 2}"),
                    netaddr.IPAddress(f"fd78::{i + 2:x}"),
                ),
                node_name="node",
            )
            for i in range(pods)
        ),
    )


STRIPED_POLICIES = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a0-from-a1, namespace: striped}
spec:
  podSelector: {matchLabels: {app: a0}}
  ingress: [{from: [{podSelector: {matchLabels: {app: a1}}}], ports: [{port: 80}]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a1-to-a2, namespace: striped}
spec:
  podSelector: {matchLabels: {app: a1}}
  policyTypes: [Egress]
  egress: [{to: [{podSelector: {matchLabels: {app: a2}}}]}, {ports: [{port: 80}]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a2-both-ways-with-a0, namespace: striped}
spec:
  podSelector: {matchLabels: {app: a2}}
  policyTypes: [Ingress, Egress]
  ingress: [{from: [{podSelector: {matchLabels: {app: a0}}}]}]
  egress: [{to: [{podSelector: {matchLabels: {app: a0}}}], ports: [{port: 80}]}]
"""


def test_a_deep_dispatch_tree_sends_every_pod_to_its_chain(
    iptables_ok: None, make_lab: MakeLab, tmp_path: Path
) -> None:
    """(The tree is plain ``-s``/``-d`` and ``-g``: one variant is enough; the other
    tests run both.)"""
    variant = "nft"
    snapshot = _striped_cluster(40)
    (tmp_path / "cluster.yaml").write_text(cluster_yaml(snapshot), encoding="utf-8")
    (tmp_path / "policies.yaml").write_text(STRIPED_POLICIES, encoding="utf-8")
    files = (tmp_path / "policies.yaml", tmp_path / "cluster.yaml")
    bundle = _load(*files)
    text = npc.compile(bundle, "iptables").text
    assert re.search(r"-g NPC-IT-", text) and re.search(r"-g NPC-ET-", text), "no subtree"
    lab = make_lab(hosts_of(snapshot, node="node"))
    _apply(lab, "node", *files, variant=variant)
    ports = [(npc.ir.Protocol.TCP, 80), (npc.ir.Protocol.TCP, 81)]
    assert_enforces_semantics(lab, bundle.policies, snapshot, ports, _dumper(lab, variant))


# -- ICMP: rules without ports allow every protocol -------------------------------------------


def test_rules_without_ports_allow_icmp_and_rules_with_ports_do_not(
    iptables_ok: None, make_lab: MakeLab, tmp_path: Path
) -> None:
    source = tmp_path / "icmp.yaml"
    source.write_text(textwrap.dedent(ICMP_CASE), encoding="utf-8")
    bundle = _load(source)
    assert bundle.snapshot is not None
    lab = make_lab(hosts_of(bundle.snapshot, node="node"))
    _apply(lab, "node", source, variant="nft")
    expectations = {
        ("icmp/a", "icmp/b"): True,
        ("icmp/a", "icmp/c"): False,
        ("icmp/b", "icmp/c"): False,
        ("icmp/c", "icmp/a"): True,
        ("icmp/b", EXTERNAL): True,
    }
    probes, expected = [], []
    for (src, dst), allowed in expectations.items():
        for version in (4, 6):
            a, b = lab.hosts[src], lab.hosts[dst]
            probes.append(
                probe.Probe(a.netns, str(a.ip(version)), b.netns, str(b.ip(version)), "ICMP")
            )
            expected.append(allowed)
    assert probe.run(probes, expected) == expected


# -- applying: coexistence, idempotence, stale objects, atomicity -----------------------------

FOREIGN_RULES = """\
*filter
:FOREIGN - [0:0]
-A FOREIGN -s 192.0.2.99/32 -j DROP
-A FORWARD -m set --match-set foreign-set src -j FOREIGN
-A FORWARD -s 198.51.100.0/24 -j DROP
COMMIT
"""


def _seed_files(case: Path = SEED_CASE) -> tuple[Path, Path]:
    return case / "input.yaml", case / "cluster.yaml"


@pytest.fixture
def seed_lab(iptables_ok: None, make_lab: MakeLab) -> Lab:
    bundle = _load(*_seed_files())
    assert bundle.snapshot is not None
    return make_lab(hosts_of(bundle.snapshot, node="node"))


FOREIGN_RULES6 = """\
*filter
:FOREIGN - [0:0]
-A FOREIGN -s 2001:db8::99/128 -j DROP
-A FORWARD -s 2001:db8:1::/48 -j FOREIGN
COMMIT
"""


def _foreign(lab: Lab, variant: str) -> None:
    """Another agent's ipset, chain and FORWARD rules (matching no probe of the tests)."""
    _in(lab, "node", "ipset", "create", "foreign-set", "hash:ip")
    _in(lab, "node", "ipset", "add", "foreign-set", "192.0.2.98")
    for tool, rules in (("iptables", FOREIGN_RULES), ("ip6tables", FOREIGN_RULES6)):
        netns = lab.nodes["node"]
        run("ip", "netns", "exec", netns, f"{tool}-{variant}-restore", "--noflush", stdin=rules)


def _ours(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if "NPC-" in line)


def _theirs(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if "NPC-" not in line)


@pytest.mark.parametrize("variant", VARIANTS)
def test_foreign_rules_survive_stale_npc_objects_go_and_reapplying_changes_nothing(
    seed_lab: Lab, variant: str
) -> None:
    _foreign(seed_lab, variant)
    foreign = state(seed_lab, "node", variant)
    _apply(seed_lab, "node", *_seed_files(OTHER_CASE), variant=variant)
    assert _theirs(state(seed_lab, "node", variant)) == _theirs(foreign)
    _apply(seed_lab, "node", *_seed_files(), variant=variant)
    first = state(seed_lab, "node", variant)
    assert _theirs(first) == _theirs(foreign)  # every foreign rule, chain and set is intact
    assert first.count("-A FORWARD -j NPC-FORWARD") == 2  # once per family, at the top
    for save in first.split("*filter")[1:]:
        forward = [ln for ln in save.splitlines() if ln.startswith("-A FORWARD")]
        assert forward[0] == "-A FORWARD -j NPC-FORWARD"
    assert _ours(first) == _ours(_apply_fresh(seed_lab, variant))  # nothing stale is left
    seeded = state(seed_lab, "node", variant, seeds=True)
    _apply(seed_lab, "node", *_seed_files(), variant=variant)
    assert state(seed_lab, "node", variant, seeds=True) == seeded  # no set was even rebuilt


def _apply_fresh(lab: Lab, variant: str) -> str:
    """The state ``SEED_CASE`` leaves in an empty namespace (a scratch node of ``lab``)."""
    lab.add_node("scratch")
    _apply(lab, "scratch", *_seed_files(), variant=variant)
    return state(lab, "scratch", variant)


def test_a_set_changed_behind_npcs_back_is_swapped_back(seed_lab: Lab) -> None:
    text = npc.compile(_load(*_seed_files()), "iptables").text
    name = re.search(r"^create (NPC-\S+)", text, flags=re.MULTILINE)
    assert name is not None, "the seed case should need an ipset"
    _apply(seed_lab, "node", *_seed_files(), variant="nft")
    first = state(seed_lab, "node", "nft")
    _in(seed_lab, "node", "ipset", "add", name[1], "203.0.113.7")
    _apply(seed_lab, "node", *_seed_files(), variant="nft")
    assert state(seed_lab, "node", "nft") == first


BROKEN_RULE = (
    "-A NPC-FORWARD -p tcp -m multiport --dports 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16 -j DROP\n"
)


@pytest.mark.parametrize(("variant", "family"), [("legacy", 6), ("nft", 4)])
def test_a_ruleset_iptables_refuses_leaves_the_previous_one(
    seed_lab: Lab, variant: str, family: int
) -> None:
    _apply(seed_lab, "node", *_seed_files(), variant=variant)
    before = state(seed_lab, "node", variant)
    other = npc.compile(_load(*_seed_files(OTHER_CASE)), "iptables").text
    marker = f"\n# {'ip6tables' if family == 6 else 'iptables'}-restore --noflush"
    head, sep, tail = other.partition(marker)
    part, commit, rest = tail.partition("COMMIT\n")
    broken = head + sep + part + BROKEN_RULE + commit + rest
    backend = get_backend("iptables")
    with probe.inside(seed_lab.nodes["node"]), pytest.raises(BackendError) as err:
        backend.apply(broken, backend.make_options({"variant": variant}))
    assert state(seed_lab, "node", variant) == before
    (diag, *_) = err.value.diagnostics
    assert "nothing was changed" in diag.message
    assert diag.location is not None
    assert broken.splitlines()[diag.location.line - 1] == BROKEN_RULE.strip()


@pytest.mark.parametrize("variant", VARIANTS)
def test_dry_run_changes_nothing(seed_lab: Lab, variant: str) -> None:
    _foreign(seed_lab, variant)
    before = state(seed_lab, "node", variant)
    out = _apply(seed_lab, "node", *_seed_files(), variant=variant, extra=("--dry-run",))
    assert "dry run" in out
    assert state(seed_lab, "node", variant) == before


#: A match iptables accepts with --test but this kernel refuses at commit (no xt_ipvs here).
COMMIT_FAILS = "-A NPC-FORWARD -m ipvs --ipvs -j DROP\n"


@pytest.mark.parametrize("variant", VARIANTS)
def test_an_ipv6_commit_that_fails_puts_the_ipv4_chains_back(seed_lab: Lab, variant: str) -> None:
    """Both parts pass ``--test``; the IPv4 part is committed, the IPv6 commit fails: the IPv4
    chains are restored from what ``iptables-save`` showed before, and the sets the apply
    created are destroyed."""
    scratch = seed_lab.add_node("scratch")
    rules = f"*filter\n:NPC-X - [0:0]\n{COMMIT_FAILS.replace('NPC-FORWARD', 'NPC-X')}COMMIT\n"
    restore = ("ip", "netns", "exec", scratch, f"ip6tables-{variant}-restore", "--noflush")
    if run(*restore, "--test", stdin=rules, check=False).returncode != 0 or (
        run(*restore, stdin=rules, check=False).returncode == 0
    ):
        pytest.skip("this kernel commits -m ipvs: no way to make only the commit fail")
    _apply(seed_lab, "node", *_seed_files(), variant=variant)
    before = state(seed_lab, "node", variant)
    other = npc.compile(_load(*_seed_files(OTHER_CASE)), "iptables").text
    head, sep, tail = other.partition("\n# ip6tables-restore --noflush")
    part, commit, rest = tail.partition("COMMIT\n")
    broken = head + sep + part + COMMIT_FAILS + commit + rest
    backend = get_backend("iptables")
    with probe.inside(seed_lab.nodes["node"]), pytest.raises(BackendError) as err:
        backend.apply(broken, backend.make_options({"variant": variant}))
    assert state(seed_lab, "node", variant) == before
    assert "ip6tables-restore refused" in err.value.diagnostics[0].message


def test_sets_ipset_refuses_leave_everything_as_it_was(seed_lab: Lab) -> None:
    """A set entry ipset refuses: the sets created before it are destroyed again, nothing
    else changed, and the error points at the line of the ipset file."""
    _apply(seed_lab, "node", *_seed_files(), variant="legacy")
    before = state(seed_lab, "node", "legacy", seeds=True)
    other = npc.compile(_load(*_seed_files(GOLDEN / "ipblock-except")), "iptables")
    rules, ipsets = (text for _, text in other.files)
    last = re.findall(r"^create (\S+) ", ipsets, re.MULTILINE)[-1]
    broken = ipsets + f"add {last} 10.300.0.1\n"
    backend = get_backend("iptables")
    text = Emitted.of_files((("", rules), (".ipset", broken))).text
    with probe.inside(seed_lab.nodes["node"]), pytest.raises(BackendError) as err:
        backend.apply(text, backend.make_options({"variant": "legacy"}))
    assert state(seed_lab, "node", "legacy", seeds=True) == before
    (diag, *_) = err.value.diagnostics
    assert "ipset refused" in diag.message and "nothing was changed" in diag.message
    assert diag.location is not None and diag.location.file == "<ipset file>"
    assert broken.splitlines()[diag.location.line - 1] == f"add {last} 10.300.0.1"
