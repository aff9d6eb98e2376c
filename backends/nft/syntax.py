"""nft's lexical rules: identifiers, comments and literal values, safely spelled.

Small, pure functions (the template's filters and the planner's name makers), unit-tested on
their own. What they guard against was found by loading rulesets into nft 1.0.6:

* identifiers are unquoted words matching :data:`IDENTIFIER`; a word nft knows as a keyword
  is not an identifier (a chain or table named ``fwd`` fails to load, so does ``frag-off``);
  quoted names are a syntax error;
* quoted strings (comments) have no escapes: a ``"`` cannot appear inside one, and nft
  refuses comments longer than :data:`COMMENT_MAX` bytes.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

import netaddr

from npc import ir

__all__ = [
    "COMMENT_MAX",
    "IDENTIFIER",
    "KEYWORDS",
    "NAME_MAX",
    "OWNER",
    "address",
    "comment",
    "digest",
    "is_identifier",
    "note",
    "port_range",
    "protocol",
    "safe_name",
]

#: What nft's scanner reads as a name: a letter or ``_``, then letters, digits, ``_ . / -``.
IDENTIFIER: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*")

#: Longest name npc generates; longer candidates are shortened and hashed. (The kernel takes
#: 256 bytes, but short names keep listings readable and stay within older kernels' limits.)
NAME_MAX: Final = 64

#: nft refuses longer comments ("comment too long, 128 characters maximum allowed").
COMMENT_MAX: Final = 128

#: The comment of every table npc writes: ``npc apply`` replaces a table only when it carries
#: it, so ``--table filter`` can never delete a host's own firewall table.
OWNER = "managed by npc (npc apply replaces it whole)"

_KEYWORD_TEXT = """
    a-rwnd abort accept ackseq add addr ah all arp asconf asconf-ack auto-merge avgpkt bridge
    burst bypass bytes cfi cgroup cgroupv2 chain chains checksum chunk classid code colon comma
    comment comp constant continue cookie-ack cookie-echo count counter counters cpi cpu create
    csumcov ct cum-tsn-ack cwr daddr data day dccp define dei delete describe device devices
    direction dnat doff dport drop dscp dst dup dynamic echo ecn ecne element elements eol error
    esp ether event exists expectation expiration expires export exthdr fanout fastopen fib
    flags flow flowlabel flowtable flowtables flush forward-tsn frag frag-off fully-random fwd
    gateway gc-interval get goto group handle hbh hdrlength heartbeat heartbeat-ack helper
    helpers hlen hook hooks hoplimit hour htype ibriport ibrname icmp icmpv6 icmpx id igmp iif
    iifgroup iifname iiftype import in inc include index inet init init-ack init-tag initial-tsn
    insert interval ip ip6 ipsec jhash json jump junk l3proto label last-entry left length level
    limit limits list ll log lowest-tsn lsrr map maps mark masquerade max-delay md5sig memory
    meta meter meters mh minute missing mod monitor more-fragments mptcp mrt mss mtu name netdev
    new-cum-tsn newline nexthdr nexthop nftrace nh nop notrack num num-dup-tsns
    num-gap-ack-blocks num-inbound-streams num-outbound-streams number numgen obriport obrname
    offload offset oif oifgroup oifname oiftype operation option options original osf out over
    packets param-problem pcp performance persistent pkttype plen policy port position ppid
    prefix priority proto-dst proto-src protocol ptr ptype queue queue-threshold quota quotas ra
    random rate redefine redirect reject rename replace reply reqid reserved reserved2 reset
    return right rr rt rt0 rt2 rtclassid rule rules ruleset sack sack-permitted sack0 sack1
    sack2 sack3 saddr sctp secmark secmarks second seed seg-left semicolon seq seqno set sets
    shutdown shutdown-ack shutdown-complete sid size skgid skuid snaplen snat socket spi spnum
    sport srh ssn ssrr state status stream string subtype symhash synproxy synproxys table
    tables tag tcp th time timeout timestamp to tproxy trace transparent tsecr tsn tsval ttl
    type typeof udp udplite undefine until update urgptr used value version vlan vm vmap vtag
    week wildcard window with wscale xml xt zone
"""
#: The keywords of nft 1.0.6's grammar (token names of its parser), which cannot be used as
#: names. A few entries are token descriptions rather than words (``newline``, ``string``);
#: rejecting those as table names costs nothing.
KEYWORDS: Final = frozenset(_KEYWORD_TEXT.split())

_UNSAFE = re.compile(r"[^A-Za-z0-9_./-]+")
_LEADING_JUNK = re.compile(r"^[^A-Za-z_]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_COMMENT_UNSAFE = re.compile(r'["\x00-\x1f\x7f]+')


def is_identifier(name: str, max_length: int = NAME_MAX) -> bool:
    """Whether nft reads ``name`` as a name (not a keyword, not too long)."""
    return (
        0 < len(name) <= max_length
        and IDENTIFIER.fullmatch(name) is not None
        and name.lower() not in KEYWORDS
    )


def digest(text: str, length: int = 8) -> str:
    """A short, stable hex digest of ``text`` (for names that must stay distinct)."""
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def safe_name(candidate: str, max_length: int = NAME_MAX) -> str:
    """``candidate`` if it is a valid identifier, else a valid one derived from it: a
    sanitised prefix plus 8 hex digits of a hash of the candidate, so distinct candidates
    stay distinct."""
    if is_identifier(candidate, max_length):
        return candidate
    prefix = _UNSAFE.sub("_", candidate)
    prefix = _LEADING_JUNK.sub("", prefix)[: max_length - 9] or "h"
    return f"{prefix}-{digest(candidate)}"


def comment(text: str) -> str:
    """``text`` as an nft comment literal: quoted, without ``"`` or control characters
    (nft has no escapes), shortened to :data:`COMMENT_MAX` bytes on a character boundary."""
    clean = _COMMENT_UNSAFE.sub(" ", text.replace('"', "'")).strip()
    data = clean.encode()
    if len(data) > COMMENT_MAX:
        data = data[: COMMENT_MAX - 3]
        clean = data.decode(errors="ignore").rstrip() + "..."
    return f'"{clean}"'


def note(text: str) -> str:
    """``text`` fit for a ``#`` comment line of the script: one line, no control characters."""
    return _CONTROL.sub(" ", text).strip()


def address(version: int, first: int, last: int | None = None) -> str:
    """An address (``last`` None or equal) or a CIDR block, as nft writes it.

    ``first``..``last`` must be a CIDR-aligned block."""
    addr = netaddr.IPAddress(first, version)
    if last is None or last == first:
        return str(addr)
    size = last - first + 1
    prefix = (32 if version == 4 else 128) - (size.bit_length() - 1)
    if size & (size - 1) or first % size:
        raise ValueError(f"{addr}..{netaddr.IPAddress(last, version)} is not a CIDR block")
    return f"{addr}/{prefix}"


def port_range(start: int, end: int) -> str:
    """``80`` or ``8000-8080``."""
    return str(start) if start == end else f"{start}-{end}"


def protocol(proto: ir.Protocol) -> str:
    """The nft name of a transport protocol (``meta l4proto`` values)."""
    return _PROTOCOLS[proto]


_PROTOCOLS: Final = {p: p.value.lower() for p in ir.Protocol}
