"""What every judge speaks: its input (:class:`Text`), its question (:class:`Packet`, made
from a :class:`~npc.flows.Flow`) and its answer (:class:`Decision`).

A judge reads a target's ruleset (whoever wrote it) and decides, for the first packet of a
new connection, what that target does with it, naming the rule that decided. The interface
(``read(sources, snapshot) -> Judge``; ``Judge.decide(flow) -> Decision``) is the one every
``npc.rulesets.<target>`` package exposes; verify, compare and diff use nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol

import netaddr

from npc.errors import Location
from npc.flows import Flow

__all__ = [
    "IANA_PROTOCOLS",
    "Decision",
    "Judge",
    "Packet",
    "Text",
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
