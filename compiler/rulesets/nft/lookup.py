"""Looking a packet up in an nft set, map or anonymous set, for :mod:`.evaluate` and
:mod:`.rows` (rules 6 and 7 of :mod:`.evaluate`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from npc.errors import Code, Diagnostic, Severity, UnsupportedError
from npc.rulesets.base import Packet
from npc.rulesets.nft.model import Element, Field, Kind
from npc.rulesets.nft.values import CT_STATES

__all__ = ["FAMILIES", "Index", "value_of"]

#: ``ct state new``: the state of every packet the judge decides (rule 7).
NEW = CT_STATES["new"]
#: The address families each table family sees (rule 1).
FAMILIES: Mapping[str, tuple[int, ...]] = MappingProxyType(
    {"ip": (4,), "ip6": (6,), "inet": (4, 6)}
)


class Index:
    """A set's elements for lookups: those that are single values by their key (nft refuses
    overlapping elements, so a key matches at most one), the ranged ones in a list."""

    def __init__(self, elements: tuple[Element, ...]) -> None:
        self.exact: dict[tuple[int, ...], Element] = {}
        self.ranged: list[Element] = []
        for e in elements:
            if all(lo == hi for lo, hi in e.key):
                self.exact.setdefault(tuple(lo for lo, _ in e.key), e)
            else:
                self.ranged.append(e)

    def find(self, key: tuple[int | None, ...], fields: tuple[Field, ...]) -> Element | None:
        if None not in key:
            found = self.exact.get(key)  # type: ignore[arg-type]
            if found is not None:
                return found
            return find_element(self.ranged, key, fields)
        return find_element((*self.exact.values(), *self.ranged), key, fields)


def value_of(f: Field, packet: Packet) -> int | None:
    if f.kind in (Kind.IPV4_ADDR, Kind.IPV6_ADDR):
        return int(packet.src if f.name.endswith("saddr") else packet.dst)
    if f.kind is Kind.INET_PROTO:
        return packet.protocol
    if f.kind is Kind.INET_SERVICE:
        return packet.port if packet.has_ports else None
    if f.kind is Kind.CT_STATE:
        return NEW
    if f.kind is Kind.NF_PROTO:
        return 2 if packet.version == 4 else 10
    return 0x0800 if packet.version == 4 else 0x86DD


def find_element(
    elements: Iterable[Element], key: tuple[int | None, ...], fields: tuple[Field, ...]
) -> Element | None:
    for element in elements:
        for (lo, hi), value, f in zip(element.key, key, fields, strict=True):
            if value is None:
                raise UnsupportedError(
                    [
                        Diagnostic(
                            Code.UNSUPPORTED,
                            Severity.ERROR,
                            f"nft: `{f.name}` of a packet without ports depends on header "
                            "bytes the judge does not know",
                            location=f.location,
                        )
                    ]
                )
            if not lo <= value <= hi:
                break
        else:
            return element
    return None
