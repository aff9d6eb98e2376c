"""Resolving IR selectors against a cluster snapshot: which pods, which addresses.

Shared by every consumer that needs concrete endpoints (``npc reach``, the nftables,
iptables and Alibaba backends). Pods are numbered in snapshot order (sorted by namespace, then
name, so each namespace is a contiguous range) and sets of pods are bitsets held in Python
ints: a selector becomes a few big-integer ANDs and ORs over an inverted label index, never a
scan of pods per policy. Results are memoised per selector, so thousands of policies sharing
selectors cost little (see ``shared/reference/perf.md``, section 2.4).

hostNetwork pods are never selected by a policy nor matched by a pod peer (see
:mod:`npc.semantics`, rule 6); they only ever match ipBlocks, by address.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import netaddr

from npc import ir
from npc.snapshot import Pod, Snapshot

__all__ = ["PodClass", "PodSet", "Resolver", "named_ports_used"]


@dataclass(frozen=True, slots=True)
class PodSet:
    """A set of snapshot pods as a bitset (bit i = the i-th pod of the snapshot)."""

    bits: int
    resolver: Resolver = field(compare=False, repr=False)

    def __iter__(self) -> Iterator[Pod]:
        return self.resolver.pods_of(self.bits)

    def __len__(self) -> int:
        return self.bits.bit_count()

    def __bool__(self) -> bool:
        return self.bits != 0

    def __contains__(self, pod: object) -> bool:
        if not isinstance(pod, Pod):
            return False
        index = self.resolver.index_of(pod)
        return index is not None and bool(self.bits >> index & 1)

    def __or__(self, other: PodSet) -> PodSet:
        return PodSet(self.bits | other.bits, self.resolver)

    def __and__(self, other: PodSet) -> PodSet:
        return PodSet(self.bits & other.bits, self.resolver)

    def __sub__(self, other: PodSet) -> PodSet:
        return PodSet(self.bits & ~other.bits, self.resolver)

    def addresses(self, version: int | None = None) -> tuple[netaddr.IPAddress, ...]:
        """Every address of these pods (of one family when ``version`` is given), sorted."""
        found = {a for p in self for a in p.ips if version is None or a.version == version}
        return tuple(sorted(found))


#: How a class's pods resolve the named ports a direction's rules use:
#: ``(name, protocol, numbers)`` per name.
_Resolution = tuple[tuple[str, ir.Protocol, tuple[int, ...]], ...]


@dataclass(frozen=True, slots=True)
class PodClass:
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
    named_ports: _Resolution = ()

    def resolve(self, name: str, protocol: ir.Protocol) -> tuple[int, ...]:
        """The numbers ``name`` stands for on this class's pods (empty when undeclared)."""
        for n, proto, numbers in self.named_ports:
            if n == name and proto is protocol:
                return numbers
        return ()


class Resolver:
    """Selector resolution over one snapshot, memoised.

    Instances hold caches (mutable, private); create one per snapshot and reuse it."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.pods: tuple[Pod, ...] = snapshot.pods
        self._index: dict[tuple[str, str], int] = {
            (p.namespace, p.name): i for i, p in enumerate(self.pods)
        }
        self.all_bits = (1 << len(self.pods)) - 1
        host = 0
        by_ns: dict[str, int] = {}
        for i, p in enumerate(self.pods):
            bit = 1 << i
            by_ns[p.namespace] = by_ns.get(p.namespace, 0) | bit
            if p.host_network:
                host |= bit
        #: Pods that selectors can see (everything but hostNetwork pods).
        self.selectable = self.all_bits & ~host
        self._ns_bits = by_ns
        # Inverted label index, built lazily per key: key -> value -> bits.
        self._label_index: dict[str, dict[str, int]] = {}
        self._key_bits: dict[str, int] = {}
        self._selector_bits: dict[ir.LabelSelector, int] = {}
        self._ns_selector: dict[ir.LabelSelector, tuple[str, ...]] = {}
        self._ns_selector_bits: dict[ir.LabelSelector, int] = {}
        self._named: dict[tuple[str, ir.Protocol], dict[int, int]] = {}
        self._by_address: list[tuple[int, int, int]] | None = None
        self._address_keys: list[tuple[int, int]] = []
        self._address_ints: dict[tuple[int, int], frozenset[int]] = {}

    # -- basics -------------------------------------------------------------------------

    def index_of(self, pod: Pod) -> int | None:
        return self._index.get((pod.namespace, pod.name))

    def pods_of(self, bits: int) -> Iterator[Pod]:
        """The pods of a bitset, in snapshot order."""
        pods = self.pods
        while bits:
            low = bits & -bits
            yield pods[low.bit_length() - 1]
            bits ^= low

    def podset(self, bits: int) -> PodSet:
        return PodSet(bits, self)

    def namespace_bits(self, namespace: str) -> int:
        return self._ns_bits.get(namespace, 0)

    # -- label selectors over pods ------------------------------------------------------

    def _values(self, key: str) -> dict[str, int]:
        index = self._label_index.get(key)
        if index is None:
            index = {}
            any_bits = 0
            for i, p in enumerate(self.pods):
                value = p.labels.get(key)
                if value is not None:
                    bit = 1 << i
                    index[value] = index.get(value, 0) | bit
                    any_bits |= bit
            self._label_index[key] = index
            self._key_bits[key] = any_bits
        return index

    def _requirement_bits(self, req: ir.Requirement) -> int:
        values = self._values(req.key)
        if req.operator is ir.Operator.EXISTS:
            return self._key_bits[req.key]
        if req.operator is ir.Operator.DOES_NOT_EXIST:
            return self.all_bits & ~self._key_bits[req.key]
        hit = 0
        for v in req.values:
            hit |= values.get(v, 0)
        if req.operator is ir.Operator.IN:
            return hit
        return self.all_bits & ~hit  # NotIn: pods without the key match too

    def label_bits(self, selector: ir.LabelSelector) -> int:
        """Pods (any namespace, hostNetwork included) whose labels match ``selector``."""
        bits = self._selector_bits.get(selector)
        if bits is None:
            bits = self.all_bits
            for req in selector.requirements:
                bits &= self._requirement_bits(req)
                if not bits:
                    break
            self._selector_bits[selector] = bits
        return bits

    # -- namespaces ---------------------------------------------------------------------

    def namespaces_matching(self, selector: ir.LabelSelector) -> tuple[str, ...]:
        """Names of snapshot namespaces whose labels match ``selector``, sorted."""
        found = self._ns_selector.get(selector)
        if found is None:
            found = tuple(ns.name for ns in self.snapshot.namespaces if selector.matches(ns.labels))
            self._ns_selector[selector] = found
        return found

    def namespace_selector_bits(self, selector: ir.LabelSelector) -> int:
        """Pods of every namespace ``selector`` matches."""
        bits = self._ns_selector_bits.get(selector)
        if bits is None:
            bits = 0
            for name in self.namespaces_matching(selector):
                bits |= self._ns_bits.get(name, 0)
            self._ns_selector_bits[selector] = bits
        return bits

    # -- policies and peers -------------------------------------------------------------

    def selected(self, policy: ir.Policy) -> PodSet:
        """Pods ``policy`` applies to (its namespace, its podSelector, no hostNetwork)."""
        bits = self.namespace_bits(policy.namespace) & self.selectable
        return PodSet(bits & self.label_bits(policy.pod_selector), self)

    def peer_pods(self, policy: ir.Policy, peer: ir.PodPeer) -> PodSet:
        """Pods a pod peer of ``policy`` matches."""
        if isinstance(peer.namespaces, ir.SameNamespace):
            scope = self.namespace_bits(policy.namespace)
        else:
            scope = self.namespace_selector_bits(peer.namespaces)
        bits = scope & self.selectable
        if bits:
            bits &= self.label_bits(peer.pods)
        return PodSet(bits, self)

    def address_pods(self, addresses: ir.AddressSet) -> PodSet:
        """Pods (hostNetwork included) with at least one address in ``addresses``."""
        if self._by_address is None:
            self._by_address = sorted(
                ((a.version, int(a), i) for i, p in enumerate(self.pods) for a in p.ips)
            )
            self._address_keys = [(v, n) for v, n, _ in self._by_address]
        bits = 0
        for cidr in addresses.cidrs:
            lo = bisect.bisect_left(self._address_keys, (cidr.version, cidr.first))
            hi = bisect.bisect_right(self._address_keys, (cidr.version, cidr.last))
            for _, _, i in self._by_address[lo:hi]:
                bits |= 1 << i
        return PodSet(bits, self)

    # -- named ports --------------------------------------------------------------------

    def named_port(self, name: str, protocol: ir.Protocol) -> dict[int, PodSet]:
        """For a container-port name: port number -> the pods declaring it (with protocol).

        A pod that gives the name several numbers (in several containers) is under each."""
        key = (name, protocol)
        table = self._named.get(key)
        if table is None:
            table = {}
            for i, p in enumerate(self.pods):
                for number in p.named_port_numbers(name, protocol):
                    table[number] = table.get(number, 0) | (1 << i)
            self._named[key] = table
        return {port: PodSet(bits, self) for port, bits in sorted(table.items())}

    def resolve_ports(
        self, ports: ir.ProtocolPorts, pods: PodSet
    ) -> Iterable[tuple[tuple[ir.PortRange, ...], PodSet]]:
        """Split ``pods`` by what ``ports`` means for each of them as destination.

        Yields (numeric ranges, pods) groups: the rule's numeric ranges hold for all ``pods``;
        each named port adds its number for the pods that declare it. Pods with no resolution
        of a name simply do not gain that port."""
        groups: dict[tuple[ir.PortRange, ...], int] = {}
        remaining = pods.bits
        extra: dict[int, set[ir.PortRange]] = {}
        for name in ports.named:
            for number, declared in self.named_port(name, ports.protocol).items():
                hit = declared.bits & pods.bits
                for idx in _bit_indices(hit):
                    extra.setdefault(idx, set()).add(ir.PortRange(number, number))
        for idx, ranges in extra.items():
            key = ir.ProtocolPorts(ports.protocol, (*ports.ranges, *ranges)).ranges
            groups[key] = groups.get(key, 0) | (1 << idx)
            remaining &= ~(1 << idx)
        if remaining and ports.ranges:
            groups[ports.ranges] = groups.get(ports.ranges, 0) | remaining
        for key in sorted(groups):
            yield key, PodSet(groups[key], self)

    # -- addresses ----------------------------------------------------------------------

    def address_ints(self, bits: int, version: int) -> frozenset[int]:
        """The IPv4 (4) or IPv6 (6) addresses of a set of pods, as integers (memoised:
        backends turn the same peer sets into addresses many times)."""
        key = (bits, version)
        found = self._address_ints.get(key)
        if found is None:
            found = frozenset(
                int(a) for p in self.pods_of(bits) for a in p.ips if a.version == version
            )
            self._address_ints[key] = found
        return found

    def shared_addresses(self) -> list[tuple[netaddr.IPAddress, tuple[Pod, ...]]]:
        """Addresses held by more than one selectable pod, with those pods.

        An enforcement point that tells pods apart by address cannot enforce policy for
        them (the snapshot is stale or wrong), so address-based backends refuse these."""
        holders: dict[tuple[int, int], list[Pod]] = {}
        for pod in self.pods_of(self.selectable):
            for a in set(pod.ips):
                holders.setdefault((a.version, a.value), []).append(pod)
        return [
            (netaddr.IPAddress(value, version), tuple(pods))
            for (version, value), pods in sorted(holders.items())
            if len(pods) > 1
        ]

    # -- classes of isolated pods -------------------------------------------------------

    def isolation_classes(
        self, policies: Iterable[ir.Policy], direction: str, within: int | None = None
    ) -> list[PodClass]:
        """Partition the pods isolated in ``direction`` (restricted to ``within``, a bitset)
        into :class:`PodClass` es: same isolating policies and, for ingress, the same
        resolution of every named port those policies' ingress rules use.

        Classes come sorted by their policies' keys, then by named-port resolution."""
        scope = self.selectable if within is None else within & self.selectable
        isolating = [p for p in policies if p.rules(direction) is not None]
        signature: dict[int, list[int]] = {}
        for number, policy in enumerate(isolating):
            for idx in _bit_indices(self.selected(policy).bits & scope):
                signature.setdefault(idx, []).append(number)
        groups: dict[tuple[int, ...], int] = {}
        for idx, numbers in signature.items():
            key = tuple(numbers)
            groups[key] = groups.get(key, 0) | (1 << idx)
        classes: list[PodClass] = []
        for key, bits in groups.items():
            members = tuple(isolating[n] for n in key)
            names = named_ports_used(members, direction) if direction == "ingress" else ()
            for resolution, sub in self._split_by_named_ports(bits, names):
                classes.append(PodClass(members, PodSet(sub, self), resolution))
        classes.sort(
            key=lambda c: (
                [(p.namespace, p.name) for p in c.policies],
                [(n, str(proto), nums) for n, proto, nums in c.named_ports],
            )
        )
        return classes

    def _split_by_named_ports(
        self, bits: int, names: tuple[tuple[str, ir.Protocol], ...]
    ) -> list[tuple[_Resolution, int]]:
        parts: list[tuple[_Resolution, int]] = [((), bits)]
        for name, protocol in names:
            refined: list[tuple[_Resolution, int]] = []
            for resolution, part in parts:
                # Pods are grouped by every number they give the name (usually one).
                by_numbers: dict[tuple[int, ...], int] = {}
                for idx in _bit_indices(part):
                    numbers = self.pods[idx].named_port_numbers(name, protocol)
                    by_numbers[numbers] = by_numbers.get(numbers, 0) | (1 << idx)
                for numbers, sub in sorted(by_numbers.items()):
                    refined.append(((*resolution, (name, protocol, numbers)), sub))
            parts = refined
        return parts


def named_ports_used(
    policies: Iterable[ir.Policy], direction: str
) -> tuple[tuple[str, ir.Protocol], ...]:
    """Every (container-port name, protocol) the policies' rules of ``direction`` use, sorted."""
    found: set[tuple[str, ir.Protocol]] = set()
    for policy in policies:
        for rule in policy.rules(direction) or ():
            if isinstance(rule.ports, ir.PortSet):
                for entry in rule.ports.entries:
                    found.update((name, entry.protocol) for name in entry.named)
    return tuple(sorted(found))


def _bit_indices(bits: int) -> Iterator[int]:
    while bits:
        low = bits & -bits
        yield low.bit_length() - 1
        bits ^= low
