"""``npc report``: one self-contained HTML page, the same data as JSON, bounded at scale."""

from __future__ import annotations

import json
import random
import re
import shutil
from pathlib import Path

import pytest

from npc.analysis.graph import build_graph
from npc.analysis.lint import LintOptions, lint
from npc.analysis.reach import Reach
from npc.analysis.report import (
    MAX_FINDINGS,
    MAX_NAMESPACES,
    MAX_POLICIES,
    build_report,
    render_html,
    render_json,
)
from npc.flows import default_probes
from tests.helpers import run_cli as run
from tests.synth import scaled_cluster, scaled_policies

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ("testing", "xyz")
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is missing")


@pytest.fixture(autouse=True)
def _at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


#: The README's command for the examples' reports: with every target's verdict.
README_TARGETS = ("--targets", "nft,iptables,calico,alibaba", "--same-node", "trust")


def _report(
    capsys: pytest.CaptureFixture[str], example: str, fmt: str = "html", *extra: str
) -> str:
    status, out, err = run(
        capsys, "report", "-f", f"examples/{example}/", *extra, "-o", "-", "--format", fmt
    )
    assert status == 0, err
    return out


_SVG = re.compile(r"<svg.*</svg>", re.S)


@needs_dot
@pytest.mark.parametrize("example", EXAMPLES)
def test_the_page_loads_nothing(example: str, capsys: pytest.CaptureFixture[str]) -> None:
    """No src, no stylesheet link, no url(): every reference is a fragment of the page, and
    the Content Security Policy forbids fetching anything anyway."""
    before = {"xyz": "tests/data/report/xyz-before.yaml", "testing": "examples/xyz/policies.yaml"}
    html = _report(capsys, example, "html", *README_TARGETS, "--against", before[example])
    assert "default-src 'none'" in html
    assert not re.search(r"\ssrc=|<link|@import|url\(", html)
    hrefs = re.findall(r'href="([^"]*)"', html)
    assert hrefs and all(h.startswith("#") for h in hrefs), [h for h in hrefs if h[:1] != "#"]
    ids = set(re.findall(r'\sid="([^"]*)"', html))
    missing = {h[1:] for h in hrefs} - ids
    assert not missing, f"links to nothing: {sorted(missing)}"


@needs_dot
@pytest.mark.parametrize("example", EXAMPLES)
def test_the_committed_example_reports_are_current(
    example: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """examples/<case>/report.html is what the README's command writes (the SVG aside: its
    bytes are Graphviz's, which may differ between Graphviz versions)."""
    html = _report(capsys, example, "html", *README_TARGETS)
    committed = (ROOT / "examples" / example / "report.html").read_text(encoding="utf-8")
    assert _SVG.sub("<svg/>", html) == _SVG.sub("<svg/>", committed), (
        f"examples/{example}/report.html is stale: rerun the README's report command"
    )


def test_json_holds_the_same_data(capsys: pytest.CaptureFixture[str]) -> None:
    data = json.loads(_report(capsys, "xyz", "json"))
    assert data["sizes"] == {"namespaces": 3, "pods": 9, "classes": 9, "policies": 4}
    assert data["probes"] == ["80/TCP", "80/UDP", "81/TCP", "81/UDP"] and data["inputs"] == [
        "examples/xyz/"
    ]
    sections = data["sections"]
    assert set(sections) == {"graph", "namespaces", "lint", "policies"}
    assert sections["lint"]["findings"] == []  # the bundled examples are lint-clean
    assert sections["lint"]["summary"] == ["0 warnings and 0 notes."]
    graph = sections["graph"]["graph"]
    assert graph["omitted"] is None
    labels = {n["id"]: n.get("namespace", "") + "/" + n["label"] for n in graph["nodes"]}
    edges = {(labels[e["from"]], labels[e["to"]]): e for e in graph["edges"]}
    # x/a admits y's pod b on TCP 80, and namespace z on serve-81-tcp: one rule each.
    assert edges["y/pod=b", "x/pod=a"]["ports"] == "80/TCP"
    assert edges["y/pod=b", "x/pod=a"]["rules"] == [
        {
            "location": "examples/xyz/policies.yaml:26:5",
            "policy": "x/allow-ns-y-pod-b-and-ns-z",
            "rule": "spec.ingress[0]",
        }
    ]
    assert edges["z/pod=a", "x/pod=a"]["ports"] == "81/TCP"
    assert ("y/pod=a", "x/pod=a") not in edges  # y/a is not pod b
    namespaces = {n["namespace"]: n for n in sections["namespaces"]["namespaces"]}
    assert namespaces["x"]["ingress_isolated_pods"] == 3
    assert namespaces["x"]["egress_isolated_pods"] == 0
    assert namespaces["y"]["egress_isolated_pods"] == 1
    (ya,) = [c for c in namespaces["y"]["classes"] if c["pods"] == ["y/a"]]
    assert ya["egress_isolated_by"] == ["y/allow-egress-to-x-and-z-c"]
    assert ya["ingress_isolated_by"] == []
    policies = {p["policy"]: p for p in sections["policies"]["policies"]}
    assert policies["x/deny-ingress"]["selected_pods"] == 3
    assert policies["z/allow-cidr-except"]["rules"][0]["location"] == (
        "examples/xyz/policies.yaml:92:5"
    )


def test_a_report_needs_a_snapshot_and_writes_nothing_without(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report.html"
    status, _, err = run(capsys, "report", "-f", "examples/testing/policies.yaml", "-o", str(out))
    assert status == 2 and "npc report" in err
    assert not out.exists()


def test_json_by_the_output_suffix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.json"
    status, _, err = run(capsys, "report", "-f", "examples/testing/", "-o", str(out))
    assert status == 0, err
    assert json.loads(out.read_text(encoding="utf-8"))["title"] == "npc report"


def test_ten_thousand_pods_give_a_bounded_report_that_says_so() -> None:
    """tests/synth.py's scaled cluster (1,000 namespaces x 10 pods, 5,000 policies): the
    graph is not drawn (it says why), lists are cut at their bounds (they say so), and every
    policy a listed lint finding names is listed too (its link has a target)."""
    rng = random.Random(7)
    snapshot = scaled_cluster(rng)
    policies = scaled_policies(rng, snapshot)
    reach = Reach(policies, snapshot)
    graph = build_graph(reach, default_probes(snapshot))
    assert graph.omitted is not None and not graph.edges
    findings = lint(policies, snapshot, LintOptions())
    assert len(findings) > MAX_FINDINGS
    report = build_report(
        reach, graph, None, lambda origin: None, ["policies/", "cluster.yaml"], findings
    )
    html = render_html(report)
    assert len(html) < 3_000_000
    assert "Not drawn:" in html and "narrow it with --from/--to" in html
    assert f"The first {MAX_NAMESPACES} namespaces are listed" in html
    assert f"{MAX_POLICIES} are listed" in html
    assert f"The first {MAX_FINDINGS} are listed" in html
    assert html.count('<tr class="finding">') == MAX_FINDINGS
    linked = {f.policy for f in findings[:MAX_FINDINGS]}
    assert html.count('<details class="policy"') == len(
        linked | {p.key for p in list(policies)[:MAX_POLICIES]}
    )
    data = json.loads(render_json(report))
    assert data["sizes"]["pods"] == 10_000 and data["sizes"]["policies"] == 5000
    assert '<th>pods</th><td class="num">10,000</td>' in html
    assert data["sections"]["namespaces"]["namespaces_total"] == 1000
    assert len(data["sections"]["namespaces"]["namespaces"]) == MAX_NAMESPACES
