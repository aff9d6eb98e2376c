"""iptables' and ipset's lexical rules: names, comments, addresses and ports, safely spelled.

Small, pure functions, unit-tested on their own. The limits were checked against iptables
1.8.9 (legacy and nf_tables) and ipset 7.17 on Linux 6.x:

* a chain name is at most :data:`CHAIN_MAX` (28) characters (``XT_EXTENSION_MAXNAMELEN`` is
  29 with the terminating NUL); an ipset name at most :data:`SET_MAX` (31: ``IPSET_MAXNAMELEN``
  is 32), and ``ipset`` refuses longer ones ("setname ... is longer than 31 characters");
* every name npc owns starts with :data:`PREFIX`, which is how ``npc apply`` tells its own
  chains and sets from everyone else's;
* ``iptables-restore`` splits a line into words at blanks, honouring double quotes; inside
  them ``\\"`` and ``\\\\`` are escapes, and ``iptables-save`` writes ``'`` as ``\\'``. A
  comment made only of :data:`COMMENT_SAFE` characters reads back unchanged, so npc keeps
  comments to those and to :data:`COMMENT_MAX` (255) bytes, the ``comment`` match's limit;
* ``hash:net`` sets hold prefixes of length 1 to 32 (128): ``0.0.0.0/0`` is refused ("The
  value of the CIDR parameter of the IP address is invalid"), so a whole family is two
  halves; ``-m multiport`` takes at most :data:`MULTIPORT_MAX` (15) ports, a range counting
  twice ("too many ports specified").
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import socket
from collections.abc import Iterable, Sequence
from typing import Final

from npc import ir

__all__ = [
    "CHAIN_MAX",
    "COMMENT_MAX",
    "COMMENT_SAFE",
    "LEVELS_MAX",
    "MULTIPORT_MAX",
    "PREFIX",
    "SET_MARK",
    "SET_MAX",
    "address",
    "block",
    "chain_name",
    "comment",
    "digest",
    "is_own",
    "multiport_groups",
    "note",
    "port",
    "port_element",
    "port_matches",
    "ports",
    "protocol",
    "rule_body",
    "set_entry",
    "set_name",
]

#: Longest chain name the kernel takes.
CHAIN_MAX: Final = 28
#: Longest ipset name the kernel takes.
SET_MAX: Final = 31
#: What every chain and set npc creates is called (and nothing else it touches).
PREFIX: Final = "NPC-"
#: Longest comment the ``comment`` match takes, in bytes.
COMMENT_MAX: Final = 255
#: Characters a comment keeps (others become ``_``): none needs quoting or escaping.
COMMENT_SAFE: Final = re.compile(r"[A-Za-z0-9 ._/:=,+@()-]")
#: Most ports one ``-m multiport`` match takes (a range ``a:b`` counts as two).
MULTIPORT_MAX: Final = 15
#: How deep chains may nest below ``FORWARD`` (level 0) under ``iptables-nft``: nf_tables
#: validates every path of jumps and gotos of a base chain and refuses a chain at level
#: ``NFT_JUMP_STACK_SIZE`` (16) with EMLINK, "Too many links" (``nft_chain_validate`` in
#: ``net/netfilter/nf_tables_api.c``; seen refusing a 29-level ruleset on Linux 6.x).
#: ``iptables-legacy`` has no such limit; npc keeps within it for both.
LEVELS_MAX: Final = 15
#: Marks an address part of a rule that is a set match (``-m set``), written after ``-p``.
SET_MARK: Final = "\0"

_BITS: Final = {4: 32, 6: 128}
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9 ._/:=,+@()-]")
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]+")
_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]*")


def digest(text: str, length: int = 16) -> str:
    """A short, stable hex digest of ``text`` (names must not depend on PYTHONHASHSEED)."""
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def chain_name(kind: str, identity: str) -> str:
    """``NPC-<kind>-<digest of identity>``: the same identity always gives the same chain."""
    name = f"{PREFIX}{kind}-{digest(identity)}"
    if len(name) > CHAIN_MAX or not _NAME.fullmatch(kind):
        raise ValueError(f"chain kind {kind!r} makes a name longer than {CHAIN_MAX}")
    return name


def set_name(family: int, identity: str) -> str:
    """``NPC-<family>-<digest of identity>`` (22 characters, within :data:`SET_MAX`)."""
    return f"{PREFIX}{family}-{digest(identity)}"


def is_own(name: str) -> bool:
    """Whether a chain or set is one npc creates (and may remove when stale)."""
    return name.startswith(PREFIX)


def comment(text: str) -> str:
    """``text`` as a ``--comment`` argument: double-quoted, made of :data:`COMMENT_SAFE`
    characters only, at most :data:`COMMENT_MAX` bytes. It reads back from ``iptables-save``
    exactly as written."""
    clean = _UNSAFE.sub("_", text).strip() or "_"
    if len(clean) > COMMENT_MAX:
        clean = clean[: COMMENT_MAX - 3].rstrip() + "..."
    return f'"{clean}"'


def note(text: str) -> str:
    """``text`` fit for a ``#`` line of a restore file: one line, no control characters."""
    return _CONTROL.sub(" ", text).strip()


def address(version: int, value: int) -> str:
    """One address, as iptables and ipset print it (RFC 5952 for IPv6)."""
    if version == 4:
        return socket.inet_ntop(socket.AF_INET, value.to_bytes(4, "big"))
    return str(ipaddress.IPv6Address(value))


def block(version: int, first: int, last: int, *, bare_host: bool = False) -> str:
    """A CIDR-aligned block ``first..last`` as ``addr/len``, the way ``iptables-save`` prints
    ``-s``/``-d`` (``10.0.0.1/32``); with ``bare_host`` a single address is written bare, the
    way ``ipset save`` prints set entries."""
    size = last - first + 1
    if size <= 0 or size & (size - 1) or first % size:
        raise ValueError(f"{first}..{last} is not a CIDR block")
    length = _BITS[version] - (size.bit_length() - 1)
    text = address(version, first)
    if bare_host and length == _BITS[version]:
        return text
    return f"{text}/{length}"


def set_entry(version: int, first: int, last: int) -> str:
    """A ``hash:net``/``hash:ip`` entry; the whole family (``/0``), which ``hash:net`` cannot
    hold, must be split by the caller (:func:`block` refuses nothing, this refuses /0)."""
    if first == 0 and last == (1 << _BITS[version]) - 1:
        raise ValueError("hash:net cannot hold a /0; split it in two halves")
    return block(version, first, last, bare_host=True)


def protocol(proto: ir.Protocol) -> str:
    """The name ``-p`` takes (``tcp``, ``udp``, ``sctp``)."""
    return proto.value.lower()


def port(first: int, last: int) -> str:
    """``80`` or ``8000:8080``, as ``--dport`` and ``--dports`` take them."""
    return str(first) if first == last else f"{first}:{last}"


def ports(ranges: Sequence[tuple[int, int]]) -> str:
    """Comma-separated ports for ``--dports``."""
    return ",".join(port(a, b) for a, b in ranges)


def multiport_groups(ranges: Iterable[tuple[int, int]]) -> list[list[tuple[int, int]]]:
    """Sorted port ranges cut into groups one ``-m multiport --dports`` takes (at most
    :data:`MULTIPORT_MAX` ports, a range counting as two)."""
    groups: list[list[tuple[int, int]]] = []
    used = MULTIPORT_MAX
    for item in sorted(ranges):
        weight = 1 if item[0] == item[1] else 2
        if used + weight > MULTIPORT_MAX:
            groups.append([])
            used = 0
        groups[-1].append(item)
        used += weight
    return groups


def port_matches(proto: ir.Protocol, ranges: Sequence[tuple[int, int]]) -> list[str]:
    """``-p PROTO`` and its port match, one string per rule, for sorted, merged ``ranges``
    (none, or the whole 0..65535: every port of the protocol)."""
    name = protocol(proto)
    if not ranges or (ir.ALL_PORTS.start, ir.ALL_PORTS.end) in ranges:
        return [f"-p {name}"]
    out = []
    for group in multiport_groups(ranges):
        if len(group) == 1:
            out.append(f"-p {name} -m {name} --dport {port(*group[0])}")
        else:
            out.append(f"-p {name} -m multiport --dports {ports(group)}")
    return out


def port_element(version: int, value: int, proto: ir.Protocol, number: int) -> str:
    """A ``hash:ip,port`` entry: ``10.1.0.2,tcp:8080``, as ``ipset save`` prints it."""
    return f"{address(version, value)},{protocol(proto)}:{number}"


def rule_body(addresses: Sequence[str], ports: str, *rest: str) -> str:
    """A rule body from its parts in ``iptables-save``'s order: inline addresses (``-s``
    before ``-d``) first, then ``-p`` and its port match, then set matches (address parts marked
    with a leading :data:`SET_MARK`), then ``rest`` (comment, target); empty parts vanish."""
    inline = sorted(
        (a for a in addresses if a and not a.startswith(SET_MARK)), key=lambda a: a[:2] == "-d"
    )
    matched = [a[len(SET_MARK) :] for a in addresses if a.startswith(SET_MARK)]
    return " ".join(p for p in (*inline, ports, *matched, *rest) if p)
