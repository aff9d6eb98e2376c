"""An nftables ruleset, read and resolved: tables, chains, rules, sets and maps, with positions.

Every value is already interpreted: a set element is a tuple of inclusive integer spans, one
per component of its type (an address prefix or range becomes the span of its addresses, a
protocol its number, a port range its ports), so evaluating a match is comparing integers.
Every object carries the :class:`~npc.errors.Location` it was read from.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from npc.errors import Location

__all__ = [
    "Chain",
    "Element",
    "Field",
    "Hook",
    "Kind",
    "Match",
    "Nop",
    "Rule",
    "Ruleset",
    "SetDef",
    "Statement",
    "Table",
    "Verdict",
    "VerdictMap",
]

#: An inclusive span of integers: a value is ``(v, v)``.
Span = tuple[int, int]


class Kind(enum.StrEnum):
    """The data types of nft(8) ("DATA TYPES") the judge interprets, by their nft names."""

    IPV4_ADDR = "ipv4_addr"
    IPV6_ADDR = "ipv6_addr"
    INET_PROTO = "inet_proto"
    INET_SERVICE = "inet_service"
    CT_STATE = "ct_state"
    NF_PROTO = "nf_proto"
    ETHER_TYPE = "ether_type"


@dataclass(frozen=True, slots=True)
class Verdict:
    """``accept``, ``drop``, ``reject``, ``return``, ``continue``, ``jump C`` or ``goto C``."""

    kind: str
    location: Location
    target: str = ""

    def __str__(self) -> str:
        return f"{self.kind} {self.target}" if self.target else self.kind


@dataclass(frozen=True, slots=True)
class Element:
    """A set element (or a map key with its verdict): one span per component of the type."""

    key: tuple[Span, ...]
    location: Location
    verdict: Verdict | None = None


@dataclass(frozen=True, slots=True)
class SetDef:
    """A named set or verdict map of a table."""

    name: str
    kinds: tuple[Kind, ...]
    elements: tuple[Element, ...]
    location: Location
    interval: bool = False
    is_map: bool = False


@dataclass(frozen=True, slots=True)
class Field:
    """A packet field a rule looks at: ``ip saddr``, ``meta l4proto``, ``tcp dport``...

    ``family`` is the address family the expression implies (``ip saddr`` matches only IPv4
    packets, whatever the operator: nft adds a ``meta nfproto`` dependency), ``protocol`` the
    transport protocol it implies (``tcp dport`` adds ``meta l4proto tcp``)."""

    name: str
    kind: Kind
    location: Location
    family: int | None = None
    protocol: int | None = None


@dataclass(frozen=True, slots=True)
class Match:
    """``fields [!=] value``: a lookup of the fields' (concatenated) value in ``elements``
    (an anonymous set or a single value), or in the named set ``set_name``."""

    fields: tuple[Field, ...]
    location: Location
    negate: bool = False
    elements: tuple[Element, ...] = ()
    set_name: str | None = None


@dataclass(frozen=True, slots=True)
class VerdictMap:
    """``fields vmap @name`` or ``fields vmap { key : verdict, ... }``."""

    fields: tuple[Field, ...]
    location: Location
    elements: tuple[Element, ...] = ()
    set_name: str | None = None


@dataclass(frozen=True, slots=True)
class Nop:
    """A statement that changes no verdict: ``counter``, ``log``."""

    kind: str
    location: Location


Statement = Match | VerdictMap | Verdict | Nop


@dataclass(frozen=True, slots=True)
class Rule:
    """A rule: its statements, in order, and where it was written."""

    statements: tuple[Statement, ...]
    location: Location
    comment: str = ""


@dataclass(frozen=True, slots=True)
class Hook:
    """What makes a chain a base chain: ``type T hook H priority P; policy V;``."""

    type: str
    hook: str
    priority: int
    policy: str
    location: Location


@dataclass(frozen=True, slots=True)
class Chain:
    """A chain; ``hook`` is None for a regular chain (reached only by jump or goto)."""

    name: str
    rules: tuple[Rule, ...]
    location: Location
    hook: Hook | None = None


@dataclass(frozen=True, slots=True)
class Table:
    """A table of a family (``ip``, ``ip6``, ``inet``; others are refused or provably
    irrelevant to forwarded IP traffic) with its chains and sets."""

    family: str
    name: str
    chains: tuple[Chain, ...]
    sets: tuple[SetDef, ...]
    location: Location
    _chains: dict[str, Chain] = field(init=False, repr=False, compare=False)
    _sets: dict[str, SetDef] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # by name, the first of a name winning as a scan in order would (a table the reader
        # builds has unique names; the index only spares a scan per lookup)
        chains: dict[str, Chain] = {}
        for chain in self.chains:
            chains.setdefault(chain.name, chain)
        sets: dict[str, SetDef] = {}
        for named in self.sets:
            sets.setdefault(named.name, named)
        object.__setattr__(self, "_chains", chains)
        object.__setattr__(self, "_sets", sets)

    def chain(self, name: str) -> Chain | None:
        """The chain called ``name``, if the table has one."""
        return self._chains.get(name)

    def set(self, name: str) -> SetDef | None:
        """The set or map called ``name``, if the table has one."""
        return self._sets.get(name)

    def __str__(self) -> str:
        return f"table {self.family} {self.name}"


@dataclass(frozen=True, slots=True)
class Ruleset:
    """Every table that can see forwarded IP traffic, in the order they were created."""

    tables: tuple[Table, ...]
