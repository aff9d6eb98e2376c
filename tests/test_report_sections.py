"""``npc report --targets`` and ``--against``: each target's verdict with counterexamples,
and the flows a change opens and closes; the same data in ``-o report.json``, bounded."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

import npc
from npc.analysis.compare import CompareReport, TargetRow
from npc.analysis.diff import Change, DiffReport
from npc.analysis.report_verify import (
    MAX_CHANGES,
    MAX_DIFFERENCES,
    diff_section,
    targets_section,
)
from npc.analysis.verify import Difference, VerifyReport
from npc.api import explain_reason
from npc.targets import REGISTRY
from tests.helpers import run_cli as run

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is missing")

ROOT = Path(__file__).resolve().parent.parent
#: examples/xyz without x/allow-ns-y-pod-b-and-ns-z and z/allow-cidr-except: going from it to
#: examples/xyz opens x/a to y/b and z, and closes z/c to all but the ipBlock on 80-81.
BEFORE = "tests/data/report/xyz-before.yaml"
#: A case alibaba refuses (SCTP), every other target compiles.
SCTP = ("golden/dualstack-named-ports/input.yaml", "golden/dualstack-named-ports/cluster.yaml")
JUDGED = ",".join(sorted(t.name for t in REGISTRY.values() if t.reader))


@pytest.fixture(autouse=True)
def _at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    status, out, err = run(capsys, "report", *args, "-o", "-", "--format", "json")
    assert status == 0, err
    found: dict[str, object] = json.loads(out)
    return found


def _sections(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, dict[str, object]]:
    sections = _json(capsys, *args)["sections"]
    assert isinstance(sections, dict)
    return sections


def _flows(items: object) -> list[tuple[object, ...]]:
    assert isinstance(items, list)
    return [(d["from"], d["to"], d["protocol"], d["port"]) for d in items]


def test_targets_section_holds_what_npc_compare_finds(capsys: pytest.CaptureFixture[str]) -> None:
    """Every target's verdict, size and differences are `npc compare`'s; differences are
    listed widening first, each explained as `npc explain` explains it (and indents it) and
    linked to the policies that explanation names."""
    trust = ("--same-node", "trust")  # alibaba: same-node traffic left to another enforcer
    section = _sections(capsys, "-f", "examples/xyz/", "--targets", JUDGED, *trust)["targets"]
    status, out, _ = run(
        capsys, "compare", "-f", "examples/xyz/", "--targets", JUDGED, *trust, "-o", "json"
    )
    assert status in (0, 1)
    compared = json.loads(out)
    rows = section["targets"]
    assert isinstance(rows, list)
    bundle = npc.load(npc.read_sources(["examples/xyz/"]))
    assert [r["target"] for r in rows] == JUDGED.split(",")
    for row, want in zip(rows, compared["targets"], strict=True):
        assert row["bytes"] == want["size"] and row["lines"] == want["lines"]
        assert row["verdict"] == ("equivalent" if want["equivalent"] else "not equivalent")
        assert row["differences_total"] == len(want["differences"])
        shown = row["differences"]
        assert len(shown) == min(len(want["differences"]), MAX_DIFFERENCES)
        assert set(_flows(shown)) <= set(_flows(want["differences"]))
        kinds = [d["widening"] for d in shown]
        assert kinds == sorted(kinds, reverse=True)  # widening first
        assert row["widening"] + row["narrowing"] == row["differences_total"]
        assert sum(g["flows"] for g in row["rules"]) == row["differences_total"]
        for d in shown:
            assert d["widening"] == (d["ruleset"] and not d["spec"])
            reason = explain_reason(bundle, d["from"], d["to"], d["protocol"], d["port"])
            assert [line.strip() for line in d["reason"]] == reason
            assert d["policies"] and all(p.split("/")[0] in "xyz" for p in d["policies"])
    assert _flows(section["disagreements"]) == _flows(compared["disagreements"])
    assert section["disagreements_total"] == len(compared["disagreements"])
    assert section["max_differences"] == MAX_DIFFERENCES


def test_a_target_that_refuses_is_shown_refused_with_its_reasons(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ("-f", SCTP[0], "-f", SCTP[1], "--targets", "nft,alibaba")
    rows = {r["target"]: r for r in _sections(capsys, *args)["targets"]["targets"]}  # type: ignore[union-attr]
    assert rows["nft"]["verdict"] == "equivalent" and rows["nft"]["bytes"] > 0
    refused = rows["alibaba"]
    assert refused["verdict"] == "refused" and refused["bytes"] == 0
    assert refused["refused"] and all("cannot express SCTP" in r for r in refused["refused"])
    assert all(f"{SCTP[0]}:" in r for r in refused["refused"])  # file:line:col
    status, html, err = run(capsys, "report", *args, "-o", "-")
    assert status == 0, err
    assert 'id="t-alibaba"' in html and '<td class="refused">refused</td>' in html
    assert "cannot express SCTP" in html


def test_an_unknown_target_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.html"
    status, _, err = run(
        capsys, "report", "-f", "examples/xyz/", "--targets", "nft,nope", "-o", str(out)
    )
    assert status == 2 and "nope" in err and not out.exists()


def test_against_lists_what_npc_diff_lists(capsys: pytest.CaptureFixture[str]) -> None:
    """`npc report -f NEW --against OLD` shows the flows `npc diff -f OLD --against NEW`
    lists: opened ones and closed ones, counted."""
    section = _sections(capsys, "-f", "examples/xyz/", "--against", BEFORE)["diff"]
    status, out, _ = run(
        capsys, "diff", "-f", BEFORE, "-f", "examples/xyz/cluster.yaml", "--against",
        "examples/xyz/policies.yaml", "-o", "json",
    )  # fmt: skip
    assert status == 1
    changes = json.loads(out)["differences"]
    opened = [c for c in changes if c["new"]]
    closed = [c for c in changes if not c["new"]]
    assert section["opened"] == opened and section["closed"] == closed
    assert section["opened_total"] == len(opened) and section["closed_total"] == len(closed)
    assert section["against"] == [BEFORE] and section["max_changes"] == MAX_CHANGES
    # The two policies the change adds: x/a opens to y/b on 80 and to z on 81; z/c closes.
    assert ("y/b", "x/a", "TCP", 80) in _flows(opened)
    assert {c["to"] for c in closed} == {"z/c"}


def test_against_draws_opened_and_closed_flows_by_class(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, html, err = run(
        capsys, "report", "-f", "examples/xyz/", "--against", BEFORE, "-o", "-"
    )
    assert status == 0, err
    (diff,) = re.findall(r'<section id="diff">.*?</section>', html, re.S)
    assert "style=" not in diff  # colours come from the page's stylesheet
    assert diff.count('<tr class="opened">') == 4  # y/b, z/a, z/b, z/c -> x/a
    assert diff.count('<tr class="closed">') == 12  # 5 addresses and 7 pods -> z/c
    assert "4 flows opened" in diff and "152 flows closed" in diff
    assert re.search(r"\.opened \{[^}]*background", html)
    assert re.search(r"\.closed \{[^}]*background", html)


@needs_dot
def test_a_change_is_drawn_over_the_graph(capsys: pytest.CaptureFixture[str]) -> None:
    """Changed flows between pods become dashed edges between the graph's nodes, one per
    pair of nodes and kind, linking to the list of their kind; the JSON names the same."""
    sections = _sections(capsys, "-f", "examples/xyz/", "--against", BEFORE)
    nodes = {n["id"]: n for n in sections["graph"]["graph"]["nodes"]}  # type: ignore[index]
    drawn = sections["diff"]["graph_edges"]
    assert isinstance(drawn, list)
    pods = {(e["opened"], p, q) for e in drawn for p in nodes[e["from"]]["pods"]
            for q in nodes[e["to"]]["pods"]}  # fmt: skip
    changed = {(c["new"], c["from"], c["to"]) for c in sections["diff"]["opened"]}  # type: ignore[union-attr]
    changed |= {(c["new"], c["from"], c["to"]) for c in sections["diff"]["closed"]}  # type: ignore[union-attr]
    assert pods == {c for c in changed if "/" in c[1] and "/" in c[2]}  # pods, not addresses
    status, html, err = run(capsys, "report", "-f", "examples/xyz/", "--against", BEFORE, "-o", "-")
    assert status == 0, err
    edges = re.findall(r'<g id="(c\d+)" class="edge">(.*?)</g>\n</g>', html, re.S)
    assert len(edges) == len(drawn)
    for edge, body in edges:  # ids c1, c2, ... in the order of graph_edges
        kind = "opened" if drawn[int(edge[1:]) - 1]["opened"] else "closed"
        assert f'xlink:href="#diff-{kind}"' in body and f"{kind}: " in body, edge
    assert 'class="opened">dashed green' in html and 'class="closed">dashed red' in html


def test_no_change_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    section = _sections(
        capsys, "-f", "examples/xyz/", "--against", "examples/xyz/policies.yaml"
    )["diff"]
    assert section["opened"] == [] and section["closed"] == []
    assert section["summary"][0].endswith("no flow changes its verdict.")  # type: ignore[index]


def test_without_the_options_the_sections_are_absent(capsys: pytest.CaptureFixture[str]) -> None:
    assert not {"targets", "diff"} & set(_sections(capsys, "-f", "examples/xyz/"))


# -- the sections' functions, on doctored data ---------------------------------------------


def _example() -> npc.Bundle:
    return npc.load(npc.read_sources(["examples/testing/"]))


def test_a_counterexample_names_its_deciding_rule_and_shows_that_line() -> None:
    """A doctored Calico ruleset (myapp's port 80 moved to 53): the rule that now admits
    53 is named by file:line, and the section shows that line of the ruleset."""
    bundle = _example()
    text = npc.compile(bundle, "calico").text
    doctored = text.replace("      - 80\n", "      - 53\n", 1)
    report = npc.verify(bundle, "calico", [npc.Source("doctored.yaml", doctored)])
    row = TargetRow("calico", len(doctored), doctored.count("\n"), report=report,
                    output=(("doctored.yaml", doctored),))  # fmt: skip
    assert bundle.snapshot is not None
    section = targets_section(CompareReport((row,)), bundle.policies, bundle.snapshot,
                              bundle.locate)  # fmt: skip
    (target,) = section.json["targets"]
    assert target["verdict"] == "not equivalent"
    decided = [d for d in target["differences"] if d["rule"]]
    assert decided, target["differences"]
    lines = doctored.splitlines()
    for d in decided:
        file, _, line = d["rule"].rpartition(":")
        assert file == "doctored.yaml"
        assert d["rule_text"] == lines[int(line) - 1].strip()
    assert target["differences"][0]["widening"]  # 53 allowed, listed first
    assert set(section.policies) >= {"testing/myapp-policy"}


def _difference(i: int, widening: bool) -> Difference:
    pods = "default/debug", "testing/nginx-7c5ddbdf54-2wlqs"
    return Difference(*pods, "TCP", 1000 + i, not widening, widening, None, "default")


def test_counterexamples_are_bounded_and_the_bound_stated() -> None:
    bundle = _example()
    assert bundle.snapshot is not None
    many = tuple(sorted(_difference(i, i % 3 == 0) for i in range(MAX_DIFFERENCES + 50)))
    report = VerifyReport("nft", many, 0, 0, (), ())
    section = targets_section(
        CompareReport((TargetRow("nft", 10, 1, report=report),)),
        bundle.policies,
        bundle.snapshot,
        bundle.locate,
    )
    (target,) = section.json["targets"]
    assert target["differences_total"] == MAX_DIFFERENCES + 50
    assert len(target["differences"]) == MAX_DIFFERENCES
    assert all(d["widening"] for d in target["differences"][: (MAX_DIFFERENCES + 50 + 2) // 3])
    assert any(f"the first {MAX_DIFFERENCES} are listed" in s for s in section.summary)


def test_changes_are_bounded_per_kind_and_the_bound_stated() -> None:
    opened = [Change(f"a/p{i:04}", "b/q", "TCP", 80, False, True) for i in range(MAX_CHANGES + 7)]
    closed = [Change("b/q", f"a/p{i:04}", "TCP", 80, True, False) for i in range(3)]
    section = diff_section(DiffReport(tuple(sorted(opened + closed)), (), ()), ["old/"])
    assert len(section.json["opened"]) == MAX_CHANGES and len(section.json["closed"]) == 3
    assert section.json["opened_total"] == MAX_CHANGES + 7
    assert any(
        f"The first {MAX_CHANGES:,} of the {MAX_CHANGES + 7:,} opened flows" in s
        for s in section.summary
    )
