"""From allowed (address, protocol, port) grants to the contents of nft sets.

One policy's rules in one direction become a handful of set lookups, whatever their number:

=================  ==========================================  ==================================
shape              set type (IPv4; IPv6 alike)                 from
=================  ==========================================  ==================================
``addr``           ``ipv4_addr``                               peers on any port (ICMP included)
``proto``          ``ipv4_addr . inet_proto``                  peers on every port of a protocol
``port``           ``ipv4_addr . inet_proto . inet_service``   peers on some ports
``anyport``        ``inet_proto . inet_service``               any peer on some ports
=================  ==========================================  ==================================

plus plain ``meta l4proto X`` matches (any peer, every port of X) and an unconditional verdict
(any peer, any port). Exact elements (pod addresses, single ports) go to hash sets, whose
lookup cost stays flat as they grow. ipBlock CIDRs and port ranges need interval sets, whose
lookups slow down as they grow (the kernel's rbtree and pipapo set backends walk more of them)
and in which the kernel requires **disjoint** elements (it refuses overlaps with "File
exists"): their elements are built as a disjoint cover (port ranges cut at every boundary,
the blocks of each piece merged, equal neighbouring pieces joined again). Pod addresses with a
port range never go to an interval set: they are a hash set of addresses plus an inline
``tcp dport A-B`` match (:class:`Test`).
"""

from __future__ import annotations

import ipaddress
import itertools
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final, cast

from npc import ir
from npc.backends.grants import Grant, Range, cidr_blocks, merge
from npc.backends.nft import syntax as nft_syntax
from npc.intervals import ADDRESS_BITS, FAMILIES

__all__ = ["Element", "Lookups", "SetContent", "Test", "build_lookups", "element_lines", "host"]

_ALL: Final = (ir.ALL_PORTS.start, ir.ALL_PORTS.end)

#: The fields each set shape concatenates (see the table above).
_FIELDS: Final = {
    "addr": ("addr",),
    "proto": ("addr", "proto"),
    "port": ("addr", "proto", "port"),
    "anyport": ("proto", "port"),
}


#: One set element, by shape: ``(addresses,)``, ``(addresses, protocol)``,
#: ``(addresses, protocol, ports)``, ``(protocol, ports)``; addresses and ports are inclusive
#: integer ranges (an address range is a CIDR block or a single address).
Element = tuple[Range | ir.Protocol, ...]


@dataclass(frozen=True, slots=True)
class SetContent:
    """One named set's type and elements (sorted; spelled in nft syntax by :meth:`texts`,
    only for the sets that are emitted: most are duplicates and shared)."""

    shape: str
    family: int | None
    interval: bool
    elements: tuple[Element, ...]

    @property
    def key_type(self) -> str:
        fields = {"addr": f"ipv{self.family}_addr", "proto": "inet_proto", "port": "inet_service"}
        return " . ".join(fields[f] for f in _FIELDS[self.shape])

    def match(self, side: str) -> str:
        """The expression a rule tests against this set; ``side`` is ``saddr`` (ingress:
        the peer is the source) or ``daddr`` (egress)."""
        addr = f"{'ip' if self.family == 4 else 'ip6'} {side}"
        fields = {"addr": addr, "proto": "meta l4proto", "port": "th dport"}
        return " . ".join(fields[f] for f in _FIELDS[self.shape])

    @property
    def key(self) -> tuple[str, int | None, bool, tuple[Element, ...]]:
        """Identity for sharing: sets with equal type and elements are one set."""
        return (self.shape, self.family, self.interval, self.elements)

    def element_lines(self) -> str:
        """The elements as the lines of an ``elements = { ... }`` block (one per line,
        comma-separated, no final newline): joined here, not in the template, because a
        template loop costs a call per element and sets hold thousands."""
        return element_lines(self.texts())

    def texts(self) -> list[str]:
        """The elements in nft syntax (``10.0.0.1 . tcp . 80``, ``10.0.0.0/8 . udp``): the
        fields joined with `` . ``, one loop per shape (sets hold thousands of elements)."""
        family = self.family or 4
        name = nft_syntax.protocol
        if self.shape == "anyport":
            anyport = cast(tuple[tuple[ir.Protocol, Range], ...], self.elements)
            return [f"{name(proto)} . {_ports(port)}" for proto, port in anyport]
        if self.shape == "addr":
            addrs = cast(tuple[tuple[Range], ...], self.elements)
            return [_block(family, addr) for (addr,) in addrs]
        if self.shape == "proto":
            protos = cast(tuple[tuple[Range, ir.Protocol], ...], self.elements)
            return [f"{_block(family, addr)} . {name(proto)}" for addr, proto in protos]
        ports = cast(tuple[tuple[Range, ir.Protocol, Range], ...], self.elements)
        return [
            f"{_block(family, addr)} . {name(proto)} . {_ports(port)}"
            for addr, proto, port in ports
        ]


@dataclass(frozen=True, slots=True)
class Test:
    """One lookup a chain runs: the peer (or protocol and port) in ``content``, and, when
    ``ports`` is given, the packet's destination port in that range of that protocol.

    The second form keeps pods with port *ranges* in a hash set: a concatenated set would
    need interval flags, and interval sets of many pod addresses slow every packet down."""

    content: SetContent
    ports: tuple[ir.Protocol, Range] | None = None

    def match(self, side: str, name: str) -> str:
        """The rule's match, for set ``name`` and peer address ``side``."""
        text = f"{self.content.match(side)} @{name}"
        if self.ports is not None:
            proto, port = self.ports
            text += f" {nft_syntax.protocol(proto)} dport {_ports(port)}"
        return text


@dataclass(frozen=True, slots=True)
class Lookups:
    """What one policy allows in one direction, as tests a chain can run.

    ``unconditional``: everything is allowed. ``protocols``: every packet of these
    protocols is allowed (``meta l4proto X``). ``tests``: set lookups, in a fixed order."""

    unconditional: bool = False
    protocols: tuple[ir.Protocol, ...] = ()
    tests: tuple[Test, ...] = ()


# -- formatting -----------------------------------------------------------------------------


def element_lines(texts: Iterable[str]) -> str:
    """Set or map elements as the lines of an ``elements = { ... }`` block: indented three
    tabs, comma-separated, without the last line's newline."""
    lines = list(texts)
    return "\t\t\t" + ",\n\t\t\t".join(lines) if lines else ""


def host(version: int, value: int) -> str:
    """An address as nft writes it (as :class:`netaddr.IPAddress` spells it)."""
    if version == 4:  # inet_ntop is ten times faster, and spells IPv4 like everyone
        return socket.inet_ntop(socket.AF_INET, value.to_bytes(4, "big"))
    return str(ipaddress.IPv6Address(value))  # RFC 5952, whatever the C library


def _block(version: int, block: Range) -> str:
    if block[0] == block[1]:
        return host(version, block[0])
    return nft_syntax.address(version, block[0], block[1])


def _ports(port: Range) -> str:
    return nft_syntax.port_range(*port)


# -- building -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Family:
    """Grants of one family, gathered per shape before they become sets."""

    addr_hosts: set[int] = field(default_factory=set)
    addr_blocks: list[Range] = field(default_factory=list)
    proto_hosts: dict[ir.Protocol, set[int]] = field(default_factory=dict)
    proto_blocks: dict[ir.Protocol, list[Range]] = field(default_factory=dict)
    exact: set[tuple[int, ir.Protocol, int]] = field(default_factory=set)
    ranged_hosts: dict[tuple[ir.Protocol, Range], set[int]] = field(default_factory=dict)
    # (protocol) -> boxes (address ranges, port range) for the interval set
    boxes: dict[ir.Protocol, list[tuple[tuple[Range, ...], Range]]] = field(default_factory=dict)


def build_lookups(grants: Iterable[Grant]) -> Lookups:
    """Turn grants into lookups with disjoint interval elements and exact hash elements."""
    any_ports: dict[ir.Protocol, list[Range]] = {}
    families: dict[int, _Family] = {}  # made for the families that have some grant
    for grant in grants:
        if grant.addresses is None:
            if grant.protocol is None:
                return Lookups(unconditional=True)
            any_ports.setdefault(grant.protocol, []).extend(grant.ports)
            continue
        for version in FAMILIES:
            hosts = grant.addresses.hosts.get(version, frozenset())
            blocks = grant.addresses.blocks.get(version, ())
            if not hosts and not blocks:
                continue
            fam = families.get(version)
            if fam is None:
                fam = families[version] = _Family()
            if grant.protocol is None:
                fam.addr_hosts |= hosts
                fam.addr_blocks.extend(blocks)
            elif _ALL in grant.ports:
                fam.proto_hosts.setdefault(grant.protocol, set()).update(hosts)
                fam.proto_blocks.setdefault(grant.protocol, []).extend(blocks)
            else:
                boxes = fam.boxes.setdefault(grant.protocol, [])
                for port in grant.ports:
                    if port[0] == port[1]:
                        fam.exact.update((h, grant.protocol, port[0]) for h in hosts)
                    elif hosts:
                        fam.ranged_hosts.setdefault((grant.protocol, port), set()).update(hosts)
                    if blocks:
                        boxes.append((tuple(blocks), port))
    protocols = tuple(p for p in sorted(any_ports) if _ALL in merge(any_ports[p]))
    tests: list[Test] = []
    exact_any: list[Element] = []
    ranged_any: list[Element] = []
    for proto in sorted(any_ports):
        if proto in protocols:
            continue
        for port in merge(any_ports[proto]):
            (exact_any if port[0] == port[1] else ranged_any).append((proto, port))
    _add(tests, "anyport", None, False, exact_any)
    _add(tests, "anyport", None, True, ranged_any)
    for version in FAMILIES:
        if version in families:
            tests.extend(_family_tests(version, families[version]))
    return Lookups(False, protocols, tuple(tests))


def _add(
    tests: list[Test],
    shape: str,
    family: int | None,
    interval: bool,
    elements: list[Element],
    ports: tuple[ir.Protocol, Range] | None = None,
) -> None:
    if elements:
        tests.append(Test(SetContent(shape, family, interval, tuple(elements)), ports))


def _family_tests(version: int, fam: _Family) -> list[Test]:
    if not (fam.addr_hosts or fam.addr_blocks or fam.proto_hosts or fam.proto_blocks) and not (
        fam.exact or fam.boxes or fam.ranged_hosts
    ):
        return []
    bits = ADDRESS_BITS[version]
    out: list[Test] = []
    _add(out, "addr", version, False, [((h, h),) for h in sorted(fam.addr_hosts)])
    blocks: list[Element] = [
        (b,) for lo, hi in merge(fam.addr_blocks) for b in cidr_blocks(lo, hi, bits)
    ]
    _add(out, "addr", version, True, blocks)
    hosts: list[Element] = sorted(((h, h), p) for p, hs in fam.proto_hosts.items() for h in hs)
    _add(out, "proto", version, False, hosts)
    blocks = sorted(
        (b, p)
        for p, bs in fam.proto_blocks.items()
        for lo, hi in merge(bs)
        for b in cidr_blocks(lo, hi, bits)
    )
    _add(out, "proto", version, True, blocks)
    exact: list[Element] = [((h, h), p, (port, port)) for h, p, port in sorted(fam.exact)]
    _add(out, "port", version, False, exact)
    ranged: list[Element] = sorted(
        (a, proto, port)
        for proto, boxes in fam.boxes.items()
        for a, port in _disjoint_boxes(boxes, bits)
    )
    _add(out, "port", version, True, ranged)
    for ports, hs in sorted(fam.ranged_hosts.items()):
        _add(out, "addr", version, False, [((h, h),) for h in sorted(hs)], ports)
    return out


def _disjoint_boxes(
    boxes: list[tuple[tuple[Range, ...], Range]], bits: int
) -> list[tuple[Range, Range]]:
    """A disjoint cover of the union of blocks x port-range boxes.

    Port ranges are cut at every boundary; in each piece the covering blocks are merged;
    neighbouring pieces with equal blocks are joined again."""
    cuts = sorted({b for _, (lo, hi) in boxes for b in (lo, hi + 1)})
    pieces: list[tuple[Range, tuple[Range, ...]]] = []
    for start, stop in itertools.pairwise(cuts):
        merged = tuple(merge(b for blk, (lo, hi) in boxes if lo <= start < hi + 1 for b in blk))
        if not merged:
            continue
        if pieces and pieces[-1][0][1] == start - 1 and pieces[-1][1] == merged:
            pieces[-1] = ((pieces[-1][0][0], stop - 1), merged)
        else:
            pieces.append(((start, stop - 1), merged))
    return [
        (b, port) for port, blocks in pieces for lo, hi in blocks for b in cidr_blocks(lo, hi, bits)
    ]
