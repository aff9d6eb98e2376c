"""``npc compare`` counts objects and rules the way each target holds them (issue 11): the
backends' own counts (:meth:`npc.backends.base.Backend.count`) checked against what the
judges read back from the same output (nft, iptables), against independent textual counts
of the structured outputs (calico, alibaba, ir), and shown in every output format."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

import npc
from npc.backends.base import Counts, Emitted
from npc.cli import cli
from npc.rulesets.iptables.read import read_rulesets
from npc.rulesets.nft.read import read_ruleset
from npc.targets import REGISTRY, get_backend

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "golden"
CASES = sorted(p.parent.name for p in GOLDEN.glob("*/cluster.yaml"))
EXCEPT = GOLDEN / "ipblock-except"


def _bundle(case: str) -> npc.Bundle:
    return npc.load(
        npc.read_sources([str(GOLDEN / case / "input.yaml"), str(GOLDEN / case / "cluster.yaml")])
    )


def _counted(target: str, artifact: npc.Artifact) -> Counts:
    found = get_backend(target).count(Emitted(artifact.text, (), artifact.files))
    assert found is not None, f"{target} does not count its output"
    return found


def _compiled(case: str, target: str) -> npc.Artifact:
    try:
        return npc.compile(_bundle(case), target)
    except npc.UnsupportedError:
        pytest.skip(f"{target} refuses {case}")


@pytest.mark.parametrize("case", CASES)
def test_nft_counts_are_what_the_judge_reads(case: str) -> None:
    artifact = _compiled(case, "nft")
    ruleset = read_ruleset([npc.Source("x.nft", artifact.text)])
    counted = _counted("nft", artifact)
    assert counted.objects == sum(1 + len(t.chains) + len(t.sets) for t in ruleset.tables)
    assert counted.rules == sum(len(c.rules) for t in ruleset.tables for c in t.chains)


@pytest.mark.parametrize("case", CASES)
def test_iptables_counts_are_what_the_judge_reads(case: str) -> None:
    artifact = _compiled(case, "iptables")
    ruleset = read_rulesets(npc.api.artifact_sources(artifact))
    counted = _counted("iptables", artifact)
    # The judge adds FORWARD (one chain, one jump) to a table the file leaves it out of.
    assumed = sum(1 for t in ruleset.tables if t.assumed)
    chains = sum(len(t.chains) for t in ruleset.tables) - assumed
    assert counted.objects == chains + len(ruleset.sets)
    assert counted.rules == sum(len(c.rules) for t in ruleset.tables for c in t.chains) - assumed


@pytest.mark.parametrize("case", CASES)
def test_structured_counts_match_their_text(case: str) -> None:
    calico = _compiled(case, "calico")
    counted = _counted("calico", calico)
    assert counted.objects == calico.text.count("\nkind: ") + calico.text.startswith("kind: ")
    assert counted.rules == len(re.findall(r"^  (?:- |  )action: ", calico.text, re.MULTILINE))
    ir = _compiled(case, "ir")
    counted = _counted("ir", ir)
    assert counted.objects == len(re.findall(r"^- policy: ", ir.text, re.MULTILINE))


def test_alibaba_counts_groups_and_permissions_in_both_formats() -> None:
    bundle = _bundle("ipblock-except")
    data = npc.compile(bundle, "alibaba", {"same_node": "trust"})
    groups = json.loads(data.text)["securityGroups"]
    counted = _counted("alibaba", data)
    assert (counted.objects, counted.rules) == (5, 108)
    assert counted.rules == sum(len(g["ingress"]) + len(g["egress"]) for g in groups)
    script = npc.compile(bundle, "alibaba", {"format": "aliyun-cli", "same_node": "trust"})
    assert _counted("alibaba", script) == counted
    assert (counted.objects_are, counted.rules_are) == ("security groups", "permissions")


def test_every_target_counts() -> None:
    for name in sorted(REGISTRY):
        artifact = _compiled("ipblock-except", name)
        counted = _counted(name, artifact)
        assert counted.objects > 0 and counted.rules > 0 and counted.objects_are


def _compare(*args: str) -> tuple[int, str]:
    files = ("-f", str(EXCEPT / "input.yaml"), "-f", str(EXCEPT / "cluster.yaml"))
    result = CliRunner().invoke(cli, ["compare", *args, *files])
    return result.exit_code, result.stdout


def test_compare_shows_objects_and_rules_in_every_format() -> None:
    bundle = _bundle("ipblock-except")
    expected = {
        name: _counted(name, npc.compile(bundle, name)) for name in ("nft", "iptables", "calico")
    }
    _, out = _compare("--targets", "nft,iptables,calico", "-o", "json")
    data = json.loads(out)
    for row in data["targets"]:
        want = expected[row["target"]]
        assert (row["objects"], row["rules"]) == (want.objects, want.rules)
        assert (row["objects_are"], row["rules_are"]) == (want.objects_are, want.rules_are)
    _, out = _compare("--targets", "nft,iptables,calico", "-o", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {r["target"]: (int(r["objects"]), int(r["rules"])) for r in rows} == {
        t: (c.objects, c.rules) for t, c in expected.items()
    }
    _, out = _compare("--targets", "nft", "-o", "md")
    assert out.startswith("| target | objects | rules | bytes |")
    nft = expected["nft"]
    assert f"| nft | {nft.objects} | {nft.rules} |" in out
    _, out = _compare("--targets", "nft")
    header, first = out.splitlines()[:2]
    assert header.split()[:3] == ["target", "objects", "rules"]
    assert first.split()[:3] == ["nft", str(nft.objects), str(nft.rules)]
    assert "nft: tables, chains, sets and maps; rules" in out


def test_compare_refused_target_emits_nothing() -> None:
    guard = GOLDEN / "cnp-admin-pass-baseline"
    files = ("-f", str(guard / "input.yaml"), "-f", str(guard / "cluster.yaml"))
    result = CliRunner().invoke(cli, ["compare", "--targets", "nft,calico", "-o", "csv", *files])
    rows = {r["target"]: r for r in csv.DictReader(io.StringIO(result.stdout))}
    calico = rows["calico"]
    assert (calico["objects"], calico["rules"], calico["bytes"], calico["equivalent"]) == (
        "-",
        "-",
        "-",
        "-",
    )
    assert "nodes" in calico["note"] and "\n" not in calico["note"]
    assert rows["nft"]["equivalent"] == "true" and int(rows["nft"]["objects"]) > 0
