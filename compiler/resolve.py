"""Resolving IR selectors against a cluster snapshot: which pods, which addresses.

Shared by every consumer that needs concrete endpoints (``npc reach``, the nftables,
iptables and Alibaba backends). Pods are numbered in snapshot order (sorted by namespace, then
name, so each namespace is a contiguous range) and sets of pods are bitsets held in Python
ints: a selector becomes a few big-integer ANDs and ORs over an inverted label index, never a
scan of pods per policy. Results are memoised per selector, so thousands of policies sharing
selectors cost little.

hostNetwork pods are never selected by a policy nor matched by a pod peer (see
:mod:`npc.analysis.semantics`, rule 6); they only ever match ipBlocks, by address.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from npc import ir
from npc.snapshot import Pod, Snapshot

__all__ = ["PodSet", "Resolver", "bit_indices"]


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


class _LabelIndex:
    """An inverted label index over numbered objects (pods or namespaces): label key ->
    value -> bitset of the objects carrying it, built lazily per key. A selector is then a
    few big-integer ANDs and ORs, never a scan of the objects per selector."""

    def __init__(self, labels: Sequence[Mapping[str, str]]) -> None:
        self._labels = labels
        self.all_bits = (1 << len(labels)) - 1
        self._values: dict[str, dict[str, int]] = {}
        self._key_bits: dict[str, int] = {}
        self._selector_bits: dict[ir.LabelSelector, int] = {}

    def _index(self, key: str) -> dict[str, int]:
        index = self._values.get(key)
        if index is None:
            index = {}
            any_bits = 0
            for i, labels in enumerate(self._labels):
                value = labels.get(key)
                if value is not None:
                    bit = 1 << i
                    index[value] = index.get(value, 0) | bit
                    any_bits |= bit
            self._values[key] = index
            self._key_bits[key] = any_bits
        return index

    def _requirement_bits(self, req: ir.Requirement) -> int:
        values = self._index(req.key)
        if req.operator is ir.Operator.EXISTS:
            return self._key_bits[req.key]
        if req.operator is ir.Operator.DOES_NOT_EXIST:
            return self.all_bits & ~self._key_bits[req.key]
        hit = 0
        for v in req.values:
            hit |= values.get(v, 0)
        if req.operator is ir.Operator.IN:
            return hit
        return self.all_bits & ~hit  # NotIn: objects without the key match too

    def bits(self, selector: ir.LabelSelector) -> int:
        """The objects whose labels match ``selector`` (memoised per selector)."""
        found = self._selector_bits.get(selector)
        if found is None:
            found = self.all_bits
            for req in selector.requirements:
                found &= self._requirement_bits(req)
                if not found:
                    break
            self._selector_bits[selector] = found
        return found


class Resolver:
    """Selector resolution over one snapshot, memoised.

    Instances hold caches (mutable, private); create one per snapshot and reuse it."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.pods: tuple[Pod, ...] = snapshot.pods
        self._index: dict[tuple[str, str], int] | None = None  # built on first use
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
        self._labels = _LabelIndex([p.labels for p in self.pods])
        self._ns_labels = _LabelIndex([ns.labels for ns in snapshot.namespaces])
        self._ns_selector: dict[ir.LabelSelector, tuple[str, ...]] = {}
        self._selected: dict[int, tuple[ir.Policy, int]] = {}
        self._ns_selector_bits: dict[ir.LabelSelector, int] = {}
        self._named: dict[
            tuple[str, ir.Protocol],
            tuple[tuple[tuple[int, int], ...], tuple[tuple[tuple[int, ...], int], ...]],
        ] = {}
        self._declared: dict[tuple[str, ir.Protocol], dict[int, set[int]]] | None = None
        self._by_address: list[tuple[int, int, int]] | None = None
        self._address_values: tuple[tuple[tuple[int, int], ...], ...] | None = None
        self._address_keys: list[tuple[int, int]] = []

    # -- basics -------------------------------------------------------------------------

    def index_of(self, pod: Pod) -> int | None:
        if self._index is None:
            self._index = {(p.namespace, p.name): i for i, p in enumerate(self.pods)}
        return self._index.get((pod.namespace, pod.name))

    def pods_of(self, bits: int) -> Iterator[Pod]:
        """The pods of a bitset, in snapshot order."""
        pods = self.pods
        for index in bit_indices(bits):
            yield pods[index]

    def address_values(self) -> tuple[tuple[tuple[int, int], ...], ...]:
        """Per pod (by number): its addresses as ``(version, integer)`` pairs, in its order
        (worked out once: netaddr's attribute lookups are slow in loops over every pod)."""
        if self._address_values is None:
            self._address_values = tuple(
                tuple((a.version, a.value) for a in p.ips) for p in self.pods
            )
        return self._address_values

    def podset(self, bits: int) -> PodSet:
        return PodSet(bits, self)

    def namespace_bits(self, namespace: str) -> int:
        return self._ns_bits.get(namespace, 0)

    # -- label selectors over pods ------------------------------------------------------

    def label_bits(self, selector: ir.LabelSelector) -> int:
        """Pods (any namespace, hostNetwork included) whose labels match ``selector``."""
        return self._labels.bits(selector)

    # -- namespaces ---------------------------------------------------------------------

    def namespaces_matching(self, selector: ir.LabelSelector) -> tuple[str, ...]:
        """Names of snapshot namespaces whose labels match ``selector``, sorted."""
        found = self._ns_selector.get(selector)
        if found is None:
            namespaces = self.snapshot.namespaces
            found = tuple(namespaces[i].name for i in bit_indices(self._ns_labels.bits(selector)))
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
        return PodSet(self.selected_bits(policy), self)

    def selected_bits(self, policy: ir.Policy) -> int:
        """:meth:`selected` as bits, memoised per policy object (the entry keeps the policy
        alive, so its id is not reused while the resolver lives)."""
        found = self._selected.get(id(policy))
        if found is None:
            bits = self.namespace_bits(policy.namespace) & self.selectable
            found = (policy, bits & self.label_bits(policy.pod_selector))
            self._selected[id(policy)] = found
        return found[1]

    def peer_pods(self, policy: ir.Policy, peer: ir.PodPeer) -> PodSet:
        """Pods a pod peer of ``policy`` matches."""
        return PodSet(self.peer_bits(policy, peer), self)

    def peer_bits(self, policy: ir.Policy, peer: ir.PodPeer) -> int:
        """:meth:`peer_pods` as bits."""
        if isinstance(peer.namespaces, ir.SameNamespace):
            scope = self.namespace_bits(policy.namespace)
        else:
            scope = self.namespace_selector_bits(peer.namespaces)
        bits = scope & self.selectable
        if bits:
            bits &= self.label_bits(peer.pods)
        return bits

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
        by_number, _ = self._named_tables(name, protocol)
        return {port: PodSet(bits, self) for port, bits in by_number}

    def named_port_groups(
        self, name: str, protocol: ir.Protocol
    ) -> tuple[tuple[tuple[int, ...], int], ...]:
        """Every pod grouped by the numbers it gives a container-port name (with protocol):
        ``(numbers, bits)`` sorted by numbers; pods that do not declare it are under ``()``."""
        _, by_numbers = self._named_tables(name, protocol)
        return by_numbers

    def _named_tables(
        self, name: str, protocol: ir.Protocol
    ) -> tuple[tuple[tuple[int, int], ...], tuple[tuple[tuple[int, ...], int], ...]]:
        """One pass over the pods for a name: (number -> bits) and (numbers -> bits), sorted."""
        key = (name, protocol)
        tables = self._named.get(key)
        if tables is None:
            if self._declared is None:
                self._declared = self._declared_ports()
            by_number: dict[int, int] = {}
            by_numbers: dict[tuple[int, ...], int] = {}
            declared = 0
            for i, found in self._declared.get(key, {}).items():
                numbers = tuple(sorted(found))  # as Pod.named_port_numbers gives them
                bit = 1 << i
                declared |= bit
                by_numbers[numbers] = by_numbers.get(numbers, 0) | bit
                for number in numbers:
                    by_number[number] = by_number.get(number, 0) | bit
            undeclared = self.all_bits & ~declared
            if undeclared:
                by_numbers[()] = undeclared
            tables = (tuple(sorted(by_number.items())), tuple(sorted(by_numbers.items())))
            self._named[key] = tables
        return tables

    def _declared_ports(self) -> dict[tuple[str, ir.Protocol], dict[int, set[int]]]:
        """(port name, protocol) -> pod number -> the numbers it gives the name: one pass
        over every container port of every pod, for all names at once."""
        declared: dict[tuple[str, ir.Protocol], dict[int, set[int]]] = {}
        for i, p in enumerate(self.pods):
            for port in p.ports:
                if port.name:
                    declared.setdefault((port.name, port.protocol), {}).setdefault(i, set()).add(
                        port.port
                    )
        return declared

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
                for idx in bit_indices(hit):
                    extra.setdefault(idx, set()).add(ir.PortRange(number, number))
        for idx, ranges in extra.items():
            key = ir.ProtocolPorts(ports.protocol, (*ports.ranges, *ranges)).ranges
            groups[key] = groups.get(key, 0) | (1 << idx)
            remaining &= ~(1 << idx)
        if remaining and ports.ranges:
            groups[ports.ranges] = groups.get(ports.ranges, 0) | remaining
        for key in sorted(groups):
            yield key, PodSet(groups[key], self)


def bit_indices(bits: int) -> list[int]:
    """Positions of the set bits, ascending (``str.find`` skips zero runs at C speed)."""
    if not bits:
        return []
    # Shift out the zeros below the lowest set bit first: sets are often a few neighbours
    # far up (one namespace's pods among 10,000), and bin() would spell out every zero.
    offset = (bits & -bits).bit_length() - 1
    text = bin(bits >> offset)[:1:-1]
    found = []
    i = text.find("1")
    while i >= 0:
        found.append(i + offset)
        i = text.find("1", i + 1)
    return found
