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
(any peer, any port). Each shape is split in two: exact elements (pod addresses, single ports)
go to a hash set, whose lookup cost stays flat as it grows; blocks and port ranges go to an
interval set, which the kernel requires to hold **disjoint** elements (it refuses overlaps
with "File exists") and which slows down as it grows (``shared/reference/perf.md``, 2.3).
Interval elements are therefore built as a disjoint cover: port ranges are cut at every
boundary, the addresses of each piece merged, equal neighbouring pieces joined again.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from npc import ir
from npc.backends import nft_syntax

__all__ = ["FAMILIES", "Addresses", "Grant", "Lookups", "SetContent", "build_lookups"]

#: Address families, in output order.
FAMILIES: Final = (4, 6)
_BITS: Final = {4: 32, 6: 128}
_ALL: Final = (ir.ALL_PORTS.start, ir.ALL_PORTS.end)

Range = tuple[int, int]


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
class SetContent:
    """One named set's type and elements (already in nft syntax, in canonical order)."""

    shape: str
    family: int | None
    interval: bool
    elements: tuple[str, ...]

    @property
    def key_type(self) -> str:
        addr = f"ipv{self.family}_addr"
        return {
            "addr": addr,
            "proto": f"{addr} . inet_proto",
            "port": f"{addr} . inet_proto . inet_service",
            "anyport": "inet_proto . inet_service",
        }[self.shape]

    def match(self, side: str) -> str:
        """The expression a rule tests against this set; ``side`` is ``saddr`` (ingress:
        the peer is the source) or ``daddr`` (egress)."""
        addr = f"{'ip' if self.family == 4 else 'ip6'} {side}"
        return {
            "addr": addr,
            "proto": f"{addr} . meta l4proto",
            "port": f"{addr} . meta l4proto . th dport",
            "anyport": "meta l4proto . th dport",
        }[self.shape]

    @property
    def key(self) -> tuple[str, bool, tuple[str, ...]]:
        """Identity for sharing: sets with equal type and elements are one set."""
        return (self.key_type, self.interval, self.elements)


@dataclass(frozen=True, slots=True)
class Lookups:
    """What one policy allows in one direction, as tests a chain can run.

    ``unconditional``: everything is allowed. ``protocols``: every packet of these
    protocols is allowed (``meta l4proto X``). ``sets``: the set lookups, in a fixed order."""

    unconditional: bool = False
    protocols: tuple[ir.Protocol, ...] = ()
    sets: tuple[SetContent, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.unconditional or self.protocols or self.sets)


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
        size = lo & -lo if lo else 1 << bits
        while size > hi - lo + 1:
            size >>= 1
        out.append((lo, lo + size - 1))
        lo += size
    return out


def _inside(host: int, blocks: list[Range]) -> bool:
    lo, hi = 0, len(blocks)
    while lo < hi:
        mid = (lo + hi) // 2
        if blocks[mid][1] < host:
            lo = mid + 1
        else:
            hi = mid
    return lo < len(blocks) and blocks[lo][0] <= host


# -- formatting -----------------------------------------------------------------------------


def _host(version: int, value: int) -> str:
    if version == 4:
        return str(ipaddress.IPv4Address(value))
    return str(ipaddress.IPv6Address(value))


def _block(version: int, block: Range) -> str:
    if block[0] == block[1]:
        return _host(version, block[0])
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
    # (protocol) -> boxes (address ranges, port range) for the interval set
    boxes: dict[ir.Protocol, list[tuple[tuple[Range, ...], tuple[int, ...], Range]]] = field(
        default_factory=dict
    )


def build_lookups(grants: Iterable[Grant]) -> Lookups:
    """Turn grants into lookups with disjoint interval elements and exact hash elements."""
    any_ports: dict[ir.Protocol, list[Range]] = {}
    families = {v: _Family() for v in FAMILIES}
    for grant in grants:
        if grant.addresses is None:
            if grant.protocol is None:
                return Lookups(unconditional=True)
            any_ports.setdefault(grant.protocol, []).extend(grant.ports)
            continue
        for version, fam in families.items():
            hosts = grant.addresses.hosts.get(version, frozenset())
            blocks = grant.addresses.blocks.get(version, ())
            if not hosts and not blocks:
                continue
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
                        if blocks:
                            boxes.append((tuple(blocks), (), port))
                    else:
                        boxes.append((tuple(blocks), tuple(hosts), port))
    protocols = tuple(p for p in sorted(any_ports) if _ALL in merge(any_ports[p]))
    sets: list[SetContent] = []
    exact_any: list[str] = []
    ranged_any: list[str] = []
    for proto in sorted(any_ports):
        if proto in protocols:
            continue
        for port in merge(any_ports[proto]):
            text = f"{nft_syntax.protocol(proto)} . {_ports(port)}"
            (exact_any if port[0] == port[1] else ranged_any).append(text)
    _add(sets, "anyport", None, False, exact_any)
    _add(sets, "anyport", None, True, ranged_any)
    for version, fam in families.items():
        sets.extend(_family_sets(version, fam))
    return Lookups(False, protocols, tuple(sets))


def _add(
    sets: list[SetContent], shape: str, family: int | None, interval: bool, elements: list[str]
) -> None:
    if elements:
        sets.append(SetContent(shape, family, interval, tuple(elements)))


def _family_sets(version: int, fam: _Family) -> list[SetContent]:
    bits = _BITS[version]
    out: list[SetContent] = []
    _add(out, "addr", version, False, [_host(version, h) for h in sorted(fam.addr_hosts)])
    _add(
        out,
        "addr",
        version,
        True,
        [
            _block(version, b)
            for lo, hi in merge(fam.addr_blocks)
            for b in cidr_blocks(lo, hi, bits)
        ],
    )
    exact_proto: list[tuple[int, ir.Protocol]] = sorted(
        (h, p) for p, hosts in fam.proto_hosts.items() for h in hosts
    )
    _add(
        out,
        "proto",
        version,
        False,
        [f"{_host(version, h)} . {nft_syntax.protocol(p)}" for h, p in exact_proto],
    )
    ranged_proto: list[tuple[Range, ir.Protocol]] = sorted(
        (b, p)
        for p, blocks in fam.proto_blocks.items()
        for lo, hi in merge(blocks)
        for b in cidr_blocks(lo, hi, bits)
    )
    _add(
        out,
        "proto",
        version,
        True,
        [f"{_block(version, b)} . {nft_syntax.protocol(p)}" for b, p in ranged_proto],
    )
    _add(
        out,
        "port",
        version,
        False,
        [
            f"{_host(version, h)} . {nft_syntax.protocol(p)} . {port}"
            for h, p, port in sorted(fam.exact)
        ],
    )
    ranged: list[tuple[Range, ir.Protocol, Range]] = []
    for proto, boxes in fam.boxes.items():
        ranged.extend((a, proto, port) for a, port in _disjoint_boxes(boxes, bits))
    ranged.sort()
    _add(
        out,
        "port",
        version,
        True,
        [
            f"{_block(version, a)} . {nft_syntax.protocol(p)} . {_ports(port)}"
            for a, p, port in ranged
        ],
    )
    return out


def _disjoint_boxes(
    boxes: list[tuple[tuple[Range, ...], tuple[int, ...], Range]], bits: int
) -> list[tuple[Range, Range]]:
    """A disjoint cover of the union of (blocks + hosts) x port-range boxes.

    Port ranges are cut at every boundary; in each piece the covering blocks are merged and
    hosts outside them kept as single addresses (pod addresses never merge into blocks, so
    they stay recognisable); neighbouring pieces with equal addresses are joined."""
    cuts = sorted({b for _, _, (lo, hi) in boxes for b in (lo, hi + 1)})
    pieces: list[tuple[Range, tuple[Range, ...], tuple[int, ...]]] = []
    for start, stop in itertools.pairwise(cuts):
        covering = [(blk, hs) for blk, hs, (lo, hi) in boxes if lo <= start and stop - 1 <= hi]
        if not covering:
            continue
        merged = merge(b for blk, _ in covering for b in blk)
        outside = sorted({h for _, hs in covering for h in hs if not _inside(h, merged)})
        key = (tuple(merged), tuple(outside))
        if pieces and pieces[-1][0][1] == start - 1 and pieces[-1][1:] == key:
            pieces[-1] = ((pieces[-1][0][0], stop - 1), *key)
        else:
            pieces.append(((start, stop - 1), *key))
    out: list[tuple[Range, Range]] = []
    for port, blocks, hosts in pieces:
        out.extend((b, port) for lo, hi in blocks for b in cidr_blocks(lo, hi, bits))
        out.extend(((h, h), port) for h in hosts)
    return out
