"""A small interpreter for the nft rulesets npc emits, for fast property tests.

It understands exactly the subset npc writes (one table; verdict maps; sets of addresses,
protocols and ports with or without intervals; chains of set lookups, ``meta l4proto``,
``<proto> dport`` ranges, ``th dport`` ranges and lists, several matches in one rule (the
ClusterNetworkPolicy tier chains), ``return``/``accept``/``drop``/``jump``/``goto``, verdict
maps that jump or go to a chain) and refuses any other line, so a
change to the emitted shape cannot go unnoticed here. The kernel tests load the same text
into the real kernel; this interpreter lets hundreds of random clusters be checked in seconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import netaddr

PROTOCOLS = {"tcp": "TCP", "udp": "UDP", "sctp": "SCTP"}
_RULE = re.compile(
    r"^(?P<match>.*?)\s*(?P<verdict>accept|drop|return|jump \S+|goto \S+)?(?: comment \"[^\"]*\")?$"
)


_FIELD = r"(?:ip6? [sd]addr|meta l4proto|th dport)"
#: The matches npc writes, tried in order at the start of what is left of a rule.
_MATCHES = (
    re.compile(r"(?P<ct>ct state [a-z,]+)"),
    re.compile(rf"(?P<lookup>(?P<expr>{_FIELD}(?: \. {_FIELD})*) @(?P<set>\S+))"),
    re.compile(r"(?P<dport>(?P<dproto>tcp|udp|sctp) dport (?P<lo>\d+)(?:-(?P<hi>\d+))?)(?!\S)"),
    re.compile(r"(?P<thport>th dport (?P<ports>\{[^}]*\}|\d+(?:-\d+)?))"),
    re.compile(r"(?P<proto>meta l4proto (?P<proto_name>\w+))(?! \.)"),
)


@dataclass(frozen=True, slots=True)
class Packet:
    """The first packet of a flow: ``protocol`` is TCP/UDP/SCTP or ICMP (no port)."""

    src: netaddr.IPAddress
    dst: netaddr.IPAddress
    protocol: str
    port: int = 0


def _component(text: str) -> tuple[str, object]:
    if text in PROTOCOLS:
        return ("proto", PROTOCOLS[text])
    if re.fullmatch(r"\d+(-\d+)?", text):
        lo, _, hi = text.partition("-")
        return ("port", (int(lo), int(hi or lo)))
    return ("addr", netaddr.IPNetwork(text))


@dataclass(slots=True)
class Ruleset:
    sets: dict[str, list[list[tuple[str, object]]]] = field(default_factory=dict)
    maps: dict[str, dict[netaddr.IPAddress, tuple[str, str]]] = field(default_factory=dict)
    chains: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Ruleset:
        rs = cls()
        block: tuple[str, str] | None = None
        in_elements = False
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith(("table ", "delete table ")) or line in ("}",):
                if line == "}" and in_elements:
                    in_elements = False
                elif line == "}":
                    block = None
                continue
            head = re.fullmatch(r"(set|map|chain) (\S+) \{", line)
            if head:
                block = (head[1], head[2])
                if head[1] == "chain":
                    rs.chains[head[2]] = []
                elif head[1] == "set":
                    rs.sets[head[2]] = []
                else:
                    rs.maps[head[2]] = {}
                continue
            assert block is not None, f"line outside a block: {line!r}"
            kind, name = block
            if line == "elements = {":
                in_elements = True
                continue
            if in_elements:
                element = line.rstrip(",")
                if kind == "map":
                    entry = re.fullmatch(r"(\S+) : (jump|goto) (\S+)", element)
                    assert entry is not None, f"unknown map element {element!r}"
                    rs.maps[name][netaddr.IPAddress(entry[1])] = (entry[2], entry[3])
                else:
                    rs.sets[name].append([_component(c) for c in element.split(" . ")])
                continue
            if kind in ("set", "map"):
                assert line.startswith(("type ", "flags interval")), line
                continue
            if line.startswith(("comment ", "type filter hook forward")):
                continue
            rs.chains[name].append(line)
        return rs

    # -- evaluation ------------------------------------------------------------------------

    def _field(self, part: str, packet: Packet) -> object:
        if part in ("ip saddr", "ip6 saddr"):
            return packet.src
        if part in ("ip daddr", "ip6 daddr"):
            return packet.dst
        if part == "meta l4proto":
            return packet.protocol
        if part == "th dport":
            return packet.port
        raise AssertionError(f"unknown field {part!r}")

    def _family_ok(self, expr: str, packet: Packet) -> bool:
        if expr.startswith("ip6 "):
            return packet.src.version == 6
        if expr.startswith("ip "):
            return packet.src.version == 4
        return True

    def _in_set(self, name: str, values: list[object]) -> bool:
        for element in self.sets[name]:
            if all(_matches(c, v) for c, v in zip(element, values, strict=True)):
                return True
        return False

    def _condition(self, match: str, packet: Packet) -> bool:
        """Every match of a rule (ANDed), each of a form npc writes."""
        rest = match.strip()
        while rest:
            found = None
            for pattern in _MATCHES:
                found = pattern.match(rest)
                if found:
                    break
            assert found is not None, f"unknown match {rest!r} in {match!r}"
            if not self._one(found, packet):
                return False
            rest = rest[found.end() :].strip()
        return True

    def _one(self, m: re.Match[str], packet: Packet) -> bool:
        kind = m.lastgroup
        if kind == "ct":
            return False  # every evaluated packet opens a new, valid flow
        if kind == "proto":
            return packet.protocol == PROTOCOLS[m["proto_name"]]
        if kind == "dport":
            lo, hi = int(m["lo"]), int(m["hi"] or m["lo"])
            return packet.protocol == PROTOCOLS[m["dproto"]] and lo <= packet.port <= hi
        if kind == "thport":
            if packet.protocol not in PROTOCOLS.values():
                return False
            items = m["ports"].strip("{} ").split(",")
            for item in items:
                lo, _, hi = item.strip().partition("-")
                if int(lo) <= packet.port <= int(hi or lo):
                    return True
            return False
        expr, name = m["expr"], m["set"]
        if not self._family_ok(expr, packet):
            return False
        if "th dport" in expr and packet.protocol not in PROTOCOLS.values():
            return False
        values = [self._field(p.strip(), packet) for p in expr.split(" . ")]
        return self._in_set(name, values)

    def _run(self, chain: str, packet: Packet) -> str | None:
        """``accept``/``drop``, or None when the chain falls through or returns (to the
        chain that jumped; a ``goto`` hands the rest of the evaluation to its target)."""
        for line in self.chains[chain]:
            vmap = re.fullmatch(r"(ip6? [sd]addr) vmap @(\S+)", line)
            if vmap:
                if not self._family_ok(vmap[1], packet):
                    continue
                entry = self.maps[vmap[2]].get(self._field(vmap[1], packet))  # type: ignore[call-overload]
                if entry is not None:
                    how, target = entry
                    verdict = self._run(target, packet)
                    if verdict is not None or how == "goto":
                        return verdict
                continue
            parsed = _RULE.match(line)
            assert parsed is not None and parsed["verdict"], f"unknown rule {line!r}"
            if not self._condition(parsed["match"], packet):
                continue
            verdict = parsed["verdict"]
            if verdict == "return":
                return None
            if verdict.startswith("goto "):
                return self._run(verdict[5:], packet)
            if verdict.startswith("jump "):
                result = self._run(verdict[5:], packet)
                if result is not None:
                    return result
                continue
            return verdict
        return None

    def allows(self, packet: Packet) -> bool:
        """The forward chain's verdict for the first packet of a new flow."""
        return self._run("forward", packet) != "drop"


def _matches(component: tuple[str, object], value: object) -> bool:
    kind, want = component
    if kind == "addr":
        assert isinstance(want, netaddr.IPNetwork) and isinstance(value, netaddr.IPAddress)
        return value.version == want.version and value in want
    if kind == "port":
        assert isinstance(want, tuple) and isinstance(value, int)
        return bool(want[0] <= value <= want[1])
    return want == value
