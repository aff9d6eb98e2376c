"""Planning an nftables ruleset: policies and a snapshot in, chains, sets and maps out.

The plan (rendered by ``templates/nft.j2``) follows ``shared/reference/perf.md``: per-packet
work must not grow with the number of policies or pods.

* One base chain on the forward hook: ``ct state established,related accept``,
  ``ct state invalid drop``, then dispatch by address through four verdict maps
  (``egress-v4``/``-v6`` on the source, ``ingress-v4``/``-v6`` on the destination).
* Pods isolated in a direction are grouped into classes (:meth:`Resolver.isolation_classes`:
  same isolating policies, same named-port resolution for ingress); each class has a chain
  that tests the allow sets of its policies and ends in ``drop``. An egress chain
  ``return`` s on a match, so the destination's ingress check still runs; an ingress chain
  accepts. A class with no allow is a chain holding only ``drop``; a class some policy
  allows everything is not dispatched at all.
* Each policy's rules in one direction become a few named sets (:mod:`.nft_elements`);
  identical sets are emitted once and shared. No anonymous sets: they made a 10k-pod ruleset
  load 6 times slower.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from functools import partial

from npc import ir
from npc.backends import nft_syntax
from npc.backends.nft_elements import (
    FAMILIES,
    Addresses,
    Grant,
    Lookups,
    SetContent,
    build_lookups,
)
from npc.errors import Code, Diagnostic, Severity, UnsupportedError, ValidationError
from npc.resolve import PodClass, Resolver, named_ports_used
from npc.snapshot import Snapshot

__all__ = ["Chain", "NamedSet", "Plan", "VerdictMap", "plan"]

DIRECTIONS = ("egress", "ingress")
#: Which address of a packet names the isolated pod (dispatch) and which the peer (allow sets).
_POD_SIDE = {"egress": "saddr", "ingress": "daddr"}
_PEER_SIDE = {"egress": "daddr", "ingress": "saddr"}
#: Verdict of an allow: egress returns to the base chain (the destination's ingress check
#: still runs), ingress accepts.
_ALLOW = {"egress": "return", "ingress": "accept"}


@dataclass(frozen=True, slots=True)
class NamedSet:
    """A set as emitted: its (validated, unique) name and contents."""

    name: str
    content: SetContent


@dataclass(frozen=True, slots=True)
class Chain:
    """A class chain: ``note`` is the full description (a ``#`` line in the file),
    ``comment`` the short one the kernel keeps."""

    name: str
    comment: str
    note: str
    rules: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class VerdictMap:
    """Pod address -> jump to its class chain; ``match`` is the dispatching expression."""

    name: str
    key_type: str
    match: str
    elements: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything the template renders, in output order."""

    table: str
    summary: tuple[str, ...]
    maps: tuple[VerdictMap, ...]
    sets: tuple[NamedSet, ...]
    chains: tuple[Chain, ...]
    #: Classes that need no chain (some policy allows them everything).
    notes: tuple[str, ...] = ()
    #: Warnings for the user (pods enforced on every node, for want of a node name).
    diagnostics: tuple[Diagnostic, ...] = ()


@dataclass(slots=True)
class _Planner:
    policies: ir.PolicySet
    resolver: Resolver
    node: str | None
    sets: dict[Hashable, NamedSet] = field(default_factory=dict)
    names: set[str] = field(default_factory=set)
    lookups: dict[tuple[str, str, tuple[tuple[str, str, tuple[int, ...]], ...]], Lookups] = field(
        default_factory=dict
    )
    shared: dict[Hashable, Lookups] = field(default_factory=dict)

    # -- grants -------------------------------------------------------------------------

    def _pod_addresses(self, bits: int) -> Addresses:
        return Addresses(hosts={v: self.resolver.address_ints(bits, v) for v in FAMILIES})

    def _peer_addresses(self, policy: ir.Policy, peers: tuple[ir.Peer, ...]) -> Addresses:
        bits = 0
        blocks: dict[int, list[tuple[int, int]]] = {v: [] for v in FAMILIES}
        for peer in peers:
            if isinstance(peer, ir.PodPeer):
                bits |= self.resolver.peer_pods(policy, peer).bits
            else:
                for cidr in peer.addresses.cidrs:
                    blocks[cidr.version].append((cidr.first, cidr.last))
        pods = self._pod_addresses(bits)
        return Addresses(pods.hosts, {v: tuple(b) for v, b in blocks.items()})

    def _named_destinations(
        self, policy: ir.Policy, peers: ir.Peers, name: str, protocol: ir.Protocol
    ) -> Iterable[tuple[int, Addresses]]:
        """Egress: a named port resolves against each destination pod the peers match
        (never against a non-pod address, nor a hostNetwork pod)."""
        for number, declared in self.resolver.named_port(name, protocol).items():
            candidates = declared.bits & self.resolver.selectable
            if isinstance(peers, ir.AnyPeer):
                yield number, self._pod_addresses(candidates)
                continue
            bits = 0
            hosts: dict[int, set[int]] = {v: set() for v in FAMILIES}
            for peer in peers:
                if isinstance(peer, ir.PodPeer):
                    bits |= candidates & self.resolver.peer_pods(policy, peer).bits
                    continue
                inside = candidates & self.resolver.address_pods(peer.addresses).bits
                for pod in self.resolver.pods_of(inside):
                    for a in pod.ips:
                        if peer.addresses.contains(a):
                            hosts[a.version].add(int(a))
            pods = self._pod_addresses(bits)
            yield (
                number,
                Addresses({v: pods.hosts[v] | frozenset(hosts[v]) for v in FAMILIES}),
            )

    def _grants(self, policy: ir.Policy, direction: str, cls: PodClass) -> Iterable[Grant]:
        for rule in policy.rules(direction) or ():
            addresses = None
            if not isinstance(rule.peers, ir.AnyPeer):
                addresses = self._peer_addresses(policy, rule.peers)
            if isinstance(rule.ports, ir.AnyPort):
                yield Grant(addresses)
                continue
            for entry in rule.ports.entries:
                numeric = [(r.start, r.end) for r in entry.ranges]
                if direction == "ingress":
                    for name in entry.named:
                        numeric.extend((n, n) for n in cls.resolve(name, entry.protocol))
                elif entry.named:
                    for name in entry.named:
                        for number, dests in self._named_destinations(
                            policy, rule.peers, name, entry.protocol
                        ):
                            if dests:
                                yield Grant(dests, entry.protocol, ((number, number),))
                if numeric:
                    yield Grant(addresses, entry.protocol, tuple(numeric))

    def _lookups(self, policy: ir.Policy, direction: str, cls: PodClass) -> Lookups:
        used = named_ports_used((policy,), direction)
        resolution = tuple(
            (name, str(proto), numbers)
            for name, proto, numbers in cls.named_ports
            if (name, proto) in used
        )
        key = (policy.key, direction, resolution)
        found = self.lookups.get(key)
        if found is None:
            # Teams copy policies between namespaces (DNS egress, monitoring, ...): rules that
            # do not depend on their namespace resolve once for all copies.
            rules = policy.rules(direction) or ()
            scope = policy.namespace if _uses_own_namespace(rules) else None
            shared = (rules, direction, scope, resolution)
            found = self.shared.get(shared)
            if found is None:
                found = build_lookups(self._grants(policy, direction, cls))
                self.shared[shared] = found
            self.lookups[key] = found
        return found

    # -- names --------------------------------------------------------------------------

    def _unique(self, candidate: str, identity: Callable[[], str]) -> str:
        """A valid name, unused so far: ``candidate``, else ``candidate`` plus a digest of
        what it names (``identity`` is called only then), else a counter."""
        name = nft_syntax.safe_name(candidate)
        if name in self.names:
            name = nft_syntax.safe_name(f"{candidate}-{nft_syntax.digest(identity())}")
        counter = 2
        base = name
        while name in self.names:
            name = f"{base}-{counter}"
            counter += 1
        self.names.add(name)
        return name

    def _named_set(self, content: SetContent, policy: ir.Policy, direction: str) -> NamedSet:
        found = self.sets.get(content.key)
        if found is None:
            shape = f"{content.shape}{content.family or ''}{'-range' if content.interval else ''}"
            candidate = f"{direction}/{policy.namespace}/{policy.name}/{shape}"
            name = self._unique(candidate, lambda: "\n".join(content.texts()))
            found = NamedSet(name, content)
            self.sets[content.key] = found
        return found

    # -- chains -------------------------------------------------------------------------

    def _chain(self, name: str, direction: str, cls: PodClass) -> Chain | None:
        """The class's chain; None when some policy allows everything (the class then needs
        no dispatch at all: an undispatched packet passes)."""
        verdict = _ALLOW[direction]
        rules: dict[str, str] = {}  # lookup -> rule; policies sharing a set test it once
        for policy in cls.policies:
            lookups = self._lookups(policy, direction, cls)
            tag = f"comment {nft_syntax.comment(policy.key)}"
            if lookups.unconditional:
                return None
            for proto in lookups.protocols:
                match = f"meta l4proto {nft_syntax.protocol(proto)}"
                rules.setdefault(match, f"{match} {verdict} {tag}")
            for test in lookups.tests:
                named = self._named_set(test.content, policy, direction)
                match = test.match(_PEER_SIDE[direction], named.name)
                rules.setdefault(match, f"{match} {verdict} {tag}")
        rules["drop"] = "drop"
        keys = ", ".join(p.key for p in cls.policies)
        ports = ", ".join(
            f"{n}/{proto}={'+'.join(map(str, nums)) or 'none'}"
            for n, proto, nums in cls.named_ports
        )
        note = f"{len(cls.pods)} pod(s) isolated for {direction} by {keys}"
        if ports:
            note += f"; named ports: {ports}"
        return Chain(name, f"{direction}: {keys}", note, tuple(rules.values()))

    def build(
        self, table: str, summary: tuple[str, ...], diagnostics: tuple[Diagnostic, ...] = ()
    ) -> Plan:
        scope = None
        if self.node is not None:
            # A pod with no node name could run anywhere: every node enforces its policies
            # (a node it does not run on reaches the same verdict, so this changes nothing
            # where it does not run, and leaving it out would leave it unenforced).
            scope = sum(
                1 << i
                for i, p in enumerate(self.resolver.pods)
                if p.node_name == self.node or not p.node_name
            )
        chains: list[Chain] = []
        maps: list[VerdictMap] = []
        notes: list[str] = []
        for direction in DIRECTIONS:
            classes = self.resolver.isolation_classes(self.policies, direction, scope)
            per_ns: dict[str, int] = {}
            targets: dict[int, list[tuple[int, str, str]]] = {v: [] for v in FAMILIES}
            for cls in classes:
                ns = cls.policies[0].namespace
                per_ns[ns] = per_ns.get(ns, 0) + 1
                candidate = f"{direction}/{ns}/{per_ns[ns]}"
                name = self._unique(candidate, partial(str, candidate))
                chain = self._chain(name, direction, cls)
                if chain is None:
                    keys = ", ".join(p.key for p in cls.policies)
                    allowed = "send anything" if direction == "egress" else "receive anything"
                    notes.append(
                        f"{name} not needed: {len(cls.pods)} pod(s) isolated for {direction} "
                        f"by {keys} may {allowed}"
                    )
                    continue
                chains.append(chain)
                for pod in cls.pods:
                    for a in pod.ips:  # sorted by value: netaddr comparisons are slow
                        targets[a.version].append((a.value, str(a), name))
            side = _POD_SIDE[direction]
            for v in FAMILIES:
                if targets[v]:
                    maps.append(
                        VerdictMap(
                            f"{direction}-v{v}",
                            f"ipv{v}_addr",
                            f"{'ip' if v == 4 else 'ip6'} {side}",
                            tuple((a, chain) for _, a, chain in sorted(set(targets[v]))),
                        )
                    )
        sets = sorted(self.sets.values(), key=lambda s: s.name)
        return Plan(
            table, summary, tuple(maps), tuple(sets), tuple(chains), tuple(notes), diagnostics
        )


def _uses_own_namespace(rules: tuple[ir.Rule, ...]) -> bool:
    return any(
        isinstance(peer, ir.PodPeer) and isinstance(peer.namespaces, ir.SameNamespace)
        for rule in rules
        if isinstance(rule.peers, tuple)
        for peer in rule.peers
    )


def _check_addresses(resolver: Resolver) -> None:
    shared = resolver.shared_addresses()
    if shared:
        raise UnsupportedError(
            [
                Diagnostic(
                    Code.UNSUPPORTED,
                    Severity.ERROR,
                    f"pods {', '.join(p.key for p in pods)} share address {address}: an "
                    f"address-based ruleset cannot tell them apart",
                    hint="the snapshot is probably stale; take a fresh one with "
                    "`kubectl get ns,pods -A -o yaml`",
                    origin=pods[-1].origin,  # npc.compile points at the pod in its file
                )
                for address, pods in shared
            ]
        )


def _check_node(snapshot: Snapshot, node: str) -> None:
    known = {n.name for n in snapshot.nodes} | {p.node_name for p in snapshot.pods if p.node_name}
    if node not in known:
        listed = ", ".join(sorted(known)) or "none (pods carry no spec.nodeName)"
        raise ValidationError(
            Diagnostic(
                Code.INVALID_VALUE,
                Severity.ERROR,
                f"--node {node}: no such node in the snapshot (no Node object and no pod "
                f"scheduled there)",
                hint=f"nodes in the snapshot: {listed}",
            )
        )


def _unplaced(snapshot: Snapshot, node: str) -> tuple[Diagnostic, ...]:
    """Warnings for the pods that name no node (they are enforced on every node)."""
    return tuple(
        Diagnostic(
            Code.NOT_ENFORCEABLE,
            Severity.WARNING,
            f"pod {pod.key} has no spec.nodeName: with --node, its policies are enforced on "
            f"every node (here on {node})",
            hint="take the snapshot from the cluster (`kubectl get ns,pods -A -o yaml`): a "
            "running pod always names its node",
            origin=pod.origin,
        )
        for pod in snapshot.pods
        if not pod.node_name and not pod.host_network
    )


def plan(policies: ir.PolicySet, snapshot: Snapshot, table: str, node: str | None) -> Plan:
    """The ruleset for ``policies`` over ``snapshot`` (only pods on ``node`` when given, and
    pods that name no node)."""
    diagnostics: tuple[Diagnostic, ...] = ()
    if node is not None:
        _check_node(snapshot, node)
        diagnostics = _unplaced(snapshot, node)
    resolver = Resolver(snapshot)
    _check_addresses(resolver)
    where = f" on node {node}" if node is not None else ""
    summary = (f"{len(policies)} NetworkPolicies over {len(snapshot.pods)} pods{where}",)
    return _Planner(policies, resolver, node).build(table, summary, diagnostics)
