"""Integer interval arithmetic for IP address sets.

An address set is a sorted tuple of disjoint, non-adjacent ``(version, first, last)`` ranges
(IPv4 before IPv6, inclusive bounds). Union, intersection and difference are linear merges;
converting to the minimal CIDR list is the usual largest-aligned-block walk. This is what
``netaddr.IPSet`` does, without its per-CIDR objects and dictionary: IR construction builds
thousands of address sets, and this is several times faster.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from types import MappingProxyType
from typing import Final

import netaddr

__all__ = [
    "ADDRESS_BITS",
    "FAMILIES",
    "Range",
    "difference",
    "from_cidrs",
    "intersection",
    "normalise",
    "to_cidrs",
    "union",
]

#: (IP version, first address, last address), as integers.
Range = tuple[int, int, int]

#: Address families (IP versions), in output order.
FAMILIES: Final = (4, 6)
#: Address width in bits, per family.
ADDRESS_BITS: Final = MappingProxyType({4: 32, 6: 128})


def normalise(ranges: Iterable[Range]) -> tuple[Range, ...]:
    """Sort, and merge overlapping or adjacent ranges of the same version."""
    out: list[Range] = []
    for version, first, last in sorted(ranges):
        if out and out[-1][0] == version and first <= out[-1][2] + 1:
            if last > out[-1][2]:
                out[-1] = (version, out[-1][1], last)
        else:
            out.append((version, first, last))
    return tuple(out)


def from_cidrs(cidrs: Iterable[netaddr.IPNetwork]) -> tuple[Range, ...]:
    """The normalised ranges covering ``cidrs``."""
    return normalise((c.version, c.first, c.last) for c in cidrs)


def union(a: tuple[Range, ...], b: tuple[Range, ...]) -> tuple[Range, ...]:
    """Addresses in ``a`` or ``b``, normalised."""
    return normalise((*a, *b))


def difference(a: tuple[Range, ...], b: tuple[Range, ...]) -> tuple[Range, ...]:
    """Addresses of ``a`` not in ``b`` (both normalised)."""
    out: list[Range] = []
    j = 0
    for version, start, last in a:
        while j < len(b) and (b[j][0], b[j][2]) < (version, start):
            j += 1
        first = start  # the part of this range not yet cut away
        k = j
        while first <= last and k < len(b) and b[k][0] == version and b[k][1] <= last:
            _, cut_first, cut_last = b[k]
            if cut_first > first:
                out.append((version, first, cut_first - 1))
            first = max(first, cut_last + 1)
            k += 1
        if first <= last:
            out.append((version, first, last))
    return tuple(out)


def intersection(a: tuple[Range, ...], b: tuple[Range, ...]) -> tuple[Range, ...]:
    out: list[Range] = []
    i = j = 0
    while i < len(a) and j < len(b):
        va, fa, la = a[i]
        vb, fb, lb = b[j]
        if va == vb:
            first, last = max(fa, fb), min(la, lb)
            if first <= last:
                out.append((va, first, last))
        if (va, la) < (vb, lb):
            i += 1
        else:
            j += 1
    return tuple(out)


def _blocks(version: int, first: int, last: int) -> Iterator[netaddr.IPNetwork]:
    bits = ADDRESS_BITS[version]
    while first <= last:
        # The largest block aligned at `first` that does not pass `last`.
        size = first & -first if first else 1 << bits
        while size > last - first + 1:
            size >>= 1
        yield netaddr.IPNetwork((first, bits - size.bit_length() + 1), version)
        first += size


def to_cidrs(ranges: Iterable[Range]) -> tuple[netaddr.IPNetwork, ...]:
    """The minimal CIDR list covering exactly these (normalised) ranges, in order."""
    return tuple(net for r in ranges for net in _blocks(*r))
