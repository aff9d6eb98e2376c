"""An iptables filter table and the ipsets it uses, read and resolved, with positions.

Matches are typed (addresses as inclusive integer spans, ports as spans, conntrack states as
names), targets are resolved to the chain they name. Every rule carries its location.
"""

from __future__ import annotations

from dataclasses import dataclass

from npc.errors import Location

__all__ = ["Chain", "IpSet", "Match", "Rule", "SetEntry", "Table", "Target"]

Span = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Match:
    """One test of a rule. ``kind`` is one of: ``src``, ``dst`` (``spans``: addresses),
    ``proto`` (``spans``: IANA numbers), ``dport`` (``spans``: ports), ``state`` (``names``:
    conntrack states), ``mark`` (``value``/``mask``), ``set`` (``names``: the set name, then
    the direction flags), ``bridged`` (``-m physdev --physdev-is-bridged``), ``local``
    (``-m addrtype --src-type/--dst-type LOCAL``)."""

    kind: str
    location: Location
    negate: bool = False
    spans: tuple[Span, ...] = ()
    names: tuple[str, ...] = ()
    value: int = 0
    mask: int = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class Target:
    """``-j``/``-g`` and its options: ``ACCEPT``, ``DROP``, ``REJECT``, ``RETURN``, ``LOG``,
    ``NFLOG``, ``MARK`` (``op`` is ``xset``, ``set``, ``or``, ``and`` or ``xor``), or a chain
    (``goto`` when written with ``-g``)."""

    name: str
    location: Location
    chain: bool = False
    goto: bool = False
    op: str = ""
    value: int = 0
    mask: int = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class Rule:
    """``-A CHAIN matches... [-j TARGET]``; a rule without a target only counts packets."""

    matches: tuple[Match, ...]
    location: Location
    target: Target | None = None


@dataclass(frozen=True, slots=True)
class Chain:
    """A chain; ``policy`` is set for the built-in ones (``:FORWARD ACCEPT [0:0]``)."""

    name: str
    rules: tuple[Rule, ...]
    location: Location
    policy: str | None = None


@dataclass(frozen=True, slots=True)
class Table:
    """The filter table of one address family (4: iptables, 6: ip6tables). ``assumed`` says
    what the reader assumed about a FORWARD chain the file does not hold (a partial restore
    file), empty when it holds one."""

    version: int
    chains: tuple[Chain, ...]
    location: Location
    assumed: str = ""

    def chain(self, name: str) -> Chain | None:
        return next((c for c in self.chains if c.name == name), None)


@dataclass(frozen=True, slots=True)
class SetEntry:
    """An ipset entry: an address span and, for ``hash:*,port`` sets, a protocol and port
    span; ``nomatch`` entries exclude what they cover (the most specific entry wins)."""

    address: Span
    location: Location
    prefix: int = 0
    protocol: int | None = None
    ports: Span | None = None
    nomatch: bool = False


@dataclass(frozen=True, slots=True)
class IpSet:
    """``create NAME TYPE family inet|inet6 ...`` with its entries."""

    name: str
    type: str
    version: int
    entries: tuple[SetEntry, ...]
    location: Location
