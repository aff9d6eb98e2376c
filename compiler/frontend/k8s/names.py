"""Name, label, port and CIDR checks, as apimachinery's ``util/validation`` does them.

Each ``is_*`` function returns the list of messages the API server would give (empty when the
value is valid), worded as Kubernetes words them so users recognise them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import netaddr

__all__ = [
    "ParsedCidr",
    "is_dns1123_label",
    "is_dns1123_subdomain",
    "is_qualified_name",
    "is_valid_label_value",
    "is_valid_port_name",
    "is_valid_port_num",
    "parse_cidr",
    "parse_ip",
]

_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_PORT_NAME_CHARS = re.compile(r"[-a-z0-9]+")
_HAS_LETTER = re.compile(r"[a-z]")

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
QUALIFIED_NAME_MAX = 63
LABEL_VALUE_MAX = 63
PORT_NAME_MAX = 15


def _max_len(n: int) -> str:
    return f"must be no more than {n} characters"


def is_dns1123_label(value: str) -> list[str]:
    """RFC 1123 label: namespaces, port-less names."""
    errs: list[str] = []
    if len(value) > DNS1123_LABEL_MAX:
        errs.append(_max_len(DNS1123_LABEL_MAX))
    if not _DNS1123_LABEL.fullmatch(value):
        errs.append(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or "
            "'-', and must start and end with an alphanumeric character (e.g. 'my-name', "
            "or '123-abc')"
        )
    return errs


def is_dns1123_subdomain(value: str) -> list[str]:
    """RFC 1123 subdomain: object names, label-key prefixes."""
    errs: list[str] = []
    if len(value) > DNS1123_SUBDOMAIN_MAX:
        errs.append(_max_len(DNS1123_SUBDOMAIN_MAX))
    if not _DNS1123_SUBDOMAIN.fullmatch(value):
        errs.append(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
            "'-' or '.', and must start and end with an alphanumeric character (e.g. "
            "'example.com')"
        )
    return errs


def is_qualified_name(value: str) -> list[str]:
    """A label key or annotation key: optional DNS-subdomain prefix, ``/``, and a name."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend(f"prefix part {m}" for m in is_dns1123_subdomain(prefix))
    else:
        return [
            "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and "
            "must start and end with an alphanumeric character (e.g. 'MyName',  or "
            "'my.name',  or '123-abc') with an optional DNS subdomain prefix and '/' "
            "(e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > QUALIFIED_NAME_MAX:
        errs.append(f"name part {_max_len(QUALIFIED_NAME_MAX)}")
    if name and not _QUALIFIED_NAME.fullmatch(name):
        errs.append(
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must "
            "start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
            "'123-abc')"
        )
    return errs


def is_valid_label_value(value: str) -> list[str]:
    """A label value: empty, or <= 63 characters, alphanumeric at both ends, ``-_.`` inside."""
    errs: list[str] = []
    if len(value) > LABEL_VALUE_MAX:
        errs.append(_max_len(LABEL_VALUE_MAX))
    if not _LABEL_VALUE.fullmatch(value):
        errs.append(
            "a valid label must be an empty string or consist of alphanumeric characters, "
            "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. "
            "'MyValue',  or 'my_value',  or '12345')"
        )
    return errs


def is_valid_port_num(port: int) -> list[str]:
    """A port number, as ``validation.IsValidPortNum``: 1-65535."""
    if 1 <= port <= 65535:
        return []
    return ["must be between 1 and 65535, inclusive"]


def is_valid_port_name(port: str) -> list[str]:
    """An IANA service name, as ``validation.IsValidPortName``."""
    errs: list[str] = []
    if len(port) > PORT_NAME_MAX:
        errs.append(_max_len(PORT_NAME_MAX))
    if not _PORT_NAME_CHARS.fullmatch(port):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not _HAS_LETTER.search(port):
        errs.append("must contain at least one letter (a-z)")
    if "--" in port:
        errs.append("must not contain consecutive hyphens")
    if port and (port[0] == "-" or port[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


@dataclass(frozen=True, slots=True)
class ParsedCidr:
    """A CIDR as the API server reads it (Go's ``net.ParseCIDR``, in Kubernetes' sloppy fork).

    ``network`` is the masked network (host bits cleared); an IPv4-mapped IPv6 CIDR such as
    ``::ffff:10.0.0.0/104`` is the IPv4 network it denotes (``10.0.0.0/8``), as Go's
    ``IPNet.Contains`` treats it. ``mask_bits`` is the prefix length as written, which the
    API server compares in its except-is-a-strict-subset check (Go's ``Mask.Size()``).
    ``warnings`` name what is legal but suspicious: host bits set, leading zeros, an
    IPv4-mapped address.
    """

    network: netaddr.IPNetwork
    mask_bits: int
    warnings: tuple[str, ...] = ()
    mapped: bool = False


_DIGITS = re.compile(r"[0-9]+")
_GO_BIG = 0xFFFFFF  # Go's dtoi gives up at this value


_DOTTED_QUAD = re.compile(r"([0-9]+)\.([0-9]+)\.([0-9]+)\.([0-9]+)")
#: In a dotted quad: a part of two or more digits that starts with 0.
_LEADING_ZERO = re.compile(r"(?:^|\.)0[0-9]")


def _parse_v4_sloppy(text: str) -> tuple[netaddr.IPAddress, bool] | None:
    """Dotted quad with Go's sloppy rule: leading zeros are allowed and read as decimal."""
    m = _DOTTED_QUAD.fullmatch(text)
    if m is None:
        return None
    parts = m.groups()
    a, b, c, d = map(int, parts)
    if a > 255 or b > 255 or c > 255 or d > 255:
        return None
    leading_zero = _LEADING_ZERO.search(text) is not None
    return netaddr.IPAddress((a << 24) | (b << 16) | (c << 8) | d, 4), leading_zero


def _parse_v6(text: str) -> netaddr.IPAddress | None:
    if ":" not in text or "%" in text:
        return None
    try:
        return netaddr.IPAddress(text, 6)
    except (netaddr.AddrFormatError, ValueError):
        return None


def parse_ip(text: str) -> tuple[netaddr.IPAddress | None, tuple[str, ...]]:
    """Parse an IP address the way Kubernetes' sloppy parser does; (None, ()) when invalid."""
    v4 = _parse_v4_sloppy(text)
    if v4 is not None:
        addr, leading_zero = v4
        warnings = ("IPv4 address has leading zeros, read as decimal",) if leading_zero else ()
        return addr, warnings
    addr6 = _parse_v6(text)
    if addr6 is None:
        return None, ()
    if addr6.is_ipv4_mapped():
        return addr6.ipv4(), ("IPv4-mapped IPv6 address is read as IPv4",)
    return addr6, ()


def parse_cidr(text: str) -> ParsedCidr | None:
    """Parse ``a.b.c.d/n`` or ``x::/n``; None when the API server would reject it."""
    if text.count("/") != 1:
        return None
    addr_text, _, prefix_text = text.partition("/")
    if not _DIGITS.fullmatch(prefix_text):
        return None
    significant = prefix_text.lstrip("0") or "0"
    prefix = int(significant) if len(significant) < 9 else _GO_BIG
    warnings: tuple[str, ...] = ()
    mapped = False
    v4 = _parse_v4_sloppy(addr_text)
    if v4 is not None:
        addr, leading_zero = v4
        if leading_zero:
            warnings = ("IPv4 address has leading zeros, read as decimal",)
        if prefix > 32:
            return None
        network = netaddr.IPNetwork((int(addr), prefix), 4)  # (address, prefix): no re-parse
    else:
        addr6 = _parse_v6(addr_text)
        if addr6 is None or prefix > 128:
            return None
        network = netaddr.IPNetwork((int(addr6), prefix), 6)
        if network.cidr.ip.is_ipv4_mapped():
            # Go's IPNet works on the IPv4 address and the low 32 bits of the mask.
            network = netaddr.IPNetwork(f"{network.ip.ipv4()}/{prefix - 96}")
            warnings = ("IPv4-mapped IPv6 CIDR is read as IPv4",)
            mapped = True
    if len(prefix_text) > 1 and prefix_text[0] == "0":
        warnings = (*warnings, "prefix length has leading zeros, read as decimal")
    masked = network.cidr
    if masked.ip != network.ip:
        warnings = (
            *warnings,
            f"has host bits set; it is read as {masked} (the API server accepts it)",
        )
    return ParsedCidr(masked, prefix, warnings, mapped)
