"""iptables-save and ipset save files as lines of words with positions, and the values those
words hold (numbers, ``value/mask`` marks, addresses, port ranges).

The grammar is ``grammar/iptables.lark``: a line is words and quoted strings (iptables-save
quotes a comment with blanks and escapes ``"`` in it as ``\\"``), or a comment of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import netaddr
from lark import Token, Transformer
from lark.exceptions import UnexpectedInput

from npc.errors import Code, Diagnostic, InputError, Location, Severity
from npc.grammar import parser

__all__ = [
    "PROTOCOLS",
    "Word",
    "error",
    "network",
    "number",
    "parse_lines",
    "port_span",
    "value_mask",
]

#: Protocol names iptables and ipset accept (/etc/protocols' keywords), by IANA number.
PROTOCOLS: Mapping[str, int] = MappingProxyType(
    {
        "all": 0, "icmp": 1, "tcp": 6, "udp": 17, "dccp": 33, "ipv6-icmp": 58, "icmpv6": 58,
        "sctp": 132, "udplite": 136,
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Word:
    """A word of a line (a quoted string unquoted) where it was written."""

    text: str
    location: Location


def error(location: Location, message: str, hint: str | None = None) -> InputError:
    """An input error at ``location``."""
    return InputError(
        [Diagnostic(Code.INVALID_VALUE, Severity.ERROR, message, location=location, hint=hint)]
    )


class _ToWords(Transformer[Token, Any]):
    def __init__(self, file: str) -> None:
        super().__init__()
        self.file = file

    def start(self, lines: list[tuple[Word, ...]]) -> tuple[tuple[Word, ...], ...]:
        return tuple(lines)

    def line(self, tokens: list[Token]) -> tuple[Word, ...]:
        out = []
        for t in tokens:
            text = str(t)
            if t.type == "STRING":
                text = text[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            out.append(Word(text, Location(self.file, t.line or 1, t.column or 1)))
        return tuple(out)


def parse_lines(name: str, text: str) -> tuple[tuple[Word, ...], ...]:
    """The file's lines as words with positions (blank lines dropped; a comment is a line of
    one word starting with ``#``)."""
    try:
        tree = parser("iptables").parse(text)
    except UnexpectedInput as exc:
        raise error(
            Location(name, max(exc.line, 1), max(exc.column, 1)),
            "iptables: unterminated quoted string or unreadable text",
        ) from None
    result: tuple[tuple[Word, ...], ...] = _ToWords(name).transform(tree)
    return result


def number(word: Word) -> int:
    """A decimal or ``0x`` hexadecimal number."""
    try:
        return int(word.text, 0)
    except ValueError:
        raise error(word.location, f'iptables: "{word.text}" is not a number') from None


def value_mask(word: Word) -> tuple[int, int]:
    """``value[/mask]`` (the mask defaults to every bit)."""
    value, _, mask = word.text.partition("/")
    return number(Word(value, word.location)), (
        number(Word(mask, word.location)) if mask else 0xFFFFFFFF
    )


def network(word: Word) -> netaddr.IPNetwork:
    """An address, ``address/prefix`` or ``address/dotted-mask``."""
    try:
        if "/" in word.text and "." in word.text.split("/")[1]:  # 10.0.0.0/255.0.0.0
            address, _, mask = word.text.partition("/")
            return netaddr.IPNetwork(f"{address}/{netaddr.IPAddress(mask).netmask_bits()}")
        return netaddr.IPNetwork(word.text)
    except (netaddr.AddrFormatError, ValueError):
        raise error(word.location, f'iptables: "{word.text}" is not an address') from None


def port_span(word: Word, separator: str = ":") -> tuple[int, int]:
    """``port``, ``first:last`` (``first-last`` for ipset), either end optional."""
    first, sep, last = word.text.partition(separator)
    lo = number(Word(first or "0", word.location))
    hi = number(Word(last or "65535", word.location)) if sep else lo
    if not 0 <= lo <= hi <= 65535:
        raise error(word.location, f'iptables: "{word.text}" is not a port range')
    return lo, hi
