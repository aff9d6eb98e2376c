"""The typed intermediate representation every pass and backend works on.

A :class:`Policy` is a NetworkPolicy after API-server defaulting, with its meaning made
explicit:

* a direction is ``None`` when the policy does not isolate it, else a tuple of :class:`Rule`
  (an empty tuple isolates and allows nothing);
* a rule's peers are :data:`ANY_PEER` (``from``/``to`` absent or empty) or a tuple of
  :class:`PodPeer` / :class:`AddressPeer`; its ports are :data:`ANY_PORT` (every protocol and
  port, ICMP included) or a :class:`PortSet`;
* selectors are canonical (:class:`LabelSelector` compares by meaning, not by spelling) but
  remember how they were written, for backends that must reproduce another tool's text.

Everything is a frozen, slotted dataclass and hashable, so passes can deduplicate freely.
"""

from __future__ import annotations

import bisect
import enum
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final

import netaddr

from npc import intervals
from npc.errors import Origin

__all__ = [
    "ALL_PORTS",
    "ANY_PEER",
    "ANY_PORT",
    "DIRECTIONS",
    "EVERYTHING",
    "SAME_NAMESPACE",
    "AddressPeer",
    "AddressSet",
    "AnyPeer",
    "AnyPort",
    "Direction",
    "LabelSelector",
    "NamespaceScope",
    "Operator",
    "Origin",
    "Peer",
    "Peers",
    "PodPeer",
    "Policy",
    "PolicySet",
    "PortRange",
    "PortSet",
    "Ports",
    "Protocol",
    "ProtocolPorts",
    "Requirement",
    "Rule",
    "SameNamespace",
]


class Protocol(enum.StrEnum):
    """The transport protocols NetworkPolicy can name."""

    TCP = "TCP"
    UDP = "UDP"
    SCTP = "SCTP"


class Operator(enum.StrEnum):
    """Label selector operators, spelled as in the Kubernetes API."""

    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


# -- label selectors ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, order=True)
class Requirement:
    """One selector term: ``key In (values)``, ``key NotIn (...)``, ``key`` or ``!key``."""

    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """The Kubernetes meaning: NotIn and DoesNotExist match pods without the key."""
        value = labels.get(self.key)
        if self.operator is Operator.IN:
            return value is not None and value in self.values
        if self.operator is Operator.NOT_IN:
            return value is None or value not in self.values
        if self.operator is Operator.EXISTS:
            return value is not None
        return value is None

    def canonical(self) -> Requirement:
        if self.operator in (Operator.IN, Operator.NOT_IN):
            return Requirement(self.key, self.operator, tuple(sorted(set(self.values))))
        return Requirement(self.key, self.operator, ())

    def __str__(self) -> str:
        """kubectl selector syntax."""
        if self.operator is Operator.IN:
            if len(self.values) == 1:
                return f"{self.key}={self.values[0]}"
            return f"{self.key} in ({','.join(self.values)})"
        if self.operator is Operator.NOT_IN:
            if len(self.values) == 1:
                return f"{self.key}!={self.values[0]}"
            return f"{self.key} notin ({','.join(self.values)})"
        if self.operator is Operator.EXISTS:
            return self.key
        return f"!{self.key}"


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A Kubernetes label selector; all terms must match (AND).

    ``match_labels`` and ``match_expressions`` keep the selector as written (order included);
    equality and hashing use ``requirements``, the canonical form (matchLabels as ``In`` with
    one value, values sorted, terms sorted and deduplicated). The empty selector matches
    everything.
    """

    match_labels: tuple[tuple[str, str], ...] = field(default=(), compare=False, repr=False)
    match_expressions: tuple[Requirement, ...] = field(default=(), compare=False, repr=False)
    requirements: tuple[Requirement, ...] = field(init=False)

    def __post_init__(self) -> None:
        labels = tuple(sorted(self.match_labels))
        object.__setattr__(self, "match_labels", labels)
        terms = {Requirement(k, Operator.IN, (v,)) for k, v in labels}
        terms.update(r.canonical() for r in self.match_expressions)
        object.__setattr__(self, "requirements", tuple(sorted(terms)))

    @classmethod
    def of(cls, labels: Mapping[str, str] | None = None, *terms: Requirement) -> LabelSelector:
        """Build from a label mapping and extra terms (handy in code and tests)."""
        return cls(tuple((labels or {}).items()), terms)

    @property
    def is_everything(self) -> bool:
        """True for the empty selector, which matches every object."""
        return not self.requirements

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)

    @property
    def keys(self) -> frozenset[str]:
        """Label keys this selector looks at."""
        return frozenset(r.key for r in self.requirements)

    def __str__(self) -> str:
        """kubectl selector syntax (``app=web,tier in (a,b),!canary``); empty for everything."""
        return ",".join(str(r) for r in self.requirements)


#: Above every address: bisecting (version, address, this) lands on the range holding it.
_MAX_ADDRESS = 1 << 129

#: The empty selector: matches every pod or namespace.
EVERYTHING: Final = LabelSelector()


# -- peers ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SameNamespace:
    """Namespace scope of a peer that gave only ``podSelector``: the policy's own namespace."""

    def __str__(self) -> str:
        return "same namespace"


SAME_NAMESPACE: Final = SameNamespace()

#: Which namespaces a pod peer draws from: the policy's own, or those a selector matches
#: (the empty selector means every namespace).
NamespaceScope = SameNamespace | LabelSelector


@dataclass(frozen=True, slots=True)
class PodPeer:
    """Pods matching ``pods`` in the namespaces ``namespaces`` picks (both must hold: AND)."""

    namespaces: NamespaceScope
    pods: LabelSelector = EVERYTHING


@dataclass(frozen=True, slots=True)
class AddressSet:
    """An immutable, hashable set of IP addresses (IPv4 and IPv6), kept as sorted integer
    intervals (:mod:`npc.intervals`; faster than ``netaddr.IPSet`` and checked against it).

    ``cidrs`` is the canonical, minimal CIDR list (IPv4 first, then IPv6, ascending); two sets
    with the same addresses are equal whatever CIDRs they were built from.
    """

    cidrs: tuple[netaddr.IPNetwork, ...]
    # Sorted, disjoint (version, first, last) ranges: the canonical form behind ``cidrs``;
    # membership by bisection, set algebra by merging (see :mod:`npc.intervals`).
    _ranges: tuple[intervals.Range, ...] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._set(intervals.from_cidrs(self.cidrs))

    def _set(self, ranges: tuple[intervals.Range, ...]) -> None:
        object.__setattr__(self, "_ranges", ranges)
        object.__setattr__(self, "cidrs", intervals.to_cidrs(ranges))

    @classmethod
    def _of_ranges(cls, ranges: tuple[intervals.Range, ...]) -> AddressSet:
        new = cls(())
        new._set(ranges)
        return new

    @classmethod
    def of(cls, *cidrs: str | netaddr.IPNetwork) -> AddressSet:
        return cls(tuple(netaddr.IPNetwork(c) for c in cidrs))

    @classmethod
    def from_block(
        cls, cidr: netaddr.IPNetwork, excepts: Iterable[netaddr.IPNetwork] = ()
    ) -> AddressSet:
        """``cidr`` minus every ``except``: an ``ipBlock``'s meaning."""
        return cls._of_ranges(
            intervals.difference(intervals.from_cidrs((cidr,)), intervals.from_cidrs(excepts))
        )

    @classmethod
    def from_ipset(cls, ipset: netaddr.IPSet) -> AddressSet:
        """The addresses of a ``netaddr.IPSet`` (for callers doing their own set algebra)."""
        return cls(tuple(ipset.iter_cidrs()))

    def to_ipset(self) -> netaddr.IPSet:
        """A fresh, mutable ``netaddr.IPSet`` with these addresses."""
        return netaddr.IPSet(self.cidrs)

    def contains(self, address: netaddr.IPAddress | str) -> bool:
        addr = address if isinstance(address, netaddr.IPAddress) else netaddr.IPAddress(address)
        key = (addr.version, int(addr), _MAX_ADDRESS)
        i = bisect.bisect_right(self._ranges, key) - 1
        return i >= 0 and self._ranges[i][0] == addr.version and key[1] <= self._ranges[i][2]

    def __contains__(self, address: object) -> bool:
        if isinstance(address, netaddr.IPAddress | str):
            return self.contains(address)
        return False

    def __iter__(self) -> Iterator[netaddr.IPNetwork]:
        return iter(self.cidrs)

    def __bool__(self) -> bool:
        return bool(self._ranges)

    def union(self, other: AddressSet) -> AddressSet:
        return AddressSet._of_ranges(intervals.union(self._ranges, other._ranges))

    def intersection(self, other: AddressSet) -> AddressSet:
        return AddressSet._of_ranges(intervals.intersection(self._ranges, other._ranges))

    def difference(self, other: AddressSet) -> AddressSet:
        return AddressSet._of_ranges(intervals.difference(self._ranges, other._ranges))

    def issubset(self, other: AddressSet) -> bool:
        return not intervals.difference(self._ranges, other._ranges)

    def family(self, version: int) -> AddressSet:
        """Only the IPv4 (4) or IPv6 (6) part."""
        return AddressSet(tuple(c for c in self.cidrs if c.version == version))

    @property
    def versions(self) -> frozenset[int]:
        return frozenset(c.version for c in self.cidrs)

    def __str__(self) -> str:
        return ", ".join(str(c) for c in self.cidrs) or "no addresses"


@dataclass(frozen=True, slots=True)
class AddressPeer:
    """An ``ipBlock``: every address in ``addresses`` (cidr minus except), pod IPs included.

    ``cidr`` and ``excepts`` keep the block as written (for ``nets``/``notNets`` style output
    and for explanations); equality is by addresses only.
    """

    addresses: AddressSet
    cidr: netaddr.IPNetwork | None = field(default=None, compare=False)
    excepts: tuple[netaddr.IPNetwork, ...] = field(default=(), compare=False)

    @classmethod
    def block(cls, cidr: str | netaddr.IPNetwork, *excepts: str | netaddr.IPNetwork) -> AddressPeer:
        net = netaddr.IPNetwork(cidr)
        exc = tuple(netaddr.IPNetwork(e) for e in excepts)
        return cls(AddressSet.from_block(net, exc), net, exc)


Peer = PodPeer | AddressPeer


@dataclass(frozen=True, slots=True)
class AnyPeer:
    """``from``/``to`` absent or empty: every source or destination, in or out of the cluster."""

    def __str__(self) -> str:
        return "any peer"


ANY_PEER: Final = AnyPeer()

Peers = tuple[Peer, ...] | AnyPeer


# -- ports ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, order=True)
class PortRange:
    """Inclusive port range; a single port has ``start == end``."""

    start: int
    end: int

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and self.start <= port <= self.end

    def __str__(self) -> str:
        return str(self.start) if self.start == self.end else f"{self.start}-{self.end}"


#: Every port of a protocol (a port entry with a protocol and no port).
ALL_PORTS: Final = PortRange(0, 65535)


def _merge_ranges(ranges: Iterable[PortRange]) -> tuple[PortRange, ...]:
    merged: list[PortRange] = []
    for r in sorted(ranges):
        if merged and r.start <= merged[-1].end + 1:
            last = merged[-1]
            merged[-1] = PortRange(last.start, max(last.end, r.end))
        else:
            merged.append(r)
    return tuple(merged)


@dataclass(frozen=True, slots=True)
class ProtocolPorts:
    """The ports of one protocol a rule allows: numeric ranges and container-port names.

    Canonical: ranges merged and sorted, names sorted; names vanish when every port is
    allowed. A name means "the destination pod's container port of that name and protocol".
    """

    protocol: Protocol
    ranges: tuple[PortRange, ...] = ()
    named: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        ranges = _merge_ranges(self.ranges)
        object.__setattr__(self, "ranges", ranges)
        named = () if ranges == (ALL_PORTS,) else tuple(sorted(set(self.named)))
        object.__setattr__(self, "named", named)

    @property
    def all_ports(self) -> bool:
        return self.ranges == (ALL_PORTS,)

    def matches(self, port: int, names: Iterable[str] = ()) -> bool:
        """Whether ``port`` is allowed; ``names`` are the destination's names for that port."""
        if any(port in r for r in self.ranges):
            return True
        return any(n in self.named for n in names)


@dataclass(frozen=True, slots=True)
class PortSet:
    """Allowed (protocol, port) pairs: at most one :class:`ProtocolPorts` per protocol."""

    entries: tuple[ProtocolPorts, ...] = ()

    def __post_init__(self) -> None:
        by_proto: dict[Protocol, ProtocolPorts] = {}
        for entry in self.entries:
            prev = by_proto.get(entry.protocol)
            if prev is not None:
                entry = ProtocolPorts(  # noqa: PLW2901 - folding duplicates into one entry
                    entry.protocol, prev.ranges + entry.ranges, prev.named + entry.named
                )
            by_proto[entry.protocol] = entry
        object.__setattr__(self, "entries", tuple(by_proto[p] for p in sorted(by_proto)))

    @classmethod
    def of(cls, *items: tuple[Protocol | str, int | str | tuple[int, int] | None]) -> PortSet:
        """Build from ``(protocol, port)`` pairs: a number, a ``(start, end)`` pair, a name,
        or None for every port of the protocol."""
        entries = []
        for proto, port in items:
            p = Protocol(proto)
            if port is None:
                entries.append(ProtocolPorts(p, (ALL_PORTS,)))
            elif isinstance(port, str):
                entries.append(ProtocolPorts(p, (), (port,)))
            elif isinstance(port, tuple):
                entries.append(ProtocolPorts(p, (PortRange(*port),)))
            else:
                entries.append(ProtocolPorts(p, (PortRange(port, port),)))
        return cls(tuple(entries))

    def get(self, protocol: Protocol) -> ProtocolPorts | None:
        for e in self.entries:
            if e.protocol is protocol:
                return e
        return None

    @property
    def protocols(self) -> tuple[Protocol, ...]:
        return tuple(e.protocol for e in self.entries)

    def union(self, other: PortSet) -> PortSet:
        return PortSet(self.entries + other.entries)

    def matches(self, protocol: Protocol, port: int, names: Iterable[str] = ()) -> bool:
        entry = self.get(protocol)
        return entry is not None and entry.matches(port, names)


@dataclass(frozen=True, slots=True)
class AnyPort:
    """``ports`` absent or empty: every protocol (ICMP included) and every port."""

    def __str__(self) -> str:
        return "any port"


ANY_PORT: Final = AnyPort()

Ports = PortSet | AnyPort


# -- rules and policies -------------------------------------------------------------------


class Direction(enum.StrEnum):
    """A direction of traffic as seen by the selected pod; its value is the spec's field."""

    INGRESS = "ingress"
    EGRESS = "egress"

    @property
    def peer_field(self) -> str:
        """The field listing a rule's peers: ``from`` for ingress, ``to`` for egress."""
        return "from" if self is Direction.INGRESS else "to"

    @property
    def policy_type(self) -> str:
        """The ``policyTypes`` spelling: ``Ingress`` or ``Egress``."""
        return "Ingress" if self is Direction.INGRESS else "Egress"


#: Both directions, in output order (egress is checked first on the path of a packet).
DIRECTIONS: Final = (Direction.EGRESS, Direction.INGRESS)


@dataclass(frozen=True, slots=True)
class Rule:
    """Traffic from/to any of ``peers`` on any of ``ports`` is allowed (peers AND ports)."""

    peers: Peers = ANY_PEER
    ports: Ports = ANY_PORT
    origin: Origin | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Policy:
    """One NetworkPolicy, defaulted as the API server stores it.

    ``ingress``/``egress`` are ``None`` when the policy does not isolate that direction
    (its policyTypes lack it); otherwise the tuple of allow rules (possibly empty).
    """

    namespace: str
    name: str
    pod_selector: LabelSelector = EVERYTHING
    ingress: tuple[Rule, ...] | None = None
    egress: tuple[Rule, ...] | None = None
    origin: Origin | None = field(default=None, compare=False)
    #: Directions that have rules written which ``policyTypes`` leaves out: every
    #: implementation ignores them, so no verdict depends on this; kept for lint.
    ignored: tuple[Direction, ...] = field(default=(), compare=False)

    @property
    def key(self) -> str:
        """``namespace/name``."""
        return f"{self.namespace}/{self.name}"

    def rules(self, direction: str) -> tuple[Rule, ...] | None:
        """The rules of a :class:`Direction` (or its name): None when not isolated."""
        return self.ingress if direction == Direction.INGRESS else self.egress


@dataclass(frozen=True, slots=True)
class PolicySet:
    """All policies of an input, sorted by namespace and name (the output order)."""

    policies: tuple[Policy, ...] = ()

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.policies, key=lambda p: (p.namespace, p.name)))
        object.__setattr__(self, "policies", ordered)

    def __iter__(self) -> Iterator[Policy]:
        return iter(self.policies)

    def __len__(self) -> int:
        return len(self.policies)

    @property
    def namespaces(self) -> tuple[str, ...]:
        return tuple(sorted({p.namespace for p in self.policies}))
