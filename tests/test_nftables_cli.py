"""``npc compile --target nft`` and ``npc apply`` through the command line (no kernel needed:
everything here fails or finishes before nft would change anything)."""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

import npc
from npc.cli import main
from tests.synth import cluster_yaml, policy_yaml, random_cluster, random_policies

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "golden"
APP = GOLDEN / "seed002-testing-app"
APP_FILES = ("-f", str(APP / "input.yaml"), "-f", str(APP / "cluster.yaml"))
NPC = str(Path(sys.executable).with_name("npc"))


def _run(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(["--color", "never", *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_a_snapshot_is_required(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_file = tmp_path / "ruleset.nft"
    policies = str(GOLDEN / "seed001-access-nginx" / "input.yaml")
    status, out, err = _run(
        "compile", "-t", "nft", "-f", policies, "-o", str(out_file), capsys=capsys
    )
    assert status == 2 and out == ""
    assert "needs a cluster snapshot" in err and "kubectl get ns,pods -A -o yaml" in err
    assert not out_file.exists()
    status, out, err = _run("apply", "-t", "nft", "-f", policies, "--dry-run", capsys=capsys)
    assert status == 2 and "needs a cluster snapshot" in err


def _dispatched(text: str) -> set[str]:
    return set(re.findall(r"^\t\t\t(\S+) : jump ", text, re.MULTILINE))


def test_node_keeps_only_the_pods_on_that_node(capsys: pytest.CaptureFixture[str]) -> None:
    status, everything, _ = _run("compile", "-t", "nft", *APP_FILES, capsys=capsys)
    assert status == 0
    assert _dispatched(everything) == {"10.244.1.10", "10.244.1.11"}
    status, node1, _ = _run("compile", "-t", "nft", *APP_FILES, "--node", "node-1", capsys=capsys)
    assert status == 0
    assert _dispatched(node1) == {"10.244.1.10"}  # myapp; nginx runs on node-2
    assert "10.244.1.11 . tcp . 80" in node1  # still a peer: it may reach myapp on TCP/80
    assert "on node node-1" in node1
    status, node2, _ = _run("compile", "-t", "nft", *APP_FILES, "--node", "node-2", capsys=capsys)
    assert _dispatched(node2) == {"10.244.1.11"}


def test_an_unknown_node_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = _run("compile", "-t", "nft", *APP_FILES, "--node", "node-9", capsys=capsys)
    assert status == 2 and out == ""
    assert "--node node-9: no such node in the snapshot" in err
    assert "nodes in the snapshot: node-1, node-2" in err


def test_table_name(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _run(
        "compile", "-t", "nft", *APP_FILES, "--table", "k8s-policy", capsys=capsys
    )
    assert status == 0
    assert re.findall(r"^(?:delete )?table inet (\S+)", out, re.MULTILINE) == ["k8s-policy"] * 3
    for bad, reason in (("fwd", "is an nft keyword"), ("a b", "is not a valid table name")):
        status, out, err = _run("compile", "-t", "nft", *APP_FILES, "--table", bad, capsys=capsys)
        assert status == 2 and out == ""
        assert f"--table '{bad}' {reason}" in err


def test_apply_refuses_targets_it_cannot_load(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = _run("apply", "-t", "ir", *APP_FILES, capsys=capsys)
    assert status == 2 and out == ""
    assert "target ir cannot be applied by npc" in err
    assert "npc compile --target ir -o FILE" in err


def test_apply_without_nft_is_an_enforcement_failure(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path)}  # no nft anywhere on it
    done = subprocess.run(
        [NPC, "apply", "-t", "nft", *APP_FILES, "--dry-run"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "nft not found on PATH" in done.stderr and "Traceback" not in done.stderr


def test_pods_sharing_an_address_are_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    text = (APP / "cluster.yaml").read_text(encoding="utf-8").replace("10.244.2.5", "10.244.1.10")
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text(text, encoding="utf-8")
    args = ("-f", str(APP / "input.yaml"), "-f", str(cluster))
    status, out, err = _run("compile", "-t", "nft", *args, capsys=capsys)
    assert status == 2 and out == ""
    assert "default/debug, testing/myapp-6d8d776547-5xz2q share address 10.244.1.10" in err
    assert err.startswith(f"{cluster}:")  # located at the second pod in the file


def test_output_is_identical_whatever_the_hash_seed(tmp_path: Path) -> None:
    rng = random.Random(5)
    snapshot = random_cluster(rng, namespaces=3, pods=12, ipv6=True)
    policies = random_policies(rng, snapshot, count=8, ipv6=True)
    (tmp_path / "p.yaml").write_text(policy_yaml(policies), encoding="utf-8")
    (tmp_path / "c.yaml").write_text(cluster_yaml(snapshot), encoding="utf-8")
    outputs = set()
    for seed in ("0", "1", "4242"):
        done = subprocess.run(
            [NPC, "compile", "-t", "nft", "-f", str(tmp_path)],
            capture_output=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
            check=True,
        )
        outputs.add(done.stdout)
    assert len(outputs) == 1
    assert b"jump" in outputs.pop()


def _rulesets() -> list[str]:
    texts = []
    for case in sorted(GOLDEN.iterdir()):
        if (case / "cluster.yaml").exists():
            sources = npc.read_sources([str(case / "input.yaml"), str(case / "cluster.yaml")])
            texts.append(npc.compile(npc.load(sources), "nft").text)
    for seed in range(10):
        rng = random.Random(seed)
        snapshot = random_cluster(rng, namespaces=3, pods=10, ipv6=seed % 2 == 0)
        policies = random_policies(rng, snapshot, count=6, ipv6=seed % 2 == 0)
        sources = [
            npc.Source("p.yaml", policy_yaml(policies)),
            npc.Source("c.yaml", cluster_yaml(snapshot)),
        ]
        texts.append(npc.compile(sources, "nft").text)
    return texts


def test_no_anonymous_sets_and_only_our_table() -> None:
    """Anonymous sets made large rulesets load six times slower (measured with the nft
    bench); and the script must mention no table but its own."""
    block = re.compile(r"^\s*(?:(?:table inet npc|set \S+|map \S+|chain \S+) \{|elements = \{)$")
    for text in _rulesets():
        for line in text.splitlines():
            if "{" in line:
                assert block.match(line), line
            if "table" in line and not line.startswith("#"):
                assert re.fullmatch(r"(?:delete )?table inet npc(?: \{)?", line), line
