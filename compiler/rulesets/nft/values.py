"""What nft's words mean: expressions (``ip saddr``...) and the values they are compared with.

Each supported expression has a data type (nft(8), "DATA TYPES" and "PAYLOAD EXPRESSION") and
the dependencies nft adds to it (nft(8), "PAYLOAD EXPRESSION": matching ``ip saddr`` in an
``inet`` table implies ``meta nfproto ipv4``; ``tcp dport`` implies ``meta l4proto tcp``). A
value is parsed into an inclusive integer span according to that type.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import netaddr

from npc.errors import Location
from npc.rulesets.nft.model import Field, Kind, Span

__all__ = ["CT_STATES", "FIELDS", "PRIORITIES", "PROTOCOLS", "field", "parse_value"]

#: expression -> (data type, implied address family, implied transport protocol)
FIELDS: Mapping[str, tuple[Kind, int | None, int | None]] = MappingProxyType(
    {
        "ip saddr": (Kind.IPV4_ADDR, 4, None),
        "ip daddr": (Kind.IPV4_ADDR, 4, None),
        "ip6 saddr": (Kind.IPV6_ADDR, 6, None),
        "ip6 daddr": (Kind.IPV6_ADDR, 6, None),
        "ip protocol": (Kind.INET_PROTO, 4, None),
        # the header's next header: the transport protocol for packets without extension
        # headers (the only ones a flow describes)
        "ip6 nexthdr": (Kind.INET_PROTO, 6, None),
        "meta l4proto": (Kind.INET_PROTO, None, None),
        "meta nfproto": (Kind.NF_PROTO, None, None),
        "meta protocol": (Kind.ETHER_TYPE, None, None),
        "th dport": (Kind.INET_SERVICE, None, None),
        "tcp dport": (Kind.INET_SERVICE, None, 6),
        "udp dport": (Kind.INET_SERVICE, None, 17),
        "udplite dport": (Kind.INET_SERVICE, None, 136),
        "sctp dport": (Kind.INET_SERVICE, None, 132),
        "dccp dport": (Kind.INET_SERVICE, None, 33),
        "ct state": (Kind.CT_STATE, None, None),
    }
)

#: Protocol names nft prints (it uses /etc/protocols; these are the IANA keywords).
PROTOCOLS: Mapping[str, int] = MappingProxyType(
    {
        "icmp": 1, "igmp": 2, "ipip": 4, "tcp": 6, "egp": 8, "pup": 12, "udp": 17,
        "idp": 22, "tp": 29, "dccp": 33, "ipv6": 41, "rsvp": 46, "gre": 47, "esp": 50,
        "ah": 51, "icmpv6": 58, "ipv6-icmp": 58, "mtp": 92, "beetph": 94, "encap": 98,
        "pim": 103, "comp": 108, "l2tp": 115, "sctp": 132, "udplite": 136, "mpls-in-ip": 137,
        "ethernet": 143, "raw": 255,
    }
)  # fmt: skip

#: nft(8) "CT EXPRESSION": the conntrack state bits.
CT_STATES: Mapping[str, int] = MappingProxyType(
    {"invalid": 1, "established": 2, "related": 4, "new": 8, "untracked": 64}
)

#: nft(8) "CHAINS", table "Standard priority names, family and hook compatibility".
PRIORITIES: Mapping[str, int] = MappingProxyType(
    {"raw": -300, "mangle": -150, "dstnat": -100, "filter": 0, "security": 50, "srcnat": 100}
)

_NF_PROTO = MappingProxyType({"ipv4": 2, "ipv6": 10})
_ETHER_TYPE = MappingProxyType({"ip": 0x0800, "ip6": 0x86DD, "arp": 0x0806})
_TYPE_NAMES = {k.value: k for k in Kind}


def field(name: str, location: Location) -> Field | None:
    """The field an expression names, or None when the judge does not model it."""
    found = FIELDS.get(name)
    if found is None:
        return None
    kind, family, protocol = found
    return Field(name, kind, location, family, protocol)


def kind_of(type_name: str) -> Kind | None:
    """The data type a set's ``type`` word names, or None when it is not modelled."""
    return _TYPE_NAMES.get(type_name)


def _address(text: str, version: int) -> Span:
    if "/" in text:
        net = netaddr.IPNetwork(text)
        if net.version != version:
            raise ValueError("wrong family")
        return int(net.first), int(net.last)
    if "-" in text:
        first, _, last = text.partition("-")
        a, b = netaddr.IPAddress(first), netaddr.IPAddress(last)
        if a.version != version or b.version != version or a > b:
            raise ValueError("bad range")
        return int(a), int(b)
    addr = netaddr.IPAddress(text)
    if addr.version != version:
        raise ValueError("wrong family")
    return int(addr), int(addr)


def _number_or_range(text: str, names: Mapping[str, int], limit: int) -> Span:
    first, dash, last = text.partition("-")
    if text in names:
        return names[text], names[text]
    if not first.isdigit() or (dash and not last.isdigit()):
        raise ValueError("not a number")
    lo, hi = int(first), int(last) if dash else int(first)
    if not 0 <= lo <= hi <= limit:
        raise ValueError("out of range")
    return lo, hi


def parse_value(kind: Kind, text: str) -> Span:
    """``text`` as a span of ``kind``; ValueError when it is not one."""
    if kind is Kind.IPV4_ADDR:
        return _address(text, 4)
    if kind is Kind.IPV6_ADDR:
        return _address(text, 6)
    if kind is Kind.INET_PROTO:
        return _number_or_range(text, PROTOCOLS, 255)
    if kind is Kind.INET_SERVICE:
        return _number_or_range(text, {}, 65535)
    if kind is Kind.CT_STATE:
        if text not in CT_STATES:
            raise ValueError("not a state")
        return CT_STATES[text], CT_STATES[text]
    if kind is Kind.NF_PROTO:
        return _number_or_range(text, _NF_PROTO, 255)
    return _number_or_range(text, _ETHER_TYPE, 0xFFFF)
