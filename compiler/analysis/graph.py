"""The reachability graph: who may talk to whom, at the level people think in.

Nodes are the classes of pods :mod:`npc.analysis.reach` computes (pods no policy can tell
apart: the replicas of a Deployment are one node), split by namespace and labelled by the
labels that policies select them by; outside address ranges that rules name (``ipBlock``)
and "any address" (a rule without peers) are nodes of their own. An edge says that every pod
of one node may open connections to every pod of the other on the probed ports its label
lists; an edge to or from an address node is a rule naming that range, labelled with the
rule's ports.

Flows between two sides that no policy isolates (the Kubernetes default: allow) are not
drawn, or every graph would be complete: a node's text says which of its directions are
isolated ("open" means every connection in that direction is allowed). Each drawn edge
knows the rules that admit it (the oracle's :meth:`~npc.analysis.semantics.Semantics.verdict`
on one pod of each node), by policy, direction, index and file position.

Sizes are bounded (:data:`MAX_GRAPH_NODES`, :data:`MAX_GRAPH_EDGES`): a larger graph is not
drawn (``omitted`` says why), since nobody reads it and Graphviz takes minutes on it.
:func:`to_dot` is deterministic: nodes, clusters and edges sorted, no timestamps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from npc import ir
from npc.analysis.reach import Reach
from npc.analysis.semantics import Semantics
from npc.errors import Location
from npc.flows import Endpoint, Flow, Probe
from npc.snapshot import Pod
from npc.wording import plural

__all__ = [
    "MAX_GRAPH_EDGES",
    "MAX_GRAPH_NODES",
    "GraphEdge",
    "GraphNode",
    "ReachGraph",
    "RuleLink",
    "build_graph",
    "class_label",
    "dot_quote",
    "ports_label",
    "rule_anchor",
    "selected_keys",
    "to_dot",
]

#: Largest graph drawn: nodes (pod classes and address ranges) and edges.
MAX_GRAPH_NODES = 200
MAX_GRAPH_EDGES = 1500

#: Turns an IR origin into a file position (``Bundle.locate``).
Locator = Callable[[ir.Origin | None], Location | None]

ANY_ADDRESS = "any address"
_FILL = {  # (ingress isolated, egress isolated) -> fill colour
    (True, True): "#e6f4ea",
    (True, False): "#fef7e0",
    (False, True): "#fef7e0",
    (False, False): "#fce8e6",
}


def _no_locator(origin: ir.Origin | None) -> Location | None:
    return None


def rule_anchor(policy: str, direction: str, index: int) -> str:
    """The HTML id of a rule in the report (``r-shop/web/ingress/0``)."""
    return f"r-{policy}/{direction}/{index}"


@dataclass(frozen=True, slots=True)
class RuleLink:
    """A rule that admits an edge: its policy (``namespace/name``), direction, index and
    file position."""

    policy: str
    direction: str
    index: int
    location: str | None

    @property
    def anchor(self) -> str:
        return rule_anchor(self.policy, self.direction, self.index)

    @property
    def path(self) -> str:
        return f"spec.{self.direction}[{self.index}]"

    def __str__(self) -> str:
        where = f" ({self.location})" if self.location else ""
        return f"{self.policy} {self.path}{where}"

    def to_json(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "rule": self.path,
            "location": self.location,
        }


@dataclass(frozen=True, slots=True)
class GraphNode:
    """A node: pods of one class in one namespace (``kind="pods"``), or an address range."""

    id: str
    kind: str  # "pods" or "addresses"
    label: str
    namespace: str | None = None
    pods: tuple[str, ...] = ()
    ingress_isolated: bool = False
    egress_isolated: bool = False

    @property
    def title(self) -> str:
        """The label with the namespace: ``shop/app=web``."""
        return self.label if self.namespace is None else f"{self.namespace}/{self.label}"

    @property
    def lines(self) -> tuple[str, ...]:
        """The text drawn in the node."""
        if self.kind != "pods":
            return (self.label,)
        count = (
            self.pods[0].split("/", 1)[1] if len(self.pods) == 1 else plural(len(self.pods), "pod")
        )
        sides = (
            f"in: {'isolated' if self.ingress_isolated else 'open'}, "
            f"out: {'isolated' if self.egress_isolated else 'open'}"
        )
        return (self.label, count, sides) if self.label != count else (count, sides)

    def to_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {"id": self.id, "kind": self.kind, "label": self.label}
        if self.kind == "pods":
            found.update(
                namespace=self.namespace,
                pods=list(self.pods),
                ingress_isolated=self.ingress_isolated,
                egress_isolated=self.egress_isolated,
            )
        return found


@dataclass(frozen=True, slots=True)
class GraphEdge:
    """``source`` may connect to ``target`` on ``ports`` (probes for pod edges, the rule's
    ports for address edges), admitted by ``rules`` (empty for an open side)."""

    id: str
    source: str
    target: str
    ports: str
    rules: tuple[RuleLink, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "from": self.source,
            "to": self.target,
            "ports": self.ports,
            "rules": [r.to_json() for r in self.rules],
        }


@dataclass(frozen=True)
class ReachGraph:
    """Nodes (pod nodes grouped by namespace, then address nodes) and edges, sorted; when
    the graph is larger than the bounds, ``edges`` is empty and ``omitted`` says why."""

    nodes: tuple[GraphNode, ...]
    edges: tuple[GraphEdge, ...]
    probes: tuple[Probe, ...]
    omitted: str | None = None
    _by_id: dict[str, GraphNode] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_id.update((n.id, n) for n in self.nodes)

    def node(self, node_id: str) -> GraphNode:
        return self._by_id[node_id]

    @property
    def namespaces(self) -> tuple[str, ...]:
        return tuple(sorted({n.namespace for n in self.nodes if n.namespace is not None}))

    def to_json(self) -> dict[str, Any]:
        return {
            "probes": [str(p) for p in self.probes],
            "nodes": [n.to_json() for n in self.nodes],
            "edges": [e.to_json() for e in self.edges],
            "omitted": self.omitted,
        }


def ports_label(ports: ir.Ports) -> str:
    """A rule's ports, short: ``80/TCP, 53/UDP, http/TCP``, ``any port``."""
    if isinstance(ports, ir.AnyPort):
        return "any port"
    parts = []
    for entry in ports.entries:
        if entry.all_ports:
            parts.append(f"any/{entry.protocol}")
            continue
        parts.extend(f"{r}/{entry.protocol}" for r in entry.ranges)
        parts.extend(f"{n}/{entry.protocol}" for n in entry.named)
    return ", ".join(parts)


def _probes_label(allowed: Sequence[Probe], probes: Sequence[Probe]) -> str:
    if len(allowed) == len(probes) and len(probes) > 3:
        return "every probed port"
    return ", ".join(str(p) for p in allowed)


def selected_keys(policies: ir.PolicySet) -> frozenset[str]:
    """Label keys a pod selector of some policy looks at."""
    keys: set[str] = set()
    for policy in policies:
        keys |= policy.pod_selector.keys
        for rules in (policy.ingress or (), policy.egress or ()):
            for rule in rules:
                if isinstance(rule.peers, tuple):
                    for peer in rule.peers:
                        if isinstance(peer, ir.PodPeer):
                            keys |= peer.pods.keys
    return frozenset(keys)


def class_label(pods: Sequence[Pod], keys: frozenset[str]) -> str:
    """The labels all pods share among those selectors look at, else the first pod's name."""
    common = dict(pods[0].labels)
    for pod in pods[1:]:
        common = {k: v for k, v in common.items() if pod.labels.get(k) == v}
    shown = sorted((k, v) for k, v in common.items() if k in keys)
    if shown:
        return ",".join(f"{k}={v}" for k, v in shown)
    return pods[0].name if len(pods) == 1 else "(no selected labels)"


@dataclass(slots=True)
class _PodNode:
    node: GraphNode
    cls: int
    members: list[Pod]
    is_source: bool
    is_target: bool


def _pod_nodes(reach: Reach, sources: Sequence[Pod], targets: Sequence[Pod]) -> list[_PodNode]:
    keys = selected_keys(reach.policies)
    sem = Semantics(reach.policies, reach.snapshot)
    source_keys = {p.key for p in sources}
    target_keys = {p.key for p in targets}
    groups: dict[tuple[str, int], list[Pod]] = {}
    for pod in sorted({p.key: p for p in (*sources, *targets)}.values(), key=lambda p: p.key):
        groups.setdefault((pod.namespace, reach.class_of(pod).index), []).append(pod)
    found = []
    for (namespace, ci), members in groups.items():
        rep = members[0]
        node = GraphNode(
            id="",
            kind="pods",
            label=class_label(members, keys),
            namespace=namespace,
            pods=tuple(p.key for p in members),
            ingress_isolated=bool(sem.isolating(rep, "ingress")),
            egress_isolated=bool(sem.isolating(rep, "egress")),
        )
        found.append(
            _PodNode(
                node,
                ci,
                members,
                any(p.key in source_keys for p in members),
                any(p.key in target_keys for p in members),
            )
        )
    found.sort(key=lambda n: (n.node.namespace or "", n.node.label, n.node.pods[0]))
    return found


def _link(policy: ir.Policy, direction: str, index: int, locate: Locator) -> RuleLink:
    rules = policy.rules(direction) or ()
    location = locate(rules[index].origin) if index < len(rules) else None
    return RuleLink(policy.key, direction, index, str(location) if location else None)


def _admitting(
    sem: Semantics, src: Pod, dst: Pod, probes: Iterable[Probe], locate: Locator
) -> tuple[RuleLink, ...]:
    """The rules that admit connections from ``src`` to ``dst`` on ``probes`` (ingress first:
    the destination's rules are usually what a reader looks for)."""
    versions = sorted({a.version for a in src.ips} & {a.version for a in dst.ips})
    found: set[RuleLink] = set()
    for probe in probes:
        for v in versions:
            flow = Flow(
                Endpoint.of_pod(src, v), Endpoint.of_pod(dst, v), probe.protocol, probe.port
            )
            verdict = sem.verdict(flow)
            if not verdict.allowed:
                continue
            for side in (verdict.ingress, verdict.egress):
                for ref in side.admitted_by:
                    found.add(_link(ref.policy, ref.direction, ref.index, locate))
    return tuple(sorted(found, key=lambda r: (r.direction != "ingress", r.policy, r.index)))


def _address_label(peer: ir.AddressPeer) -> str:
    if peer.cidr is None:
        return str(peer.addresses)
    text = str(peer.cidr)
    if peer.excepts:
        text += " except " + ", ".join(str(e) for e in peer.excepts)
    return text


def build_graph(
    reach: Reach,
    probes: Sequence[Probe],
    sources: Sequence[Pod] | None = None,
    targets: Sequence[Pod] | None = None,
    locate: Locator = _no_locator,
) -> ReachGraph:
    """The graph of ``reach`` from ``sources`` to ``targets`` (default: every pod) on
    ``probes`` (see the module docstring)."""
    chosen = tuple(sorted(set(probes)))
    src_pods = list(reach.pods if sources is None else sources)
    dst_pods = list(reach.pods if targets is None else targets)
    pod_nodes = _pod_nodes(reach, src_pods, dst_pods)
    for n, pn in enumerate(pod_nodes, start=1):
        pn.node = _renamed(pn.node, f"n{n}")
    address_edges, address_nodes = _address_parts(reach.policies, pod_nodes, locate)
    nodes = tuple([pn.node for pn in pod_nodes] + address_nodes)
    if len(nodes) > MAX_GRAPH_NODES:
        return ReachGraph(
            nodes,
            (),
            chosen,
            f"{plural(len(nodes), 'node')}, more than the {MAX_GRAPH_NODES} drawn: "
            "narrow it with --from/--to",
        )
    matrices = [reach.matrix(p) for p in chosen]
    pairs: list[tuple[_PodNode, _PodNode, list[Probe]]] = []
    for s in pod_nodes:
        if not s.is_source:
            continue
        for d in pod_nodes:
            if not d.is_target or not (s.node.egress_isolated or d.node.ingress_isolated):
                continue
            if s is d and len(s.members) == 1:
                continue  # a pod always reaches itself
            allowed = [m.probe for m in matrices if m.allows(s.cls, d.cls)]
            if allowed:
                pairs.append((s, d, allowed))
    total = len(pairs) + len(address_edges)
    if total > MAX_GRAPH_EDGES:
        return ReachGraph(
            nodes,
            (),
            chosen,
            f"{plural(total, 'edge')}, more than the {MAX_GRAPH_EDGES} drawn: "
            "narrow it with --from/--to",
        )
    sem = Semantics(reach.policies, reach.snapshot)
    edges: list[tuple[str, str, str, tuple[RuleLink, ...]]] = []
    for s, d, allowed in pairs:
        src = s.members[0]
        dst = d.members[1] if s is d else d.members[0]
        edges.append(
            (
                s.node.id,
                d.node.id,
                _probes_label(allowed, chosen),
                _admitting(sem, src, dst, allowed, locate),
            )
        )
    edges.extend(address_edges)
    order = {n.id: i for i, n in enumerate(nodes)}
    edges.sort(key=lambda e: (order[e[0]], order[e[1]]))
    return ReachGraph(
        nodes,
        tuple(GraphEdge(f"e{i}", *e) for i, e in enumerate(edges, start=1)),
        chosen,
    )


def _renamed(node: GraphNode, node_id: str) -> GraphNode:
    return GraphNode(
        node_id,
        node.kind,
        node.label,
        node.namespace,
        node.pods,
        node.ingress_isolated,
        node.egress_isolated,
    )


def _address_parts(
    policies: ir.PolicySet, pod_nodes: Sequence[_PodNode], locate: Locator
) -> tuple[list[tuple[str, str, str, tuple[RuleLink, ...]]], list[GraphNode]]:
    """Edges between pod nodes and the address ranges (and "any address") rules name."""
    labels: set[str] = set()
    raw: dict[tuple[str, str, bool], tuple[list[str], list[RuleLink]]] = {}
    by_namespace: dict[str | None, list[_PodNode]] = {}
    for pn in pod_nodes:
        if not pn.members[0].host_network:
            by_namespace.setdefault(pn.node.namespace, []).append(pn)
    for policy in policies:
        named = [
            (direction, i, rule)
            for direction in ("egress", "ingress")
            for i, rule in enumerate(policy.rules(direction) or ())
            if isinstance(rule.peers, ir.AnyPeer)
            or any(isinstance(p, ir.AddressPeer) for p in rule.peers)
        ]
        if not named:
            continue
        selected = [
            pn
            for pn in by_namespace.get(policy.namespace, ())
            if policy.pod_selector.matches(pn.members[0].labels)
        ]
        for direction, i, rule in named:
            if isinstance(rule.peers, ir.AnyPeer):
                names = [ANY_ADDRESS]
            else:
                names = [_address_label(p) for p in rule.peers if isinstance(p, ir.AddressPeer)]
            for name in names:
                for pn in selected:
                    if not (pn.is_source if direction == "egress" else pn.is_target):
                        continue
                    labels.add(name)
                    ports, links = raw.setdefault(
                        (pn.node.id, name, direction == "egress"), ([], [])
                    )
                    ports.append(ports_label(rule.ports))
                    links.append(_link(policy, direction, i, locate))
    ordered = sorted(labels, key=lambda x: (x != ANY_ADDRESS, x))
    ids = {name: f"a{n}" for n, name in enumerate(ordered, start=1)}
    nodes = [GraphNode(ids[name], "addresses", name) for name in ordered]
    edges = []
    for (pod_id, name, egress), (ports, links) in raw.items():
        text = "any port" if "any port" in ports else ", ".join(dict.fromkeys(ports))
        pair = (pod_id, ids[name]) if egress else (ids[name], pod_id)
        edges.append((*pair, text, tuple(dict.fromkeys(links))))
    return edges, nodes


# -- dot -----------------------------------------------------------------------------------


def dot_quote(text: str) -> str:
    """A Graphviz double-quoted string: backslash and quote escaped, newlines as ``\\n``
    (the DOT language: "the only escaped character is the double-quote"; a backslash before
    anything else stays, so it is doubled to mean itself)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _attrs(**values: str) -> str:
    return "[" + ", ".join(f"{k}={dot_quote(v)}" for k, v in values.items()) + "]"


def _tooltip(edge: GraphEdge, graph: ReachGraph) -> str:
    head = f"{graph.node(edge.source).title} -> {graph.node(edge.target).title}: {edge.ports}"
    if not edge.rules:
        return head
    return head + "\n" + "\n".join(f"admitted by {r}" for r in edge.rules)


@dataclass(frozen=True, slots=True)
class ChangeEdge:
    """Flows a change opens (or closes) from the pods of node ``source`` to those of node
    ``target``, on ``ports``; drawn dashed over the graph, green (or red)."""

    source: str
    target: str
    opened: bool
    ports: str


#: Colours of the edges a change opens and closes.
_CHANGE_COLOUR = {True: "#188038", False: "#d93025"}


def to_dot(graph: ReachGraph, changes: Sequence[ChangeEdge] = ()) -> str:
    """The graph in the DOT language, namespaces as clusters; deterministic. Nodes and
    edges carry ``id`` attributes (kept in Graphviz's SVG) and edges a ``URL`` to the first
    rule admitting them (``#r-...``, the report's anchors). ``changes`` are drawn as dashed
    edges of their own (ids ``c1``, ...) linking to the report's list of them."""
    out = [
        "digraph npc {",
        '  graph [rankdir="LR", fontname="Helvetica", fontsize="11", nodesep="0.25", '
        'ranksep="0.9", compound="true"];',
        '  node [shape="box", style="rounded,filled", fontname="Helvetica", fontsize="10"];',
        '  edge [fontname="Helvetica", fontsize="9", color="#5f6368", fontcolor="#202124"];',
    ]
    if graph.omitted is not None:
        out.append(f"  label={dot_quote('not drawn: ' + graph.omitted)};")
    for namespace in graph.namespaces:
        out.append(f"  subgraph {dot_quote('cluster_' + namespace)} {{")
        cluster = _attrs(
            label="namespace " + namespace, id="ns-" + namespace, style="rounded", color="#9aa0a6"
        )
        out.append(f"    graph {cluster};")
        for node in graph.nodes:
            if node.namespace == namespace:
                fill = _FILL[node.ingress_isolated, node.egress_isolated]
                tooltip = "\n".join(node.pods[:20]) + (
                    f"\n... and {len(node.pods) - 20} more" if len(node.pods) > 20 else ""
                )
                attrs = _attrs(
                    label="\n".join(node.lines), id=node.id, fillcolor=fill, tooltip=tooltip
                )
                out.append(f"    {dot_quote(node.id)} {attrs};")
        out.append("  }")
    for node in graph.nodes:
        if node.namespace is None:
            attrs = _attrs(
                label=node.label,
                id=node.id,
                shape="ellipse",
                style="dashed",
                tooltip="addresses: " + node.label,
            )
            out.append(f"  {dot_quote(node.id)} {attrs};")
    for edge in graph.edges:
        values = {"label": edge.ports, "id": edge.id, "tooltip": _tooltip(edge, graph)}
        if edge.rules:
            values["URL"] = "#" + edge.rules[0].anchor
        out.append(f"  {dot_quote(edge.source)} -> {dot_quote(edge.target)} {_attrs(**values)};")
    for n, change in enumerate(changes, 1):
        kind = "opened" if change.opened else "closed"
        colour = _CHANGE_COLOUR[change.opened]
        attrs = _attrs(
            label=f"{kind}: {change.ports}",
            id=f"c{n}",
            style="dashed",
            color=colour,
            fontcolor=colour,
            penwidth="1.6",
            tooltip=f"{graph.node(change.source).title} -> {graph.node(change.target).title}: "
            f"{kind} on {change.ports}",
            URL=f"#diff-{kind}",
        )
        out.append(f"  {dot_quote(change.source)} -> {dot_quote(change.target)} {attrs};")
    out.append("}")
    return "\n".join(out) + "\n"
