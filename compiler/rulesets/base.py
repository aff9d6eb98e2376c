"""What every judge speaks: its input (:class:`Text`), its question (:class:`Packet`, made
from a :class:`~npc.flows.Flow`) and its answer (:class:`Decision`).

A judge reads a target's ruleset (whoever wrote it) and decides, for the first packet of a
new connection, what that target does with it, naming the rule that decided. The interface
(``read(sources, snapshot) -> Judge``; ``Judge.decide(flow) -> Decision``) is the one every
``npc.rulesets.<target>`` package exposes; verify, compare and diff use nothing else.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol, runtime_checkable

import netaddr

from npc.errors import Location
from npc.flows import Endpoint, Flow

__all__ = [
    "IANA_PROTOCOLS",
    "Decision",
    "Judge",
    "Packet",
    "Partitioned",
    "Text",
    "address_signatures",
    "own_node_decision",
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
