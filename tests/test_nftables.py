"""The nft target's building blocks: names, comments, literals, and set contents."""

from __future__ import annotations

import itertools

import netaddr
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npc import ir
from npc.backends.grants import Addresses, Grant, cidr_blocks, merge
from npc.backends.nft import syntax as nft_syntax
from npc.backends.nft.apply import parse_nft_errors
from npc.backends.nft.elements import build_lookups

# -- identifiers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["npc", "egress/shop/1", "ingress/a.b/c-d_e/port4-range", "_x", "my-table", "forward"]
)
def test_valid_identifiers(name: str) -> None:
    assert nft_syntax.is_identifier(name)


@pytest.mark.parametrize(
    "name",
    ["fwd", "frag-off", "table", "Drop", "1abc", "-x", "a b", 'a"b', "é", "", "x" * 65, "a;b"],
)
def test_invalid_identifiers(name: str) -> None:
    assert not nft_syntax.is_identifier(name)


def test_keywords_come_from_nft_grammar() -> None:
    # measured: these fail to load as chain or table names in nft 1.0.6
    assert {"fwd", "frag-off", "vmap", "accept", "ip6", "th"} <= nft_syntax.KEYWORDS
    # and these load fine, so they must stay usable
    assert not {"forward", "filter", "input", "npc", "egress", "ingress"} & nft_syntax.KEYWORDS


@given(st.text(min_size=1, max_size=300))
def test_safe_name_is_always_an_identifier(candidate: str) -> None:
    name = nft_syntax.safe_name(candidate)
    assert nft_syntax.is_identifier(name)
    if nft_syntax.is_identifier(candidate):
        assert name == candidate


def test_safe_name_keeps_long_candidates_distinct_and_readable() -> None:
    base = "ingress/" + "n" * 63 + "/" + "p" * 200
    first, second = nft_syntax.safe_name(base + "/port4"), nft_syntax.safe_name(base + "/port6")
    assert first != second
    assert first.startswith("ingress/nnn") and len(first) == nft_syntax.NAME_MAX
    assert nft_syntax.safe_name("fwd") != "fwd"
    assert nft_syntax.safe_name("fwd").startswith("fwd-")


# -- comments and literals --------------------------------------------------------------------


def test_comment_has_no_way_out_of_its_quotes() -> None:
    assert nft_syntax.comment('a "b"\nc\td') == "\"a 'b' c d\""
    assert nft_syntax.comment("shop/web") == '"shop/web"'


def test_comment_is_cut_to_what_nft_accepts() -> None:
    text = nft_syntax.comment("é" * 100)  # 200 bytes of UTF-8
    inner = text[1:-1]
    assert len(inner.encode()) <= nft_syntax.COMMENT_MAX
    assert inner.endswith("...") and "\ufffd" not in inner


def test_note_is_one_line() -> None:
    assert nft_syntax.note("a\nb\x00c ") == "a b c"


@pytest.mark.parametrize(
    ("version", "first", "last", "text"),
    [
        (4, "10.0.0.0", "10.0.0.255", "10.0.0.0/24"),
        (4, "10.0.0.7", None, "10.0.0.7"),
        (4, "0.0.0.0", "255.255.255.255", "0.0.0.0/0"),
        (6, "fd00::", "fd00::ffff", "fd00::/112"),
        (6, "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "::/0"),
    ],
)
def test_address(version: int, first: str, last: str | None, text: str) -> None:
    lo = int(netaddr.IPAddress(first))
    hi = None if last is None else int(netaddr.IPAddress(last))
    assert nft_syntax.address(version, lo, hi) == text


def test_address_refuses_a_range_that_is_no_block() -> None:
    with pytest.raises(ValueError, match="not a CIDR block"):
        nft_syntax.address(4, 1, 2)


def test_port_range_and_protocol() -> None:
    assert nft_syntax.port_range(80, 80) == "80"
    assert nft_syntax.port_range(8000, 8080) == "8000-8080"
    assert [nft_syntax.protocol(p) for p in ir.Protocol] == ["tcp", "udp", "sctp"]


# -- set contents -----------------------------------------------------------------------------


@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))
def test_cidr_blocks_cover_a_range_exactly(a: int, b: int) -> None:
    lo, hi = min(a, b), max(a, b)
    blocks = cidr_blocks(lo, hi, 32)
    assert blocks[0][0] == lo and blocks[-1][1] == hi
    for (_, end), (start, _) in itertools.pairwise(blocks):
        assert start == end + 1
    for start, end in blocks:
        size = end - start + 1
        assert size & (size - 1) == 0 and start % size == 0
    assert len(blocks) <= 2 * 32


def test_merge_joins_touching_and_overlapping_ranges() -> None:
    assert merge([(5, 9), (1, 3), (4, 4), (20, 30), (25, 26)]) == [(1, 9), (20, 30)]


_blocks = st.lists(
    st.tuples(st.integers(0, 255), st.integers(24, 32)).map(
        lambda t: netaddr.IPNetwork(f"10.0.{t[0]}.0/{t[1]}")
    ),
    min_size=1,
    max_size=3,
)
_ports = st.tuples(st.integers(1, 40), st.integers(0, 12)).map(lambda t: (t[0], t[0] + t[1]))
_grants = st.lists(
    st.tuples(
        _blocks, st.sampled_from(list(ir.Protocol)), st.lists(_ports, min_size=1, max_size=3)
    ),
    min_size=1,
    max_size=5,
)


@settings(max_examples=150, deadline=None)
@given(_grants)
def test_interval_elements_are_disjoint_and_cover_the_grants(
    grants: list[tuple[list[netaddr.IPNetwork], ir.Protocol, list[tuple[int, int]]]],
) -> None:
    """The kernel refuses overlapping interval elements; the union must stay exact."""
    lookups = build_lookups(
        Grant(Addresses(blocks={4: tuple((n.first, n.last) for n in nets)}), proto, tuple(ports))
        for nets, proto, ports in grants
    )
    boxes = [
        (element[0], element[1], element[2])
        for test in lookups.tests
        if test.content.shape == "port"
        for element in test.content.elements
    ]
    assert all(t.content.interval for t in lookups.tests if t.content.shape == "port")
    for a, b in itertools.combinations(boxes, 2):
        same_proto = a[1] == b[1]
        addr_overlap = a[0][0] <= b[0][1] and b[0][0] <= a[0][1]
        port_overlap = a[2][0] <= b[2][1] and b[2][0] <= a[2][1]
        assert not (same_proto and addr_overlap and port_overlap), (a, b)

    def granted(addr: int, proto: ir.Protocol, port: int) -> bool:
        return any(
            p is proto
            and any(lo <= port <= hi for lo, hi in ports)
            and any(n.first <= addr <= n.last for n in nets)
            for nets, p, ports in grants
        )

    def covered(addr: int, proto: ir.Protocol, port: int) -> bool:
        return any(
            a[0] <= addr <= a[1] and p is proto and o[0] <= port <= o[1] for a, p, o in boxes
        )

    probes = {n.first for nets, _, _ in grants for n in nets} | {
        n.last for nets, _, _ in grants for n in nets
    }
    probes |= {a + 1 for a in list(probes)} | {a - 1 for a in list(probes)}
    for addr in probes:
        for proto in ir.Protocol:
            for port in range(0, 54):
                assert covered(addr, proto, port) == granted(addr, proto, port)


def test_pod_addresses_stay_in_hash_sets() -> None:
    pods = Addresses(hosts={4: frozenset({1, 2, 3})})
    lookups = build_lookups(
        [
            Grant(pods, ir.Protocol.TCP, ((80, 80), (8000, 8100))),
            Grant(pods, ir.Protocol.UDP, ((0, 65535),)),
            Grant(pods),
        ]
    )
    assert [t.content.interval for t in lookups.tests] == [False, False, False, False]
    ranged = [t for t in lookups.tests if t.ports is not None]
    assert [t.ports for t in ranged] == [(ir.Protocol.TCP, (8000, 8100))]
    assert ranged[0].match("saddr", "s") == "ip saddr @s tcp dport 8000-8100"


def test_any_peer_rules() -> None:
    assert build_lookups([Grant(None)]).unconditional
    lookups = build_lookups(
        [Grant(None, ir.Protocol.UDP, ((0, 65535),)), Grant(None, ir.Protocol.TCP, ((80, 80),))]
    )
    assert lookups.protocols == (ir.Protocol.UDP,)
    (test,) = lookups.tests
    assert test.content.key_type == "inet_proto . inet_service"
    assert test.content.texts() == ["tcp . 80"]


# -- nft's error messages ---------------------------------------------------------------------

RULESET = (
    "table inet npc\ndelete table inet npc\ntable inet npc {\n\tchain c {\n\t\tfrobnicate\n\t}\n}\n"
)


def test_nft_errors_point_at_the_generated_line() -> None:
    stderr = (
        "/dev/stdin:5:3-12: Error: syntax error, unexpected string\n"
        "\t\tfrobnicate\n"
        "\t\t^^^^^^^^^^\n"
    )
    (diag,) = parse_nft_errors(stderr, RULESET)
    assert diag.location is not None
    assert (diag.location.line, diag.location.column) == (5, 3)
    assert diag.hint == "line 5: frobnicate"
    assert diag.render().startswith("<nft ruleset>:5:3: error: nft rejected the ruleset")


def test_nft_errors_without_position() -> None:
    (diag,) = parse_nft_errors("Error: Could not process rule: Operation not permitted\n", "")
    assert "Operation not permitted" in diag.message
    assert diag.hint is not None and "CAP_NET_ADMIN" in diag.hint


def test_repeated_nft_errors_are_reported_once() -> None:
    """One refused table makes nft refuse every object after it; say so once."""
    stderr = "".join(
        f"/dev/stdin:{n}:1-5: Error: Could not process rule: Operation not permitted\nx\n^\n"
        for n in (1, 2, 3, 3)
    )
    (diag,) = parse_nft_errors(stderr, RULESET)
    assert diag.location is not None and diag.location.line == 1
    assert diag.message.endswith("Operation not permitted (and 3 more like it)")
    assert diag.hint is not None
    assert diag.hint.startswith("line 1: table inet npc; ") and "flags owner" in diag.hint
