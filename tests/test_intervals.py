"""AddressSet's interval arithmetic agrees with netaddr.IPSet (the reference)."""

from __future__ import annotations

import netaddr
from hypothesis import given, settings
from hypothesis import strategies as st

from npc.ir import AddressSet


@st.composite
def networks(draw: st.DrawFn) -> netaddr.IPNetwork:
    if draw(st.booleans()):
        # IPv4, clustered so that sets overlap and touch.
        value = draw(st.integers(0, 2**12 - 1)) << 20 | draw(st.integers(0, 2**20 - 1))
        return netaddr.IPNetwork((value, draw(st.integers(0, 32))), 4).cidr
    value = draw(st.integers(0, 2**16 - 1)) << 112 | draw(st.integers(0, 2**20 - 1))
    return netaddr.IPNetwork(
        (value, draw(st.sampled_from((0, 1, 8, 64, 112, 120, 127, 128)))), 6
    ).cidr


sets = st.lists(networks(), max_size=6)


@settings(max_examples=300)
@given(sets, sets)
def test_algebra_matches_netaddr(a: list[netaddr.IPNetwork], b: list[netaddr.IPNetwork]) -> None:
    x, y = AddressSet(tuple(a)), AddressSet(tuple(b))
    ix, iy = netaddr.IPSet(a), netaddr.IPSet(b)
    assert list(x.cidrs) == list(ix.iter_cidrs())
    assert list(x.union(y).cidrs) == list((ix | iy).iter_cidrs())
    assert list(x.intersection(y).cidrs) == list((ix & iy).iter_cidrs())
    assert list(x.difference(y).cidrs) == list((ix - iy).iter_cidrs())
    assert x.issubset(y) == ix.issubset(iy)
    assert bool(x) == bool(ix)
    assert AddressSet.from_ipset(ix) == x and x.to_ipset() == ix


@settings(max_examples=300)
@given(networks(), st.lists(networks(), max_size=4), st.lists(networks(), max_size=8))
def test_blocks_and_membership(
    cidr: netaddr.IPNetwork, excepts: list[netaddr.IPNetwork], probes: list[netaddr.IPNetwork]
) -> None:
    block = AddressSet.from_block(cidr, excepts)
    ref = netaddr.IPSet([cidr]) - netaddr.IPSet(excepts)
    assert list(block.cidrs) == list(ref.iter_cidrs())
    for p in probes:
        for address in (
            p.ip,
            netaddr.IPAddress(p.first, p.version),
            netaddr.IPAddress(p.last, p.version),
        ):
            assert block.contains(address) == (address in ref)


def test_whole_spaces_and_edges() -> None:
    everything = AddressSet.of("0.0.0.0/0", "::/0")
    assert [str(c) for c in everything.cidrs] == ["0.0.0.0/0", "::/0"]
    assert everything.contains("255.255.255.255") and everything.contains("ffff::1")
    hole = AddressSet.from_block(netaddr.IPNetwork("0.0.0.0/0"), [netaddr.IPNetwork("10.0.0.0/8")])
    assert (
        not hole.contains("10.1.2.3")
        and hole.contains("11.0.0.0")
        and hole.contains("9.255.255.255")
    )
    assert AddressSet.of("10.0.0.0/25", "10.0.0.128/25").cidrs == AddressSet.of("10.0.0.0/24").cidrs
    assert AddressSet.of("10.0.0.0/24") == AddressSet.of("10.0.0.0/25", "10.0.0.128/25")
    assert hash(AddressSet.of("10.0.0.0/24")) == hash(AddressSet.of("10.0.0.128/25", "10.0.0.0/25"))
