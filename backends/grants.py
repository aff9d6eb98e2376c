"""What every address-based target shares: peers resolved to addresses and ports, per class.

The nft, iptables and Alibaba targets all enforce policy by address, so they all need the same
answer to one question: for the pods isolated in a direction, which (address, protocol, port)
traffic do their policies allow? This module answers it once, target-neutrally:

* :meth:`Grants.classes` partitions the pods isolated in a direction into
  :class:`IsolationClass` es: pods selected by exactly the same isolating policies and, for
  ingress (where a named port resolves against the isolated pod itself), with the same
  resolution of every named port those policies use. One enforcement rule set serves a class.
* :meth:`Grants.grants` turns one policy's rules of a direction, for one class, into
  :class:`Grant` s: allowed traffic as integer address sets and port ranges, named ports
  resolved (for egress, against each destination pod the peers match), ``except`` already cut
  out of the ipBlocks. Equal rules that do not depend on their own namespace resolve once for
  all namespaces they were copied into (:meth:`Grants.sharing_key`).

It also makes the checks address-based targets need before trusting a snapshot: ``--node``
must name a node of the snapshot, and no two pods may share an address.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import netaddr

from npc import ir
from npc.errors import Code, Diagnostic, Severity, UnsupportedError, ValidationError
from npc.intervals import FAMILIES
from npc.resolve import PodSet, Resolver, bit_indices
from npc.snapshot import Pod, Snapshot

__all__ = [
    "FAMILIES",
    "Addresses",
    "Grant",
    "Grants",
    "IsolationClass",
    "Range",
    "cidr_blocks",
    "merge",
    "named_ports_used",
]

#: An inclusive integer range (addresses or ports).
Range = tuple[int, int]

#: How a class's pods resolve the named ports a direction's rules use:
#: ``(name, protocol, numbers)`` per name.
Resolution = tuple[tuple[str, ir.Protocol, tuple[int, ...]], ...]


@dataclass(frozen=True, slots=True)
class Addresses:
    """Some addresses: exact ``hosts`` (pod addresses) and CIDR ``blocks`` (``ipBlock``
    peers), both as integers, per family (4 or 6). Blocks are (first, last) pairs."""

    hosts: Mapping[int, frozenset[int]] = field(default_factory=dict)
    blocks: Mapping[int, tuple[Range, ...]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return any(self.hosts.values()) or any(self.blocks.values())


@dataclass(frozen=True, slots=True)
class Grant:
    """Traffic from/to ``addresses`` (None: any address, in or out of the cluster) with
    ``protocol`` (None: every protocol, ICMP included) on ``ports`` (inclusive ranges;
    empty when ``protocol`` is None) is allowed."""

    addresses: Addresses | None
    protocol: ir.Protocol | None = None
    ports: tuple[Range, ...] = ()


@dataclass(frozen=True, slots=True)
class IsolationClass:
    """Pods that one enforcement rule set can treat alike in one direction.

    ``policies`` are exactly the policies that select these pods and isolate them in the
    direction (sorted by namespace and name). For ingress, where the isolated pod is the
    destination and named ports resolve against it, ``named_ports`` is the resolution every
    pod of the class shares: ``(name, protocol, numbers)`` for each container-port name the
    policies' ingress rules use; ``numbers`` is empty where the pods declare no such port and
    may hold several numbers (one name in several containers of a pod).
    """

    policies: tuple[ir.Policy, ...]
    pods: PodSet
    named_ports: Resolution = ()

    def resolve(self, name: str, protocol: ir.Protocol) -> tuple[int, ...]:
        """The numbers ``name`` stands for on this class's pods (empty when undeclared)."""
        for n, proto, numbers in self.named_ports:
            if n == name and proto is protocol:
                return numbers
        return ()


@dataclass(frozen=True, slots=True)
class _Facts:
    """One policy's rules of one direction, as :meth:`Grants.sharing_key` uses them:
    ``rules`` numbers equal rule tuples alike; ``scope`` is the policy's namespace when the
    rules select pods of their own namespace (else None); ``used`` the named ports."""

    policy: ir.Policy
    rules: int
    scope: str | None
    used: frozenset[tuple[str, ir.Protocol]]
    #: The sharing key for a class that resolves none of ``used``.
    key: tuple[int, str, str | None, Resolution]


# -- integer ranges -------------------------------------------------------------------------


def merge(ranges: Iterable[Range]) -> list[Range]:
    """Sorted union of inclusive integer ranges (touching ranges join)."""
    out: list[Range] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


def cidr_blocks(lo: int, hi: int, bits: int) -> list[Range]:
    """The fewest CIDR-aligned blocks covering exactly ``lo..hi``."""
    out: list[Range] = []
    while lo <= hi:
        # The largest block starting at lo: aligned (lo's lowest set bit) and no longer than
        # what is left (the highest power of two in hi - lo + 1).
        size = lo & -lo if lo else 1 << bits
        size = min(size, 1 << ((hi - lo + 1).bit_length() - 1))
        out.append((lo, lo + size - 1))
        lo += size
    return out


# -- the grants -----------------------------------------------------------------------------


class Grants:
    """Isolation classes and their grants for one (policies, snapshot, node).

    ``node``: only pods scheduled on that node, and pods that name no node (a pod with no
    node name could run anywhere, so every node enforces its policies: where it does not run
    this changes no verdict, and leaving it out would leave it unenforced); the pods that
    name no node are reported in :attr:`diagnostics`. Raises
    :class:`~npc.errors.ValidationError` for an unknown node and
    :class:`~npc.errors.UnsupportedError` when pods share an address.

    Instances hold caches (mutable, private); make one per compilation."""

    def __init__(self, policies: ir.PolicySet, snapshot: Snapshot, node: str | None = None):
        self.policies = policies
        self.snapshot = snapshot
        self.node = node
        self.diagnostics: tuple[Diagnostic, ...] = ()
        if node is not None:
            _check_node(snapshot, node)
            self.diagnostics = _unplaced(snapshot, node)
        self.resolver = Resolver(snapshot)
        _check_addresses(self.resolver)
        self._scope: int | None = None
        if node is not None:
            self._scope = sum(
                1 << i
                for i, p in enumerate(self.resolver.pods)
                if p.node_name == node or not p.node_name
            )
        self._address_ints: dict[tuple[int, int], frozenset[int]] = {}
        self._pod_addresses: dict[int, Addresses] = {}
        self._grants: dict[Hashable, tuple[Grant, ...]] = {}
        # Per (policy object, direction): what sharing_key needs (see _facts).
        self._facts: dict[tuple[int, str], _Facts] = {}
        self._rules_numbers: dict[tuple[ir.Rule, ...], int] = {}

    # -- classes ----------------------------------------------------------------------------

    def classes(self, direction: ir.Direction | str) -> list[IsolationClass]:
        """The pods isolated in ``direction`` (on the node, if one was given), partitioned
        into :class:`IsolationClass` es, sorted by their policies' keys, then by named-port
        resolution."""
        direction = ir.Direction(direction)
        resolver = self.resolver
        scope = resolver.selectable if self._scope is None else self._scope & resolver.selectable
        isolating = [p for p in self.policies if p.rules(direction) is not None]
        # A policy selects pods of its own namespace only: the pods of each namespace are
        # split by each of its policies in turn (partition refinement on bitsets), so no
        # pod is visited per policy. Each part ends with exactly the policies selecting it.
        by_namespace: dict[str, list[int]] = {}
        for number, policy in enumerate(isolating):
            by_namespace.setdefault(policy.namespace, []).append(number)
        groups: dict[tuple[int, ...], int] = {}
        for namespace, numbers in by_namespace.items():
            within = resolver.namespace_bits(namespace) & scope
            if not within:
                continue
            # A namespace's pods are neighbours: work on small ints shifted down to them.
            offset = (within & -within).bit_length() - 1
            parts: list[tuple[tuple[int, ...], int]] = [((), within >> offset)]
            for number in numbers:
                chosen = resolver.selected_bits(isolating[number]) >> offset
                refined: list[tuple[tuple[int, ...], int]] = []
                for key, part in parts:
                    inside = part & chosen
                    if inside:
                        refined.append(((*key, number), inside))
                        if inside != part:
                            refined.append((key, part & ~chosen))
                    else:
                        refined.append((key, part))
                parts = refined
            for key, part in parts:
                if key and part:
                    groups[key] = part << offset
        classes: list[IsolationClass] = []
        for key, bits in groups.items():
            members = tuple(isolating[n] for n in key)
            names: tuple[tuple[str, ir.Protocol], ...] = ()
            if direction is ir.Direction.INGRESS:  # named_ports_used(members), per policy once
                used = [self._policy_facts(p, direction).used for p in members]
                names = tuple(sorted(frozenset().union(*used)))
            for resolution, sub in self._split_by_named_ports(bits, names):
                classes.append(IsolationClass(members, resolver.podset(sub), resolution))
        classes.sort(
            key=lambda c: (
                [(p.namespace, p.name) for p in c.policies],
                [(n, str(proto), nums) for n, proto, nums in c.named_ports],
            )
        )
        return classes

    def _split_by_named_ports(
        self, bits: int, names: tuple[tuple[str, ir.Protocol], ...]
    ) -> list[tuple[Resolution, int]]:
        parts: list[tuple[Resolution, int]] = [((), bits)]
        for name, protocol in names:
            table = self.resolver.named_port_groups(name, protocol)
            refined: list[tuple[Resolution, int]] = []
            for resolution, part in parts:
                # Pods are grouped by every number they give the name (usually one).
                for numbers, declared in table:
                    sub = part & declared
                    if sub:
                        refined.append(((*resolution, (name, protocol, numbers)), sub))
            parts = refined
        return parts

    # -- addresses --------------------------------------------------------------------------

    def address_ints(self, bits: int, version: int) -> frozenset[int]:
        """The IPv4 (4) or IPv6 (6) addresses of a set of pods, as integers (memoised:
        the same peer sets turn into addresses many times)."""
        key = (bits, version)
        found = self._address_ints.get(key)
        if found is None:
            values = self.resolver.address_values()
            found = frozenset(
                value for i in bit_indices(bits) for v, value in values[i] if v == version
            )
            self._address_ints[key] = found
        return found

    def pod_addresses(self, bits: int) -> Addresses:
        """The addresses of a set of pods, as exact hosts (memoised, like
        :meth:`address_ints`)."""
        found = self._pod_addresses.get(bits)
        if found is None:
            found = Addresses(hosts={v: self.address_ints(bits, v) for v in FAMILIES})
            self._pod_addresses[bits] = found
        return found

    def _peer_addresses(self, policy: ir.Policy, peers: tuple[ir.Peer, ...]) -> Addresses:
        bits = 0
        blocks: dict[int, list[Range]] = {v: [] for v in FAMILIES}
        for peer in peers:
            if isinstance(peer, ir.PodPeer):
                bits |= self.resolver.peer_bits(policy, peer)
            else:
                for cidr in peer.addresses.cidrs:
                    blocks[cidr.version].append((cidr.first, cidr.last))
        pods = self.pod_addresses(bits)
        return Addresses(pods.hosts, {v: tuple(b) for v, b in blocks.items()})

    def _named_destinations(
        self, policy: ir.Policy, peers: ir.Peers, name: str, protocol: ir.Protocol
    ) -> Iterator[tuple[int, Addresses]]:
        """Egress: a named port resolves against each destination pod the peers match
        (never against a non-pod address, nor a hostNetwork pod)."""
        resolver = self.resolver
        for number, declared in resolver.named_port(name, protocol).items():
            candidates = declared.bits & resolver.selectable
            if isinstance(peers, ir.AnyPeer):
                yield number, self.pod_addresses(candidates)
                continue
            bits = 0
            hosts: dict[int, set[int]] = {v: set() for v in FAMILIES}
            for peer in peers:
                if isinstance(peer, ir.PodPeer):
                    bits |= candidates & resolver.peer_bits(policy, peer)
                    continue
                inside = candidates & resolver.address_pods(peer.addresses).bits
                for pod in resolver.pods_of(inside):
                    for a in pod.ips:
                        if peer.addresses.contains(a):
                            hosts[a.version].add(int(a))
            pods = self.pod_addresses(bits)
            yield (
                number,
                Addresses({v: pods.hosts[v] | frozenset(hosts[v]) for v in FAMILIES}),
            )

    # -- grants -----------------------------------------------------------------------------

    def sharing_key(
        self, policy: ir.Policy, direction: ir.Direction | str, cls: IsolationClass
    ) -> Hashable:
        """Equal keys mean equal grants. Teams copy policies between namespaces (DNS egress,
        monitoring, ...): rules that do not depend on their namespace share one key, so they
        resolve once for all copies."""
        facts = self._policy_facts(policy, direction)
        if not facts.used or not cls.named_ports:
            return facts.key
        resolution = tuple(
            (name, str(proto), numbers)
            for name, proto, numbers in cls.named_ports
            if (name, proto) in facts.used
        )
        return (*facts.key[:3], resolution)

    def _policy_facts(self, policy: ir.Policy, direction: ir.Direction | str) -> _Facts:
        """What :meth:`sharing_key` needs of one policy's rules, worked out once per policy.

        ``sharing_key`` runs for every (class, policy) pair, and hashing a tuple of rules
        walks every selector, peer and port in it (frozen dataclasses do not cache their
        hash): so equal rules get one small number, and the facts are kept by the policy
        object's id. The entry holds the policy itself, so that id cannot be reused by
        another object while this cache lives."""
        key = (id(policy), direction)  # a Direction hashes and compares as its name
        facts = self._facts.get(key)
        if facts is None:
            rules = policy.rules(direction) or ()
            number = self._rules_numbers.setdefault(rules, len(self._rules_numbers))
            own = False
            names: set[tuple[str, ir.Protocol]] = set()
            for rule in rules:  # one walk for what _uses_own_namespace and named_ports_used say
                if isinstance(rule.peers, tuple) and not own:
                    own = _uses_own_namespace((rule,))
                if isinstance(rule.ports, ir.PortSet):
                    for entry in rule.ports.entries:
                        if entry.named:
                            names.update((name, entry.protocol) for name in entry.named)
            scope = policy.namespace if own else None
            used = frozenset(names)
            facts = _Facts(policy, number, scope, used, (number, str(direction), scope, ()))
            self._facts[key] = facts
        return facts

    def grants(
        self, policy: ir.Policy, direction: ir.Direction | str, cls: IsolationClass
    ) -> tuple[Grant, ...]:
        """What ``policy``'s rules of ``direction`` allow the pods of ``cls`` (memoised by
        :meth:`sharing_key`)."""
        key = self.sharing_key(policy, direction, cls)
        found = self._grants.get(key)
        if found is None:
            found = tuple(self._resolve(policy, ir.Direction(direction), cls))
            self._grants[key] = found
        return found

    def _resolve(
        self, policy: ir.Policy, direction: ir.Direction, cls: IsolationClass
    ) -> Iterator[Grant]:
        for rule in policy.rules(direction) or ():
            addresses = None
            if not isinstance(rule.peers, ir.AnyPeer):
                addresses = self._peer_addresses(policy, rule.peers)
            if isinstance(rule.ports, ir.AnyPort):
                yield Grant(addresses)
                continue
            for entry in rule.ports.entries:
                numeric = [(r.start, r.end) for r in entry.ranges]
                if direction is ir.Direction.INGRESS:
                    for name in entry.named:
                        numeric.extend((n, n) for n in cls.resolve(name, entry.protocol))
                else:
                    for name in entry.named:
                        for number, dests in self._named_destinations(
                            policy, rule.peers, name, entry.protocol
                        ):
                            if dests:
                                yield Grant(dests, entry.protocol, ((number, number),))
                if numeric:
                    yield Grant(addresses, entry.protocol, tuple(numeric))


def named_ports_used(
    policies: Iterable[ir.Policy], direction: ir.Direction | str
) -> tuple[tuple[str, ir.Protocol], ...]:
    """Every (container-port name, protocol) the policies' rules of ``direction`` use, sorted."""
    found: set[tuple[str, ir.Protocol]] = set()
    for policy in policies:
        for rule in policy.rules(direction) or ():
            if isinstance(rule.ports, ir.PortSet):
                for entry in rule.ports.entries:
                    found.update((name, entry.protocol) for name in entry.named)
    return tuple(sorted(found))


def _uses_own_namespace(rules: tuple[ir.Rule, ...]) -> bool:
    return any(
        isinstance(peer, ir.PodPeer) and isinstance(peer.namespaces, ir.SameNamespace)
        for rule in rules
        if isinstance(rule.peers, tuple)
        for peer in rule.peers
    )


# -- checks on the snapshot -----------------------------------------------------------------


def _shared_addresses(resolver: Resolver) -> list[tuple[netaddr.IPAddress, tuple[Pod, ...]]]:
    """Addresses held by more than one selectable pod, with those pods."""
    values = resolver.address_values()
    seen: set[tuple[int, int]] = set()
    count = 0
    for i in bit_indices(resolver.selectable):
        held = set(values[i])
        seen.update(held)
        count += len(held)
    if len(seen) == count:
        return []  # the usual case, found without a list of holders per address
    holders: dict[tuple[int, int], list[Pod]] = {}
    for pod in resolver.pods_of(resolver.selectable):
        for a in set(pod.ips):
            holders.setdefault((a.version, a.value), []).append(pod)
    return [
        (netaddr.IPAddress(value, version), tuple(pods))
        for (version, value), pods in sorted(holders.items())
        if len(pods) > 1
    ]


def _check_addresses(resolver: Resolver) -> None:
    """An enforcement point that tells pods apart by address cannot enforce policy for pods
    sharing one (the snapshot is stale or wrong): refuse them."""
    shared = _shared_addresses(resolver)
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
