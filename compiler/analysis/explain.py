"""Explaining policies and verdicts in plain language.

Two questions, both answered from the IR and the reference semantics
(:mod:`npc.analysis.semantics`):

* **What does this policy do?** :func:`explain_policy` gives numbered statements, the way
  NetworkPolicy tutorials explain an example: which pods become isolated in which direction,
  then one statement per peer of every rule (who may connect to them, or whom they may connect
  to, on which ports), with what is excluded (``except``) spelled out. Given a snapshot, each
  statement also says which pods it comes to, or that it matches nothing (the usual sign of a
  wrong label).
* **Why is this connection allowed or denied?** :func:`explain_flow` gives the verdict with
  its reasons: which policies isolate the source for egress and the destination for ingress,
  which rule admits the connection (by file:line), or, rule by rule, why none does.

The decisions themselves are the oracle's (``Semantics.verdict``, ``peer_matches``,
``ports_match``); this module only puts words to them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from npc import ir, tiers
from npc.analysis.semantics import Semantics
from npc.analysis.tier_explain import with_tiers
from npc.errors import Location
from npc.flows import Endpoint, Flow, Probe
from npc.resolve import Resolver
from npc.snapshot import Pod, Snapshot
from npc.wording import plural

__all__ = [
    "FlowExplanation",
    "PolicyExplanation",
    "RuleCheck",
    "SideExplanation",
    "Statement",
    "describe_peer",
    "describe_ports",
    "explain_flow",
    "explain_policy",
]

#: Turns an IR origin into a file position (``Bundle.locate``).
Locator = Callable[[ir.Origin | None], Location | None]

_EXAMPLES = 3


def _no_locator(origin: ir.Origin | None) -> Location | None:
    return None


def _where(locate: Locator, origin: ir.Origin | None) -> str | None:
    location = locate(origin)
    return str(location) if location is not None else None


def _and(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _pods_phrase(pods: Sequence[Pod]) -> str:
    """``2 pods: a/x, a/y`` (at most three named)."""
    keys = [p.key for p in pods]
    shown = ", ".join(keys[:_EXAMPLES])
    more = f" and {len(keys) - _EXAMPLES} more" if len(keys) > _EXAMPLES else ""
    return f"{plural(len(keys), 'pod')}: {shown}{more}"


# -- describing IR in words -------------------------------------------------------------------


def _selector(sel: ir.LabelSelector) -> str:
    return f"`{sel}`"


def describe_peer(policy: ir.Policy, peer: ir.Peer) -> str:
    """A peer as a noun phrase: ``pods in namespace shop matching `app=web```."""
    if isinstance(peer, ir.AddressPeer):
        cidr = str(peer.cidr) if peer.cidr is not None else str(peer.addresses)
        text = f"every address in {cidr}"
        if peer.excepts:
            text += " except " + _and([str(e) for e in peer.excepts])
        return text + " (pod addresses included)"
    pods = peer.pods
    if isinstance(peer.namespaces, ir.SameNamespace):
        where = f"in namespace {policy.namespace}"
    elif peer.namespaces.is_everything:
        where = "in every namespace"
    else:
        where = f"in namespaces matching {_selector(peer.namespaces)}"
    if pods.is_everything:
        return f"every pod {where}"
    return f"pods {where} matching {_selector(pods)}"


def _protocol_ports(entry: ir.ProtocolPorts, direction: str) -> str:
    if entry.all_ports:
        return f"every {entry.protocol} port"
    parts = []
    if entry.ranges:
        numbers = [str(r) for r in entry.ranges]
        many = len(entry.ranges) > 1 or entry.ranges[0].start != entry.ranges[0].end
        parts.append(f"{entry.protocol} port{'s' if many else ''} {_and(numbers)}")
    if entry.named:
        owner = "the destination pod" if direction == "egress" else "the pod"
        names = _and([f"`{n}`" for n in entry.named])
        plural = "s" if len(entry.named) > 1 else ""
        parts.append(f"the {entry.protocol} port{plural} named {names} on {owner}")
    return _and(parts)


def describe_ports(ports: ir.Ports, direction: str = "ingress") -> str:
    """``TCP port 80 and every UDP port``; named ports say whose port they are."""
    if isinstance(ports, ir.AnyPort):
        return "every port and protocol"
    return _and([_protocol_ports(e, direction) for e in ports.entries])


# -- per-policy statements --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Statement:
    """One numbered statement; ``rule`` is the field path it comes from, if any."""

    number: int
    text: str
    kind: str  # "isolation", "ingress" or "egress"
    rule: str | None = None
    location: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "kind": self.kind,
            "text": self.text,
            "rule": self.rule,
            "location": self.location,
        }


@dataclass(frozen=True, slots=True)
class PolicyExplanation:
    """What one policy says: its numbered statements, as text or JSON."""

    policy: str
    location: str | None
    statements: tuple[Statement, ...]

    def text(self) -> str:
        head = self.policy + (f"  ({self.location})" if self.location else "")
        lines = [head]
        lines.extend(f"{s.number}. {s.text}" for s in self.statements)
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "location": self.location,
            "statements": [s.to_json() for s in self.statements],
        }


class _Resolution:
    """What statements come to in a snapshot (optional)."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.resolver = Resolver(snapshot)

    def selected(self, policy: ir.Policy) -> str:
        pods = list(self.resolver.selected(policy))
        if not pods:
            return "In the snapshot no pod matches."
        return f"In the snapshot: {_pods_phrase(pods)}."

    def peer(self, policy: ir.Policy, peer: ir.Peer) -> str:
        if isinstance(peer, ir.AddressPeer):
            pods = list(self.resolver.address_pods(peer.addresses))
            return f" (in the snapshot, {_pods_phrase(pods)})" if pods else ""
        if isinstance(peer.namespaces, ir.LabelSelector) and not self.resolver.namespaces_matching(
            peer.namespaces
        ):
            return (
                f" (no namespace in the snapshot matches {_selector(peer.namespaces)}, "
                "so this peer matches nobody)"
            )
        pods = list(self.resolver.peer_pods(policy, peer))
        if not pods:
            return " (no pod in the snapshot matches, so this peer matches nobody)"
        return f" (in the snapshot, {_pods_phrase(pods)})"


def _subject(policy: ir.Policy) -> str:
    if policy.pod_selector.is_everything:
        return f"All pods in namespace {policy.namespace}"
    return f"The pods in namespace {policy.namespace} matching {_selector(policy.pod_selector)}"


def explain_policy(
    policy: ir.Policy, snapshot: Snapshot | None = None, locate: Locator = _no_locator
) -> PolicyExplanation:
    """Numbered statements for one policy (see the module docstring)."""
    resolution = _Resolution(snapshot) if snapshot is not None else None
    body: list[tuple[str, str, str | None, ir.Origin | None]] = []
    for direction in ("ingress", "egress"):
        rules = policy.rules(direction)
        for i, rule in enumerate(rules or ()):
            field_name = ir.Direction(direction).peer_field
            rule_path = f"spec.{direction}[{i}]"
            ports = "on " + describe_ports(rule.ports, direction)
            if isinstance(rule.peers, ir.AnyPeer):
                if direction == "ingress":
                    text = f"Any source (every pod and every address) may connect to them {ports}."
                else:
                    text = f"They may connect to any destination (every pod and address) {ports}."
                body.append((text, direction, rule_path, rule.origin))
                continue
            for j, peer in enumerate(rule.peers):
                noun = describe_peer(policy, peer)
                extra = resolution.peer(policy, peer) if resolution is not None else ""
                if direction == "ingress":
                    text = f"{noun[0].upper()}{noun[1:]}{extra} may connect to them {ports}."
                else:
                    text = f"They may connect to {noun}{extra} {ports}."
                origin = rule.origin.child((field_name, j)) if rule.origin is not None else None
                body.append((text, direction, f"{rule_path}.{field_name}[{j}]", origin))
    statements = [Statement(1, _isolation(policy, len(body), resolution), "isolation")]
    for n, (text, kind, path, origin) in enumerate(body, start=2):
        statements.append(Statement(n, text, kind, path, _where(locate, origin)))
    return PolicyExplanation(policy.key, _where(locate, policy.origin), tuple(statements))


def _isolation(policy: ir.Policy, rules: int, resolution: _Resolution | None) -> str:
    isolated = [d for d in ("ingress", "egress") if policy.rules(d) is not None]
    subject = _subject(policy)
    directions = " and ".join(isolated)
    if rules:
        span = "statement 2" if rules == 1 else f"statements 2-{rules + 1}"
        verbs = {"ingress": "accept", "egress": "open"}
        doing = " and ".join(verbs[d] for d in isolated)
        text = (
            f"{subject} are isolated for {directions}: they {doing} only the connections "
            f"{span} allow{'s' if rules == 1 else ''}, or that other policies selecting them allow."
        )
    else:
        text = f"{subject} are isolated for {directions}, and this policy allows nothing"
        text += ": every connection " + (
            "to and from them"
            if len(isolated) == 2
            else ("to them" if isolated == ["ingress"] else "from them")
        )
        text += " is denied unless another policy selecting them allows it."
    empty = [d for d in isolated if policy.rules(d) == ()]
    if rules and empty:
        text += f" No {' or '.join(empty)} connection is allowed by this policy."
    free = [d for d in ("ingress", "egress") if d not in isolated]
    if free:
        text += f" This policy does not restrict their {free[0]}."
    if resolution is not None:
        text += " " + resolution.selected(policy)
    return text


# -- a connection's verdict, with reasons ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class RuleCheck:
    """One rule of an isolating policy, and whether (and why not) it admits the flow."""

    policy: str
    rule: str
    location: str | None
    admits: bool
    reason: str

    def text(self) -> str:
        where = f" ({self.location})" if self.location else ""
        return f"{self.policy} {self.rule}{where}: {self.reason}"

    def to_json(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "rule": self.rule,
            "location": self.location,
            "admits": self.admits,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class SideExplanation:
    """The egress side (of the source) or the ingress side (of the destination)."""

    direction: str
    endpoint: str
    allowed: bool
    note: str
    isolated_by: tuple[tuple[str, str | None], ...] = ()
    checks: tuple[RuleCheck, ...] = ()
    #: What the ClusterNetworkPolicy tiers said (who decided, what a Pass handed on).
    tiers: tuple[str, ...] = ()

    def text(self) -> list[str]:
        preposition = "from" if self.direction == "egress" else "to"
        verdict = "allowed" if self.allowed else "denied"
        lines = [f"{self.direction} {preposition} {self.endpoint}: {verdict} ({self.note})"]
        lines.extend(f"  {line}" for line in self.tiers)
        if self.isolated_by:
            lines.append(
                "  isolated by "
                + ", ".join(f"{key} ({loc})" if loc else key for key, loc in self.isolated_by)
            )
        admitting = [c for c in self.checks if c.admits]
        for c in admitting:
            lines.append(f"  admitted by {c.text()}")
        if self.isolated_by and not admitting:
            lines.append("  no rule admits it:")
            lines.extend(f"    {c.text()}" for c in self.checks)
        return lines

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "direction": self.direction,
            "endpoint": self.endpoint,
            "allowed": self.allowed,
            "note": self.note,
            "isolated_by": [{"policy": k, "location": loc} for k, loc in self.isolated_by],
            "rules": [c.to_json() for c in self.checks],
        }
        if self.tiers:
            out["tiers"] = list(self.tiers)
        return out


@dataclass(frozen=True, slots=True)
class FamilyExplanation:
    """The verdict over one address family."""

    version: int
    src_address: str
    dst_address: str
    allowed: bool
    egress: SideExplanation
    ingress: SideExplanation

    def to_json(self) -> dict[str, Any]:
        return {
            "family": f"IPv{self.version}",
            "from_address": self.src_address,
            "to_address": self.dst_address,
            "allowed": self.allowed,
            "egress": self.egress.to_json(),
            "ingress": self.ingress.to_json(),
        }


@dataclass(frozen=True, slots=True)
class FlowExplanation:
    """The verdict on one connection and, per address family, each side's reasons."""

    src: str
    dst: str
    probe: Probe
    allowed: bool
    reason: str
    families: tuple[FamilyExplanation, ...] = field(default=())

    def text(self) -> str:
        verdict = "ALLOWED" if self.allowed else "DENIED"
        lines = [f"{self.src} -> {self.dst} on {self.probe}: {verdict}", f"  {self.reason}"]
        for fam in self.families:
            lines.append("")
            lines.append(
                f"over IPv{fam.version} ({fam.src_address} -> {fam.dst_address}): "
                + ("allowed" if fam.allowed else "denied")
            )
            lines.extend(fam.egress.text())
            lines.extend(fam.ingress.text())
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict[str, Any]:
        return {
            "from": self.src,
            "to": self.dst,
            "port": self.probe.port,
            "protocol": str(self.probe.protocol),
            "allowed": self.allowed,
            "reason": self.reason,
            "families": [f.to_json() for f in self.families],
        }


class _Checker:
    """Puts the oracle's decisions on one flow into words."""

    def __init__(self, sem: Semantics, locate: Locator, host_network: set[str]) -> None:
        self.sem = sem
        self.locate = locate
        #: Names of the endpoints that are hostNetwork pods (the oracle sees no pod there).
        self.host_network = host_network

    def peer_miss(self, policy: ir.Policy, peer: ir.Peer, other: Endpoint) -> str:
        """Why ``peer`` does not match ``other`` (the oracle said it does not)."""
        if isinstance(peer, ir.AddressPeer):
            if peer.cidr is not None and other.address not in peer.cidr:
                return f"{other.address} is not in {peer.cidr}"
            for e in peer.excepts:
                if other.address in e:
                    return f"{other.address} is in the excepted {e}"
            return f"{other.address} is not in {peer.addresses}"
        pod = other.pod
        if pod is None:
            who = "a hostNetwork pod" if other.name in self.host_network else "not a pod"
            return f"{other} is {who}; pod selectors never match it"
        if isinstance(peer.namespaces, ir.SameNamespace):
            if pod.namespace != policy.namespace:
                return f"{pod.key} is in namespace {pod.namespace}, not {policy.namespace}"
        else:
            labels = self.sem.snapshot.namespace_labels(pod.namespace)
            if not peer.namespaces.matches(labels):
                shown = ",".join(f"{k}={v}" for k, v in labels.items())
                return (
                    f"namespace {pod.namespace} (labels {shown}) does not match "
                    f"{_selector(peer.namespaces)}"
                )
        shown = ",".join(f"{k}={v}" for k, v in pod.labels.items()) or "none"
        return f"{pod.key} (labels {shown}) does not match {_selector(peer.pods)}"

    def check(
        self, policy: ir.Policy, direction: str, index: int, rule: ir.Rule, flow: Flow
    ) -> RuleCheck:
        other = flow.dst if direction == "egress" else flow.src
        ports_ok = Semantics.ports_match(rule.ports, flow)
        peers_ok = self.sem.peers_match(policy, rule.peers, other)
        path = f"spec.{direction}[{index}]"
        where = _where(self.locate, rule.origin)
        field_name = ir.Direction(direction).peer_field
        if ports_ok and peers_ok:
            peers = (
                "any peer"
                if isinstance(rule.peers, ir.AnyPeer)
                else _and(
                    [
                        describe_peer(policy, p)
                        for p in rule.peers
                        if self.sem.peer_matches(policy, p, other)
                    ]
                )
            )
            reason = f"{peers}, {describe_ports(rule.ports, direction)}"
            return RuleCheck(policy.key, path, where, True, reason)
        reasons = []
        if not peers_ok and isinstance(rule.peers, tuple):
            misses = [
                f"{field_name}[{j}] {self.peer_miss(policy, p, other)}"
                for j, p in enumerate(rule.peers)
            ]
            reasons.append("; ".join(misses))
        if not ports_ok:
            reasons.append(
                f"{flow.port}/{flow.protocol} is not {describe_ports(rule.ports, direction)}"
            )
        return RuleCheck(policy.key, path, where, False, "; ".join(reasons))

    def side(
        self, pod: Pod | None, endpoint: Endpoint, direction: str, flow: Flow
    ) -> SideExplanation:
        name = str(endpoint)
        if pod is None:
            note = (
                "a hostNetwork pod: no policy selects it"
                if name in self.host_network
                else "not a pod: no policy applies to it"
            )
            return SideExplanation(direction, name, True, note)
        isolating = self.sem.isolating(pod, direction)
        if not isolating:
            return SideExplanation(
                direction, name, True, f"no policy selects it for {direction}: not isolated"
            )
        checks: list[RuleCheck] = []
        for policy in isolating:
            rules = policy.rules(direction) or ()
            if not rules:
                where = _where(self.locate, policy.origin)
                checks.append(
                    RuleCheck(
                        policy.key, f"spec.{direction}", where, False, f"no {direction} rules"
                    )
                )
            for i, rule in enumerate(rules):
                checks.append(self.check(policy, direction, i, rule, flow))
        allowed = any(c.admits for c in checks)
        isolated_by = tuple((p.key, _where(self.locate, p.origin)) for p in isolating)
        note = "a rule admits it" if allowed else "isolated, and no rule admits it"
        other = flow.dst if direction == "egress" else flow.src
        if not allowed and self.sem.own_node(pod, other):
            allowed = True
            note = (
                f"{other} is its own node ({pod.node_name}): traffic between a pod and its "
                "node is always allowed (semantics rule 8)"
            )
        return SideExplanation(direction, name, allowed, note, isolated_by, tuple(checks))


def _endpoint(target: Pod | str, version: int) -> Endpoint:
    if isinstance(target, Pod):
        return Endpoint.of_pod(target, version)
    return Endpoint.of_address(target)


def _versions(target: Pod | str) -> set[int]:
    if isinstance(target, Pod):
        return {a.version for a in target.ips}
    return {Endpoint.of_address(target).address.version}


def explain_flow(
    policies: ir.PolicySet,
    snapshot: Snapshot,
    src: Pod | str,
    dst: Pod | str,
    probe: Probe,
    locate: Locator = _no_locator,
    cluster_policies: tiers.ClusterPolicySet = tiers.EMPTY,
) -> FlowExplanation:
    """Whether ``src`` may connect to ``dst`` on ``probe``, and why; endpoints are snapshot
    pods or addresses outside the cluster. Agrees with ``Semantics.pod_allowed``. With
    ``cluster_policies``, each side also names the tier, policy, rule and action that decided
    it, and what a ``Pass`` handed on."""
    sem = Semantics(policies, snapshot, cluster_policies)
    host = {t.key for t in (src, dst) if isinstance(t, Pod) and t.host_network}
    checker = _Checker(sem, locate, host)
    src_name = src.key if isinstance(src, Pod) else src
    dst_name = dst.key if isinstance(dst, Pod) else dst
    if isinstance(src, Pod) and isinstance(dst, Pod) and src.key == dst.key:
        return FlowExplanation(
            src_name,
            dst_name,
            probe,
            True,
            "a pod may always connect to itself (the traffic never leaves its network "
            "namespace; semantics rule 7)",
        )
    shared = sorted(_versions(src) & _versions(dst))
    if not shared:
        return FlowExplanation(
            src_name, dst_name, probe, False, "they share no address family, so cannot connect"
        )
    families = []
    for v in shared:
        flow = Flow(_endpoint(src, v), _endpoint(dst, v), probe.protocol, probe.port)
        egress = checker.side(flow.src.pod, flow.src, "egress", flow)
        ingress = checker.side(flow.dst.pod, flow.dst, "ingress", flow)
        if cluster_policies:
            egress = with_tiers(egress, sem.side(flow.src.pod, "egress", flow.dst, flow), locate)
            ingress = with_tiers(ingress, sem.side(flow.dst.pod, "ingress", flow.src, flow), locate)
        assert (egress.allowed and ingress.allowed) == sem.allowed(flow)
        families.append(
            FamilyExplanation(
                v,
                str(flow.src.address),
                str(flow.dst.address),
                egress.allowed and ingress.allowed,
                egress,
                ingress,
            )
        )
    allowed = any(f.allowed for f in families)
    if allowed:
        reason = "the source's egress side and the destination's ingress side both allow it"
        if len(families) > 1:
            open_ = _and([f"IPv{f.version}" for f in families if f.allowed])
            closed = [f"IPv{f.version}" for f in families if not f.allowed]
            reason += f" over {open_}"
            reason += f" (dual-stack: not over {_and(closed)})" if closed else " (dual-stack)"
    else:
        names = {"egress": "the source's egress side", "ingress": "the destination's ingress side"}
        denying: dict[str, list[str]] = {}
        for f in families:
            for side in (f.egress, f.ingress):
                if not side.allowed:
                    denying.setdefault(side.direction, []).append(f"IPv{f.version}")
        parts = []
        for direction, versions in denying.items():
            over = f" over {_and(versions)}" if len(families) > 1 else ""
            parts.append(f"{names[direction]}{over}")
        reason = f"{_and(parts)} {'deny' if len(parts) > 1 else 'denies'} it"
        if len(families) > 1:
            reason += " (dual-stack: no address family both have lets it through)"
    return FlowExplanation(src_name, dst_name, probe, allowed, reason, tuple(families))
