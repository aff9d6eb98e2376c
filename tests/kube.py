"""Tiny clusters as Kubernetes YAML, and reachability matrices written out as text.

Tests build inputs the way users do (YAML through :func:`npc.load`) and spell out expected
matrices like this, rows from and columns to::

          web  api  db
    web   =    +    -
    api   +    =    -
    db    -    -    =

``+`` allowed, ``-`` denied, ``=`` a pod to itself (always allowed). :func:`assert_matrix`
checks the reference semantics and the reach engine against it.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import npc
from npc import kubeyaml
from npc.analysis.reach_tiers import make_reach
from npc.analysis.semantics import Semantics
from npc.flows import Probe
from npc.snapshot import Pod

PortSpec = tuple[int, str] | tuple[int, str, str]


def namespace(name: str, **labels: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = dict(labels)
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def pod(
    namespace: str,
    name: str,
    ips: str | Sequence[str],
    labels: Mapping[str, str] | None = None,
    ports: Iterable[PortSpec] = (),
    *,
    host_network: bool = False,
    phase: str = "Running",
    node: str = "node-1",
) -> dict[str, Any]:
    """A pod; ``ports`` are ``(number, protocol)`` or ``(number, protocol, name)``."""
    addresses = [ips] if isinstance(ips, str) else list(ips)
    container: dict[str, Any] = {"name": "main", "image": "busybox"}
    if ports:
        container["ports"] = [
            {"containerPort": p[0], "protocol": p[1], **({"name": p[2]} if len(p) > 2 else {})}
            for p in ports
        ]
    spec: dict[str, Any] = {"containers": [container], "nodeName": node}
    if host_network:
        spec["hostNetwork"] = True
    status: dict[str, Any] = {"phase": phase}
    if addresses:
        status["podIP"] = addresses[0]
        status["podIPs"] = [{"ip": a} for a in addresses]
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        meta["labels"] = dict(labels)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}


def cluster(*objects: dict[str, Any]) -> str:
    """``kubectl get ns,pods -A -o yaml`` output for these objects."""
    return kubeyaml.dump({"apiVersion": "v1", "kind": "List", "items": list(objects)})


def bundle(policies: str, *objects: dict[str, Any]) -> npc.Bundle:
    """Load policies (YAML text, dedented) together with a cluster of ``objects``."""
    sources = [npc.Source("policies.yaml", textwrap.dedent(policies).lstrip("\n"))]
    if objects:
        sources.append(npc.Source("cluster.yaml", cluster(*objects)))
    return npc.load(sources)


def _short(pods: Sequence[Pod]) -> dict[str, Pod]:
    names = {p.name: p for p in pods}
    assert len(names) == len(pods), "matrix tests need pod names unique across namespaces"
    return names


def render(
    allowed: Mapping[tuple[str, str], bool], names: Sequence[str], sources: Sequence[str]
) -> str:
    width = max(len(n) for n in names) + 2
    lines = [" " * width + "".join(n.ljust(width) for n in names).rstrip()]
    for s in sources:
        marks = ("=" if s == d else "+" if allowed[s, d] else "-" for d in names)
        lines.append((s.ljust(width) + "".join(m.ljust(width) for m in marks)).rstrip())
    return "\n".join(lines)


def _normalise(text: str) -> str:
    rows = [line.split() for line in textwrap.dedent(text).strip().splitlines()]
    names = rows[0]
    allowed = {}
    for row in rows[1:]:
        assert len(row) == len(names) + 1, f"bad expected row {row}"
        for d, mark in zip(names, row[1:], strict=True):
            assert mark in "+-=", f"unknown mark {mark!r}"
            assert (mark == "=") == (d == row[0]), f"'=' belongs on the diagonal: {row}"
            allowed[row[0], d] = mark != "-"
    return render(allowed, names, [r[0] for r in rows[1:]])


def matrix(
    b: npc.Bundle,
    probe: str,
    columns: Sequence[str] | None = None,
    rows: Sequence[str] | None = None,
) -> str:
    """The oracle's matrix for ``probe``; checks the reach engine gives the same one."""
    assert b.snapshot is not None
    pods = _short(b.snapshot.pods)
    columns = list(columns or pods)
    rows = list(rows or columns)
    p = Probe.parse(probe)
    sem = Semantics(b.policies, b.snapshot, b.cluster_policies)
    reach = make_reach(b.policies, b.snapshot, b.cluster_policies)
    allowed = {}
    for s in rows:
        for d in columns:
            want = sem.pod_allowed(pods[s], pods[d], p.protocol, p.port)
            assert reach.allowed(pods[s], pods[d], p) == want, f"reach differs on {s} -> {d}"
            allowed[s, d] = want
    return render(allowed, columns, rows)


def assert_matrix(b: npc.Bundle, probe: str, expected: str) -> None:
    """Rows of ``expected`` may be a subset of its columns."""
    want = _normalise(expected)
    lines = want.splitlines()
    columns = lines[0].split()
    rows = [line.split()[0] for line in lines[1:]]
    got = matrix(b, probe, columns, rows)
    assert got == want, f"{probe}:\nexpected:\n{want}\ngot:\n{got}"


# -- the usual small cluster of the semantics tests ----------------------------------------

NP = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
"""

# Three namespaces (a and b of team x, c of team y); web in a is the usual target.
PEERS_CLUSTER = (
    namespace("a", team="x"),
    namespace("b", team="x"),
    namespace("c", team="y"),
    pod("a", "web", "10.0.0.2", {"app": "web"}),
    pod("a", "api-a", "10.0.0.3", {"app": "api"}),
    pod("b", "api-b", "10.0.1.2", {"app": "api"}),
    pod("b", "db-b", "10.0.1.3", {"app": "db"}),
    pod("c", "api-c", "10.0.2.2", {"app": "api"}),
)


def web_ingress(rule: str) -> str:
    """A policy isolating a/web for ingress with one rule (YAML flow syntax)."""
    return NP + (
        "metadata: {name: web, namespace: a}\n"
        "spec:\n"
        "  podSelector: {matchLabels: {app: web}}\n"
        f"  ingress: [{rule}]\n"
    )


def column(
    admitted: set[str],
    names: tuple[str, ...] | list[str] = ("web", "api-a", "api-b", "db-b", "api-c"),
    target: str = "web",
) -> str:
    """The matrix where only ``target`` is isolated (ingress) and admits ``admitted``."""
    rows = ["       " + "  ".join(names)]
    for s in names:
        marks = []
        for d in names:
            if s == d:
                marks.append("=")
            elif d == target:
                marks.append("+" if s in admitted else "-")
            else:
                marks.append("+")
        rows.append(f"{s}  " + "  ".join(marks))
    return "\n".join(rows)
