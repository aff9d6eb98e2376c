"""ClusterNetworkPolicy tiers as ECS priorities: one ordered decision list per class of pods.

ECS has no jumps: of the rules pooled on an ENI (per direction), the matching one with the
smallest ``Priority`` (1 to 100) decides, ``drop`` winning a tie, and with no match an
advanced group denies. The tiers are a first-match list instead: the Admin tier's rules (by
policy priority, then in order), then NetworkPolicy (final for the pods it isolates), then the
Baseline tier's rules, then allow. This module writes that list, for the pods of one class
(the same ClusterNetworkPolicies apply to them, the same NetworkPolicies isolate them, the
same named-port numbers), as **entries**: an action (``accept``/``drop``) and what it matches,
as *atoms* (address family, protocol, destination port range, address range):

* ``Accept`` is ``accept``, ``Deny`` is ``drop``;
* what follows the Admin tier, NEXT, is total: ``accept`` of what the NetworkPolicies allow,
  then ``drop`` of everything, for an isolated pod; else the Baseline entries then ``accept``
  of everything;
* ``Pass`` in the Admin tier, matching M, is NEXT cut to M, in place (every entry of NEXT
  intersected with M): a flow in M is decided exactly as NEXT decides it, and the later rules
  of the tier never see it. An intersection of address ranges, protocols and port ranges is
  always expressible, where cutting M out of the later rules would need "every protocol but
  TCP", which ECS cannot say;
* ``Pass`` in the Baseline tier hands on to the default, so it is ``accept``.

Entries become priorities in order. A level may hold drops followed by accepts: a flow
matching both is dropped by the list (the drop comes first) and by ECS (drop wins the tie). So
a new level starts only where a ``drop`` follows an ``accept``; a class needing more than 100
levels is refused, naming the policy whose rule did not fit.

ECS rules cannot name SCTP (ALL matches it, nothing else does). With ``--unsupported=deny`` an
``Accept`` of SCTP is left out (later rules decide, never looser); a ``Deny`` or ``Pass`` of
SCTP, which cannot just be left out, makes its pods accept no SCTP in that direction: their
accepts of every protocol are spelled out as TCP, UDP, ICMP (ICMPv6) and GRE.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from npc import ir, tiers
from npc.backends.grants import FAMILIES, Grants, Range, cidr_blocks, merge
from npc.errors import Code, Diagnostic, Path, Severity, UnsupportedError, format_path
from npc.resolve import bit_indices
from npc.snapshot import Snapshot

__all__ = [
    "MAX_PRIORITY",
    "Atom",
    "Entry",
    "Level",
    "TierPlanner",
    "cluster_sctp",
    "intersect",
    "levels",
    "overflow_error",
    "sctp_names",
    "uses_sctp",
]

#: ECS priorities run from 1 (first) to 100.
MAX_PRIORITY = 100
_BITS = {4: 32, 6: 128}
ACCEPT, DROP = "accept", "drop"

#: (family, protocol or None for every protocol, port range or None for every port, an
#: inclusive address range). A protocol is a NetworkPolicy one, or (only where every
#: protocol is spelled out, see :func:`levels`) ``ICMP``, ``ICMPv6`` or ``GRE``.
Atom = tuple[int, ir.Protocol | str | None, Range | None, Range]


@dataclass(frozen=True, slots=True)
class Entry:
    """One step of the decision list: ``action`` for traffic matching ``atoms``; ``source``
    says where it comes from (the rule, or the NetworkPolicy stage), ``rule`` names the
    ClusterNetworkPolicy rule it was written for (its policy, direction, index), if any."""

    action: str
    atoms: tuple[Atom, ...]
    source: str
    rule: tuple[tiers.ClusterPolicy, str, int] | None = None


@dataclass(frozen=True, slots=True)
class Level:
    """The rules of one priority: ``(action, atom, sources)``, atoms CIDR-aligned."""

    priority: int
    rules: tuple[tuple[str, Atom, tuple[str, ...]], ...]


def _full(v: int) -> Range:
    return (0, (1 << _BITS[v]) - 1)


def _intersect(a: Atom, b: Atom) -> Atom | None:
    if a[0] != b[0]:
        return None
    lo, hi = max(a[3][0], b[3][0]), min(a[3][1], b[3][1])
    if lo > hi:
        return None
    if a[1] is None:
        return (a[0], b[1], b[2], (lo, hi))
    if b[1] is None:
        return (a[0], a[1], a[2], (lo, hi))
    if a[1] != b[1]:
        return None
    assert a[2] is not None and b[2] is not None
    plo, phi = max(a[2][0], b[2][0]), min(a[2][1], b[2][1])
    if plo > phi:
        return None
    return (a[0], a[1], (plo, phi), (lo, hi))


def intersect(left: Iterable[Atom], right: Sequence[Atom]) -> tuple[Atom, ...]:
    """The atoms matching what both ``left`` and ``right`` match."""
    out = []
    for a in left:
        for b in right:
            found = _intersect(a, b)
            if found is not None:
                out.append(found)
    return tuple(out)


def _ports(ranges: Iterable[Range]) -> list[Range]:
    """ECS port ranges: 1 to 65535 (port 0 is no port a connection uses)."""
    return [(max(lo, 1), hi) for lo, hi in merge(ranges) if max(lo, 1) <= hi]


def _spelled_out(v: int) -> tuple[tuple[ir.Protocol | str, Range | None], ...]:
    """Every protocol an ECS rule names, but ALL (which SCTP matches too)."""
    return (
        (ir.Protocol.TCP, (1, 65535)),
        (ir.Protocol.UDP, (1, 65535)),
        ("ICMP" if v == 4 else "ICMPv6", None),
        ("GRE", None),
    )


def levels(
    entries: Sequence[Entry], *, deny_sctp: bool = False
) -> tuple[list[Level], Entry | None]:
    """Priorities for a decision list (see the module doc), and the first entry that needed
    a level past :data:`MAX_PRIORITY` (None when all fit). ``deny_sctp``: accept no SCTP at
    all, by spelling every accept of all protocols out as TCP, UDP, ICMP and GRE (for pods
    under a Deny or Pass of SCTP, with ``--unsupported=deny``)."""
    out: list[list[tuple[str, Atom, str]]] = [[]]
    has_accept = False
    overflow = None
    for entry in entries:
        if not entry.atoms:
            continue
        if entry.action == DROP and has_accept:
            out.append([])
            has_accept = False
            if len(out) > MAX_PRIORITY and overflow is None:
                overflow = entry
        has_accept = has_accept or entry.action == ACCEPT
        for atom in entry.atoms:
            if deny_sctp and entry.action == ACCEPT and atom[1] is None:
                v, _, _, block = atom
                out[-1].extend(
                    (entry.action, (v, protocol, ports, block), entry.source)
                    for protocol, ports in _spelled_out(v)
                )
            else:
                out[-1].append((entry.action, atom, entry.source))
    return [Level(i + 1, _reduce(rules)) for i, rules in enumerate(out)], overflow


def _covers(wide: Atom, narrow: Atom) -> bool:
    """Every flow ``narrow`` matches, ``wide`` matches."""
    if wide[0] != narrow[0] or not (wide[3][0] <= narrow[3][0] and narrow[3][1] <= wide[3][1]):
        return False
    if wide[1] is None:
        return True
    if wide[1] != narrow[1] or narrow[2] is None:
        return False
    assert wide[2] is not None
    return wide[2][0] <= narrow[2][0] and narrow[2][1] <= wide[2][1]


#: Above this many (drop, accept) pairs in one level, accepts are not tested for being
#: covered by a drop (the test only makes the output smaller).
_PRUNE_LIMIT = 250_000


def _reduce(rules: list[tuple[str, Atom, str]]) -> tuple[tuple[str, Atom, tuple[str, ...]], ...]:
    """Per (action, family, protocol, ports): the ranges merged, covered by CIDR blocks. An
    accept that a drop of the same level covers is left out (the drop wins the tie)."""
    drops = [atom for action, atom, _ in rules if action == DROP]
    if drops and len(drops) * (len(rules) - len(drops)) <= _PRUNE_LIMIT:
        rules = [r for r in rules if r[0] == DROP or not any(_covers(d, r[1]) for d in drops)]
    buckets: dict[tuple[str, int, ir.Protocol | str | None, Range | None], list[Range]] = {}
    sources: dict[tuple[str, int, ir.Protocol | str | None, Range | None], set[str]] = {}
    for action, (v, protocol, ports, block), source in rules:
        key = (action, v, protocol, ports)
        buckets.setdefault(key, []).append(block)
        sources.setdefault(key, set()).add(source)
    out = []

    def order(key: tuple[str, int, ir.Protocol | str | None, Range | None]) -> tuple[object, ...]:
        action, v, protocol, ports = key
        return (action != DROP, v, "" if protocol is None else str(protocol), ports or (0, 0))

    for key in sorted(buckets, key=order):
        action, v, protocol, ports = key
        for lo, hi in merge(buckets[key]):
            for block in cidr_blocks(lo, hi, _BITS[v]):
                out.append((action, (v, protocol, ports, block), tuple(sorted(sources[key]))))
    return tuple(out)


# -- SCTP -----------------------------------------------------------------------------------


def sctp_names(snapshot: Snapshot) -> frozenset[str]:
    """The container-port names some pod of the snapshot gives to an SCTP port."""
    return frozenset(
        port.name
        for pod in snapshot.pods
        for port in pod.ports
        if port.name and port.protocol is ir.Protocol.SCTP
    )


def uses_sctp(rule: tiers.ClusterRule, names: frozenset[str]) -> bool:
    """Whether the rule matches SCTP anywhere: an SCTP port, or a ``destinationNamedPort``
    (which stands for every protocol) that some pod gives to an SCTP port (``names``)."""
    return isinstance(rule.ports, ir.PortSet) and any(
        e.protocol is ir.Protocol.SCTP and (e.ranges or names & set(e.named))
        for e in rule.ports.entries
    )


def cluster_sctp(
    policies: tiers.ClusterPolicySet, snapshot: Snapshot, *, deny: bool
) -> list[Diagnostic]:
    """ECS rules cannot name SCTP: each rule that uses it is an error, or with ``deny``
    (``--unsupported=deny``) a warning saying what is done instead, never looser. An
    ``Accept`` of SCTP is left out: the flows it accepted are decided by the rules after it.
    A ``Deny`` or ``Pass`` of SCTP cannot just be left out (later rules could accept that
    traffic): the pods it applies to then accept no SCTP at all in that direction (their
    accepts of every protocol are spelled out as TCP, UDP, ICMP and GRE; see :func:`levels`)."""
    names = sctp_names(snapshot)
    out = []
    for policy in policies:
        for direction in ir.DIRECTIONS:
            for index, rule in enumerate(policy.rules(direction)):
                if not uses_sctp(rule, names):
                    continue
                path: Path = ("spec", str(direction), index, "protocols")
                accept = rule.action is tiers.Action.ACCEPT
                hint = None
                if deny:
                    severity = Severity.WARNING
                    message = (
                        "its SCTP ports are left out (--unsupported=deny): later rules decide"
                        if accept
                        else "its SCTP ports are left out, and the pods it applies to accept no "
                        f"SCTP {direction} at all (--unsupported=deny: only TCP, UDP, ICMP and "
                        "GRE where every protocol is allowed)"
                    )
                else:
                    severity, message = Severity.ERROR, "nothing was emitted"
                    hint = "ECS rules name TCP, UDP, ICMP or all protocols; --unsupported=deny " + (
                        "leaves this rule's SCTP ports out instead (later rules then decide)"
                        if accept
                        else "denies these pods' SCTP instead (an accept of every protocol "
                        "then names TCP, UDP, ICMP and GRE)"
                    )
                out.append(
                    Diagnostic(
                        Code.UNSUPPORTED,
                        severity,
                        f"ClusterNetworkPolicy {policy.name}: target alibaba cannot express "
                        f"SCTP; {message}",
                        format_path(path),
                        hint=hint,
                        origin=policy.origin.child(path) if policy.origin is not None else None,
                    )
                )
    return out


# -- the decision lists ---------------------------------------------------------------------


class TierPlanner:
    """Decision lists for the pods ClusterNetworkPolicies apply to, one snapshot.

    ``families``: the address families of the cluster's pods (what "every address" means);
    ``drop_sctp``: leave SCTP out of ``Accept`` rules (refused before otherwise)."""

    def __init__(
        self,
        policies: tiers.ClusterPolicySet,
        grants: Grants,
        families: tuple[int, ...],
        drop_sctp: bool,
    ) -> None:
        self.policies = policies
        self.grants = grants
        self.families = families
        self.drop_sctp = drop_sctp
        resolver = grants.resolver
        self._subject_bits = {
            p.name: resolver.namespace_selector_bits(p.subject.namespaces)
            & resolver.label_bits(p.subject.pods)
            & resolver.selectable
            for p in policies
        }
        self._atoms: dict[tuple[object, ...], tuple[Atom, ...]] = {}
        snapshot = grants.snapshot
        self._sctp_names = sctp_names(snapshot)
        self._node_labels = {n.name: n.labels for n in snapshot.nodes}
        # An address is a node's (rule T3): its Node object's, or a hostNetwork pod's there.
        self._node_of: dict[tuple[int, int], str] = {}
        for node in snapshot.nodes:
            for _, address in node.addresses:
                self._node_of.setdefault((address.version, address.value), node.name)
        for pod in snapshot.pods:
            if pod.host_network and pod.node_name:
                for address in pod.ips:
                    self._node_of.setdefault((address.version, address.value), pod.node_name)

    def subjects(self, direction: ir.Direction) -> dict[int, tuple[tiers.ClusterPolicy, ...]]:
        """Per pod (resolver index): the policies, in evaluation order, that apply to it and
        have rules of ``direction`` (pods with none are left out)."""
        out: dict[int, list[tiers.ClusterPolicy]] = {}
        for policy in self.policies:
            if not policy.rules(direction):
                continue
            for idx in bit_indices(self._subject_bits[policy.name]):
                out.setdefault(idx, []).append(policy)
        return {idx: tuple(found) for idx, found in out.items()}

    @staticmethod
    def named_ports(
        policies: Iterable[tiers.ClusterPolicy], direction: ir.Direction
    ) -> tuple[tuple[str, ir.Protocol], ...]:
        """The (name, protocol) pairs the policies' rules of ``direction`` use, sorted."""
        found: set[tuple[str, ir.Protocol]] = set()
        for policy in policies:
            for rule in policy.rules(direction):
                if isinstance(rule.ports, ir.PortSet):
                    for entry in rule.ports.entries:
                        found.update((name, entry.protocol) for name in entry.named)
        return tuple(sorted(found))

    def denies_sctp(self, policies: Iterable[tiers.ClusterPolicy], direction: ir.Direction) -> bool:
        """Whether the class under ``policies`` must accept no SCTP in ``direction``: a Deny
        or Pass of SCTP applies to it and ``--unsupported=deny`` left that SCTP out."""
        return self.drop_sctp and any(
            rule.action is not tiers.Action.ACCEPT and uses_sctp(rule, self._sctp_names)
            for policy in policies
            for rule in policy.rules(direction)
        )

    def everything(self) -> tuple[Atom, ...]:
        return tuple((v, None, None, _full(v)) for v in self.families)

    def entries(
        self,
        direction: ir.Direction,
        policies: tuple[tiers.ClusterPolicy, ...],
        isolated: Sequence[Atom] | None,
        isolating: str,
        resolution: tuple[tuple[str, ir.Protocol, tuple[int, ...]], ...],
    ) -> list[Entry]:
        """The decision list of one class: ``isolated`` is what its NetworkPolicies allow
        (None when none isolates it; ``isolating`` names them), ``resolution`` its named
        ports (ingress)."""
        everything = self.everything()
        after: list[Entry]
        if isolated is not None:
            after = [
                Entry(ACCEPT, tuple(isolated), f"NetworkPolicy {isolating}"),
                Entry(DROP, everything, f"isolated by NetworkPolicy {isolating}"),
            ]
        else:
            after = [
                *self._tier(tiers.Tier.BASELINE, direction, policies, resolution, ()),
                Entry(ACCEPT, everything, "no policy decided: allowed"),
            ]
        return [*self._tier(tiers.Tier.ADMIN, direction, policies, resolution, after), *after]

    def _tier(
        self,
        tier: tiers.Tier,
        direction: ir.Direction,
        policies: tuple[tiers.ClusterPolicy, ...],
        resolution: tuple[tuple[str, ir.Protocol, tuple[int, ...]], ...],
        after: Sequence[Entry],
    ) -> Iterator[Entry]:
        for policy in policies:
            if policy.tier is not tier:
                continue
            for index, rule in enumerate(policy.rules(direction)):
                atoms = self._rule_atoms(policy, index, rule, direction, resolution)
                source = f"ClusterNetworkPolicy {policy.name} {direction}[{index}] {rule.action}"
                where = (policy, str(direction), index)
                if rule.action is tiers.Action.DENY:
                    yield Entry(DROP, atoms, source, where)
                elif rule.action is tiers.Action.ACCEPT or tier is tiers.Tier.BASELINE:
                    yield Entry(ACCEPT, atoms, source, where)
                else:  # Pass out of the Admin tier: what follows decides, in place
                    for step in after:
                        yield Entry(
                            step.action,
                            intersect(atoms, step.atoms),
                            f"{source}, then {step.source}",
                            where,
                        )

    # -- what a rule matches ----------------------------------------------------------------

    def _rule_atoms(
        self,
        policy: tiers.ClusterPolicy,
        index: int,
        rule: tiers.ClusterRule,
        direction: ir.Direction,
        resolution: tuple[tuple[str, ir.Protocol, tuple[int, ...]], ...],
    ) -> tuple[Atom, ...]:
        """:meth:`rule_atoms`, once per rule (and, for ingress named ports, resolution)."""
        named = direction is ir.Direction.INGRESS and isinstance(rule.ports, ir.PortSet)
        key = (policy.name, str(direction), index, resolution if named else ())
        found = self._atoms.get(key)
        if found is None:
            found = self.rule_atoms(rule, direction, resolution)
            self._atoms[key] = found
        return found

    def _addresses(self, rule: tiers.ClusterRule) -> tuple[dict[int, list[Range]], int] | None:
        """The address ranges the rule's peers match per family, and the pods its pod peers
        match (bits); None when an unknown peer makes it match every address."""
        resolver = self.grants.resolver
        ranges: dict[int, list[Range]] = {v: [] for v in FAMILIES}
        bits = 0
        for peer in rule.peers:
            if isinstance(peer, ir.PodPeer):
                assert isinstance(peer.namespaces, ir.LabelSelector)
                found = (
                    resolver.namespace_selector_bits(peer.namespaces)
                    & resolver.selectable
                    & resolver.label_bits(peer.pods)
                )
                bits |= found
            elif isinstance(peer, ir.AddressPeer):
                for cidr in peer.addresses.cidrs:
                    ranges[cidr.version].append((cidr.first, cidr.last))
            elif isinstance(peer, tiers.NodesPeer):
                for (v, value), node in self._node_of.items():
                    if peer.nodes.matches(self._node_labels.get(node, {})):
                        ranges[v].append((value, value))
            elif isinstance(peer, tiers.UnknownPeer):
                if rule.action is not tiers.Action.ACCEPT:
                    return None  # fail closed: it denies or passes everything
            else:  # DomainNamesPeer: refused before emitting (capabilities.check_cluster)
                raise AssertionError("domainNames reached the alibaba backend")
        for pod in resolver.pods_of(bits):
            for a in pod.ips:
                ranges[a.version].append((a.value, a.value))
        return ranges, bits

    def rule_atoms(
        self,
        rule: tiers.ClusterRule,
        direction: ir.Direction,
        resolution: tuple[tuple[str, ir.Protocol, tuple[int, ...]], ...],
    ) -> tuple[Atom, ...]:
        """What one rule matches (rules T3 and T4). Named ports resolve against the subject
        for ingress (``resolution``), against each destination pod for egress."""
        resolver = self.grants.resolver
        peers = self._addresses(rule)
        if peers is None:
            ranges = {v: [_full(v)] if v in self.families else [] for v in FAMILIES}
            destinations = resolver.selectable
        else:
            ranges, destinations = peers
        merged = {v: merge(r) for v, r in ranges.items()}
        out: list[Atom] = []
        if isinstance(rule.ports, ir.AnyPort):
            for v in FAMILIES:
                out.extend((v, None, None, block) for block in merged[v])
            return tuple(out)
        for entry in rule.ports.entries:
            found: list[Atom] = []
            numbers = [(r.start, r.end) for r in entry.ranges]
            for name in entry.named:
                if direction is ir.Direction.INGRESS:
                    for n, proto, resolved in resolution:
                        if n == name and proto is entry.protocol:
                            numbers.extend((p, p) for p in resolved)
                    continue
                for pod in resolver.pods_of(destinations):
                    for number in pod.named_port_numbers(name, entry.protocol):
                        for a in pod.ips:
                            found.append(
                                (a.version, entry.protocol, (number, number), (a.value, a.value))
                            )
            for ports in _ports(numbers):
                for v in FAMILIES:
                    found.extend((v, entry.protocol, ports, block) for block in merged[v])
            if found and entry.protocol is ir.Protocol.SCTP:
                if self.drop_sctp:
                    continue  # an Accept: later rules decide; else see denies_sctp
                raise AssertionError("SCTP reaches the alibaba tiers")  # refused before
            out.extend(found)
        return tuple(out)


def overflow_error(
    entry: Entry,
    entries: Sequence[Entry],
    direction: ir.Direction,
    who: str,
    needed: int,
) -> UnsupportedError:
    """The error for a class whose decision list needs more than 100 priorities: it names the
    ClusterNetworkPolicy rule that did not fit (or the last one before it)."""
    where = entry.rule
    if where is None:
        where = next((e.rule for e in reversed(entries) if e.rule is not None), None)
    assert where is not None  # NetworkPolicy alone needs two levels
    policy, field, index = where
    path: Path = ("spec", field, index)
    return UnsupportedError(
        Diagnostic(
            Code.UNSUPPORTED,
            Severity.ERROR,
            f"ClusterNetworkPolicy {policy.name}: target alibaba cannot express the "
            f"{direction} tiers of {who}: they need {needed} priority levels, ECS has "
            f"{MAX_PRIORITY}",
            format_path(path),
            hint="each Accept rule followed by a Deny (or by a Pass, which repeats what "
            "follows the Admin tier) needs a priority of its own: merge rules of one action, "
            "or put Deny rules first",
            origin=policy.origin.child(path) if policy.origin is not None else None,
        )
    )
