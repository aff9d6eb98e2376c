"""What every judge speaks: its input (:class:`Text`), its question (:class:`Packet`, made
from a :class:`~npc.flows.Flow`) and its answer (:class:`Decision`).

A judge reads a target's ruleset (whoever wrote it) and decides, for the first packet of a
new connection, what that target does with it, naming the rule that decided. The interface
(``read(sources, snapshot) -> Judge``; ``Judge.decide(flow) -> Decision``) is the one every
``npc.rulesets.<target>`` package exposes; verify, compare and diff use nothing else.

Two optional faces make whole-cluster checks affordable, both exact: :class:`Partitioned`
(which endpoints the judge cannot tell apart) and :class:`Batched` (the verdicts of one source
towards many destinations at once, as a bitset: :class:`Candidates` and :class:`OwnNode`
help a judge compute them).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Generic, Protocol, TypeVar, runtime_checkable

import netaddr

from npc import ir
from npc.errors import Location
from npc.flows import Endpoint, Flow

__all__ = [
    "IANA_PROTOCOLS",
    "Batched",
    "Candidates",
    "Decision",
    "Judge",
    "NodeKey",
    "OwnNode",
    "Packet",
    "Partitioned",
    "Rows",
    "Sides",
    "Text",
    "address_signatures",
    "own_node_decision",
    "span_holders",
    "where",
]

#: IANA protocol numbers of the protocols flows and judges speak of
#: (https://www.iana.org/assignments/protocol-numbers).
IANA_PROTOCOLS: Mapping[str, int] = MappingProxyType(
    {"ICMP": 1, "TCP": 6, "UDP": 17, "ICMPv6": 58, "SCTP": 132}
)


class Text(Protocol):
    """A ruleset file: its name (for positions) and its text. ``npc.frontend.Source`` is one;
    rulesets never import the frontend, so they take anything of this shape."""

    @property
    def name(self) -> str: ...

    @property
    def text(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Decision:
    """A judge's verdict on the first packet of a new connection.

    ``rule`` is ``file:line`` of the rule that decided, or None when a default (a chain's
    policy, the absence of any rule) decided; ``note`` says which default, or adds context."""

    allowed: bool
    rule: str | None
    note: str = ""


class _Side(Protocol):
    @property
    def allowed(self) -> bool: ...


S = TypeVar("S", bound=_Side)


@dataclass(frozen=True)  # no slots: a slotted generic cannot be built through Sides[X](...)
class Sides(Generic[S]):
    """Both sides of a connection as a judge that evaluates each side decides them (the
    source's egress, the destination's ingress; ``S`` is that judge's side decision): the
    connection passes when both do."""

    flow: Flow
    egress: S
    ingress: S

    @property
    def allowed(self) -> bool:
        return self.egress.allowed and self.ingress.allowed


def where(location: Location) -> str:
    """How a :class:`Decision` names a rule: ``file:line``."""
    return f"{location.file}:{location.line}"


@dataclass(frozen=True, slots=True)
class Packet:
    """The first packet of a connection, as a firewall sees it: addresses, the IANA protocol
    number and the destination port (0 for protocols without ports, such as ICMP)."""

    src: netaddr.IPAddress
    dst: netaddr.IPAddress
    protocol: int
    port: int = 0

    def __post_init__(self) -> None:
        if self.src.version != self.dst.version:
            raise ValueError("a packet's addresses must be of the same address family")

    @classmethod
    def of(cls, flow: Flow) -> Packet:
        """The first packet of ``flow``."""
        return cls(
            flow.src.address, flow.dst.address, IANA_PROTOCOLS[flow.protocol.value], flow.port
        )

    @classmethod
    def icmp(cls, src: netaddr.IPAddress, dst: netaddr.IPAddress) -> Packet:
        """An ICMP (IPv4) or ICMPv6 (IPv6) echo request from ``src`` to ``dst``."""
        return cls(src, dst, IANA_PROTOCOLS["ICMP" if src.version == 4 else "ICMPv6"])

    @property
    def version(self) -> int:
        return int(self.src.version)

    @property
    def has_ports(self) -> bool:
        """Whether the protocol carries ports (TCP, UDP, SCTP, UDP-Lite, DCCP)."""
        return self.protocol in (6, 17, 33, 132, 136)


class Judge(Protocol):
    """A ruleset read back, deciding flows the way its target does."""

    def decide(self, flow: Flow) -> Decision:
        """The verdict for the first packet of ``flow`` (a new connection)."""
        ...


@runtime_checkable
class Partitioned(Judge, Protocol):
    """A judge that can say which endpoints it cannot tell apart (optional; verify then asks
    it once per group of such endpoints instead of once per pod pair).

    ``key(endpoint)`` must be equal for two endpoints only when replacing one by the other,
    in any flow whose other end is a third endpoint, never changes whether the judge allows
    the flow (nor which rule decides it). Finer keys are always safe; coarser ones hide
    differences."""

    def key(self, endpoint: Endpoint) -> Hashable:
        """The endpoint's class under this ruleset."""
        ...


class Rows(Protocol):
    """A judge's verdicts from any source towards a fixed list of destinations."""

    def allowed(self, src: Endpoint, protocol: ir.Protocol, port: int) -> int:
        """Bit k set exactly when the judge allows ``Flow(src, dsts[k], protocol, port)``;
        destinations of another address family than ``src`` are never set."""
        ...


@runtime_checkable
class Batched(Judge, Protocol):
    """A judge that decides one source towards many destinations in one evaluation
    (optional; verify then asks once per source and probe instead of once per flow).

    Exact, not an approximation: bit k of ``rows(dsts).allowed(src, protocol, port)`` must
    equal ``decide(Flow(src, dsts[k], protocol, port)).allowed`` for every destination of
    ``src``'s address family, whatever the destinations are (tests compare the two)."""

    def rows(self, dsts: Sequence[Endpoint]) -> Rows:
        """Prepare for verdicts towards ``dsts`` (their order gives the bits)."""
        ...


class Candidates:
    """Destinations as bits, for :meth:`Batched.rows`: which of them an address span holds
    (one bisection and the addresses inside, cached per span), and which are of a family."""

    def __init__(self, dsts: Sequence[Endpoint]) -> None:
        self.dsts = tuple(dsts)
        by_version: dict[int, list[tuple[int, int]]] = {}
        for k, dst in enumerate(self.dsts):
            by_version.setdefault(dst.address.version, []).append((int(dst.address), k))
        self._sorted = {v: sorted(items) for v, items in by_version.items()}
        self._values = {v: [value for value, _ in items] for v, items in self._sorted.items()}
        #: Per address family, every destination of that family.
        self.family = {v: sum(1 << k for _, k in items) for v, items in self._sorted.items()}
        self._spans: dict[tuple[int, int, int], int] = {}

    def of_family(self, version: int) -> int:
        """The destinations of address family ``version``."""
        return self.family.get(version, 0)

    def span(self, version: int, first: int, last: int) -> int:
        """The destinations of family ``version`` whose address is in ``first..last``."""
        key = (version, first, last)
        found = self._spans.get(key)
        if found is None:
            values = self._values.get(version, [])
            items = self._sorted.get(version, [])
            lo = bisect.bisect_left(values, first)
            hi = bisect.bisect_right(values, last, lo)
            found = 0
            for _, k in items[lo:hi]:
                found |= 1 << k
            self._spans[key] = found
        return found


class OwnNode:
    """The destinations :func:`own_node_decision` lets through for a source, as bits: a
    pod's own node's addresses, or, from a node's address, the pods on that node."""

    def __init__(self, dsts: Sequence[Endpoint], nodes: Mapping[netaddr.IPAddress, str]) -> None:
        self.nodes = nodes
        self._addresses: dict[str, int] = {}  # node -> its addresses among dsts
        self._pods: dict[str, int] = {}  # node -> pods on it among dsts
        for k, dst in enumerate(dsts):
            if dst.pod is None:
                node = nodes.get(dst.address)
                if node is not None:
                    self._addresses[node] = self._addresses.get(node, 0) | 1 << k
            elif dst.pod.node_name is not None:
                name = dst.pod.node_name
                self._pods[name] = self._pods.get(name, 0) | 1 << k

    def mask(self, src: Endpoint) -> int:
        """The destinations that traffic from ``src`` reaches without being forwarded."""
        pod = src.pod
        if pod is not None:
            return 0 if pod.node_name is None else self._addresses.get(pod.node_name, 0)
        node = self.nodes.get(src.address)
        return 0 if node is None else self._pods.get(node, 0)


class NodeKey:
    """:meth:`Partitioned.key` for a judge of the forward path that tests addresses against
    ``spans`` only: the number of the spans holding the address, the pod's node (only when
    that node has addresses: :func:`own_node_decision` needs one) and the address's node."""

    def __init__(
        self, spans: Iterable[tuple[int, int, int]], nodes: Mapping[netaddr.IPAddress, str]
    ) -> None:
        self.signature = address_signatures(spans)
        self.nodes = nodes
        self.known = frozenset(nodes.values())

    def __call__(self, endpoint: Endpoint) -> Hashable:
        address, pod = endpoint.address, endpoint.pod
        node = pod.node_name if pod is not None and pod.node_name in self.known else None
        return (self.signature(address.version, int(address)), node, self.nodes.get(address))


def address_signatures(spans: Iterable[tuple[int, int, int]]) -> Callable[[int, int], int]:
    """For (version, first, last) spans a ruleset tests addresses against: a function from
    (version, address) to the number of the set of spans containing the address (equal
    numbers: the same spans), for :meth:`Partitioned.key`. A sweep over span boundaries, so
    looking an address up costs one bisection."""
    by_version: dict[int, list[tuple[int, int]]] = {}
    for version, first, last in spans:
        by_version.setdefault(version, []).append((first, last))
    tables: dict[int, tuple[list[int], list[int]]] = {}
    numbers: dict[frozenset[int], int] = {}
    for version, items in by_version.items():
        unique = sorted(set(items))
        events: dict[int, list[tuple[bool, int]]] = {}
        for index, (first, last) in enumerate(unique):
            events.setdefault(first, []).append((True, index))
            events.setdefault(last + 1, []).append((False, index))
        starts: list[int] = []
        ids: list[int] = []
        active: set[int] = set()
        for point in sorted(events):
            for opening, index in events[point]:
                if opening:
                    active.add(index)
                else:
                    active.discard(index)
            signature = frozenset(active)
            starts.append(point)
            ids.append(numbers.setdefault(signature, len(numbers)))
        tables[version] = (starts, ids)
    empty = numbers.setdefault(frozenset(), len(numbers))

    def number(version: int, address: int) -> int:
        table = tables.get(version)
        if table is None:
            return empty
        starts, ids = table
        i = bisect.bisect_right(starts, address) - 1
        return empty if i < 0 else ids[i]

    return number


def span_holders(
    spans: Iterable[tuple[int, int, int, int]],
) -> Callable[[int, int], tuple[int, ...]]:
    """For (version, first, last, label) spans: a function from (version, address) to the
    labels of the spans holding the address, ascending and without repeats (a sweep over
    span boundaries, like :func:`address_signatures`, so a look-up is one bisection)."""
    by_version: dict[int, list[tuple[int, int, int]]] = {}
    for version, first, last, label in spans:
        by_version.setdefault(version, []).append((first, last, label))
    tables: dict[int, tuple[list[int], list[tuple[int, ...]]]] = {}
    for version, items in by_version.items():
        events: dict[int, list[tuple[int, int]]] = {}
        for first, last, label in set(items):
            events.setdefault(first, []).append((1, label))
            events.setdefault(last + 1, []).append((-1, label))
        starts: list[int] = []
        held: list[tuple[int, ...]] = []
        active: dict[int, int] = {}  # label -> how many of its spans hold the point
        interned: dict[tuple[int, ...], tuple[int, ...]] = {}
        for point in sorted(events):
            for step, label in events[point]:
                count = active.get(label, 0) + step
                if count:
                    active[label] = count
                else:
                    del active[label]
            labels = tuple(sorted(active))
            starts.append(point)
            held.append(interned.setdefault(labels, labels))
        tables[version] = (starts, held)

    def holders(version: int, address: int) -> tuple[int, ...]:
        table = tables.get(version)
        if table is None:
            return ()
        starts, held = table
        i = bisect.bisect_right(starts, address) - 1
        return () if i < 0 else held[i]

    return holders


def own_node_decision(flow: Flow, nodes: Mapping[netaddr.IPAddress, str]) -> Decision | None:
    """The verdict on traffic between a pod and the node it runs on, for judges of rulesets
    on the forward path (nft's forward hook, iptables' FORWARD chain): the node itself sends
    or receives it (``output``/``input``), so it is never forwarded and always passes. None
    for every other flow. ``nodes``: address -> node name (:func:`npc.flows.node_addresses`)."""
    for pod, other in ((flow.src.pod, flow.dst), (flow.dst.pod, flow.src)):
        if (
            pod is not None
            and other.pod is None
            and pod.node_name is not None
            and nodes.get(other.address) == pod.node_name
        ):
            return Decision(True, None, "a pod and its own node: not forwarded")
    return None
