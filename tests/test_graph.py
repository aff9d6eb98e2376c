"""``npc reach -o dot|svg``: the class graph by namespace, golden-tested and bounded."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest

import npc
from npc import ir
from npc.analysis.graph import (
    MAX_GRAPH_NODES,
    build_graph,
    dot_quote,
    ports_label,
    to_dot,
)
from npc.analysis.reach import Reach
from npc.flows import Probe, default_probes
from tests.helpers import run_cli as run
from tests.synth import cluster_yaml, policy_yaml, scaled_cluster, scaled_policies

ROOT = Path(__file__).resolve().parent.parent
GRAPHS = Path(__file__).resolve().parent / "data" / "graphs"
TESTING = "examples/testing/"
XYZ = "examples/xyz/"

#: name -> `npc reach` arguments; the expected dot text is tests/data/graphs/<name>.dot.
CASES = {
    "testing": ["-f", TESTING],
    "testing-80": ["-f", TESTING, "--port", "80/TCP"],
    "xyz": ["-f", XYZ],
    "xyz-from-y": ["-f", XYZ, "--from", "y/"],
    "xyz-to-pod-c": ["-f", XYZ, "--to", "pod=c", "--port", "80", "--port", "81"],
}


@pytest.fixture(autouse=True)
def _at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # file positions in the dot text are relative, as typed


@pytest.mark.parametrize("name", sorted(CASES))
def test_dot_is_golden(name: str, capsys: pytest.CaptureFixture[str], update_golden: bool) -> None:
    status, out, err = run(capsys, "reach", *CASES[name], "-o", "dot")
    assert status == 0, err
    expected = GRAPHS / f"{name}.dot"
    if update_golden:
        expected.write_text(out, encoding="utf-8")
        return
    assert expected.exists(), f"no {expected}; run pytest --update-golden and review it"
    assert out == expected.read_text(encoding="utf-8"), f"dot for {name} differs from {expected}"


def test_no_orphan_graphs() -> None:
    assert sorted(p.stem for p in GRAPHS.glob("*")) == sorted(CASES)


def test_the_seed_002_graph_has_the_classes_and_edges_the_policies_make() -> None:
    bundle = npc.load(npc.read_sources([str(ROOT / TESTING)]))
    assert bundle.snapshot is not None
    reach = Reach(bundle.policies, bundle.snapshot)
    graph = build_graph(reach, [Probe(80)], locate=bundle.locate)
    labels = {n.id: (n.namespace, n.label) for n in graph.nodes}
    assert sorted(labels.values(), key=str) == sorted(
        [
            ("default", "debug"),
            ("kube-system", "coredns-5d78c9869d-7xk2p"),
            ("testing", "app=myapp"),
            ("testing", "app=nginx"),
            (None, "any address"),
        ],
        key=str,
    )
    edges = {(labels[e.source][1], labels[e.target][1]): e for e in graph.edges}
    # nginx admits everybody on 80 (ingress[0]); debug -> myapp is denied: no edge.
    assert ("debug", "app=myapp") not in edges
    assert [r.policy for r in edges["debug", "app=nginx"].rules] == ["testing/nginx-policy"]
    assert edges["debug", "app=nginx"].ports == "80/TCP"
    assert edges["debug", "app=nginx"].rules[0].location == f"{ROOT}/{TESTING}policies.yaml:63:7"
    # Between two open sides nothing is drawn (debug <-> coredns: the default, allowed).
    assert ("debug", "coredns-5d78c9869d-7xk2p") not in edges
    assert edges["app=nginx", "any address"].ports == "any port"
    assert edges["any address", "app=nginx"].ports == "80/TCP"


def test_replicas_are_one_node_labelled_by_what_selects_them() -> None:
    rng = random.Random(3)
    snapshot = scaled_cluster(rng, namespaces=6, pods_per_namespace=10)
    policies = scaled_policies(rng, snapshot, count=30)
    reach = Reach(policies, snapshot)
    graph = build_graph(reach, default_probes(snapshot))
    assert graph.omitted is None
    pods = [n for n in graph.nodes if n.kind == "pods"]
    assert sum(len(n.pods) for n in pods) == len(snapshot.pods)
    assert len(pods) < len(snapshot.pods) / 2
    for node in pods:
        assert "pod-template-hash" not in node.label  # no selector looks at it
        assert len({p.split("/")[0] for p in node.pods}) == 1  # one namespace per node


def test_dot_is_deterministic_and_quoted() -> None:
    assert dot_quote('a "b" \\ c\nd') == '"a \\"b\\" \\\\ c\\nd"'
    assert ports_label(ir.ANY_PORT) == "any port"
    assert (
        ports_label(
            ir.PortSet.of(("TCP", 80), ("TCP", (8000, 8080)), ("UDP", "dns"), ("SCTP", None))
        )
        == "any/SCTP, 80/TCP, 8000-8080/TCP, dns/UDP"  # protocols in the IR's order
    )


def test_a_graph_too_large_is_not_drawn_and_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(7)
    snapshot = scaled_cluster(rng, namespaces=100, pods_per_namespace=10)
    policies = scaled_policies(rng, snapshot, count=400)
    reach = Reach(policies, snapshot)
    graph = build_graph(reach, default_probes(snapshot))
    assert len(graph.nodes) > MAX_GRAPH_NODES
    assert graph.edges == () and graph.omitted is not None and "--from/--to" in graph.omitted
    dot = to_dot(graph)
    assert "->" not in dot and "not drawn" in dot


def test_svg_too_large_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(7)
    snapshot = scaled_cluster(rng, namespaces=90, pods_per_namespace=4)
    policies = scaled_policies(rng, snapshot, count=60)
    (tmp_path / "p.yaml").write_text(policy_yaml(policies), encoding="utf-8")
    (tmp_path / "c.yaml").write_text(cluster_yaml(snapshot), encoding="utf-8")
    files = ["-f", str(tmp_path / "p.yaml"), "-f", str(tmp_path / "c.yaml")]
    status, out, err = run(capsys, "reach", *files, "-o", "svg")
    assert status == 2 and out == ""
    assert "too large to draw" in err and "--from/--to" in err
    status, out, err = run(
        capsys, "reach", *files, "--from", "ns0003/", "--to", "ns0004/", "-o", "svg"
    )
    if shutil.which("dot") is not None:
        assert status == 0 and out.startswith("<?xml"), err


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is not installed")
def test_svg_keeps_the_ids_and_links(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "reach", "-f", TESTING, "-o", "svg")
    assert status == 0, err
    assert "<svg" in out and 'class="cluster"' in out and '<g id="e1" class="edge">' in out
    assert 'href="#r-testing/nginx-policy/ingress/0"' in out


def test_svg_without_graphviz_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    status, out, err = run(capsys, "reach", "-f", TESTING, "-o", "svg")
    assert (status, out) == (1, "")
    assert "Graphviz" in err and "-o dot" in err


def test_an_empty_cluster_is_an_empty_graph(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(
        capsys,
        "reach",
        "-f",
        TESTING,
        "--from",
        "nowhere/",
        "--to",
        "nowhere/",
        "--port",
        "80",
        "-o",
        "dot",
    )
    assert status == 0 and "no pod" in err
    assert "->" not in out and out.startswith("digraph npc {")
