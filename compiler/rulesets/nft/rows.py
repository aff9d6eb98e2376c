""":class:`NftRows`: the judge of :mod:`.evaluate` for one source towards many destinations.

The destination address is a set of candidates (a bitset) that each match narrows and each
verdict map splits; everything else about the packet is concrete. It applies the rules of
evaluation of :mod:`.evaluate` (whose docstring cites nft(8) for each) and agrees with
:meth:`~npc.rulesets.nft.evaluate.NftJudge.decide` flow by flow
(``tests/test_verify_scale.py`` compares them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from npc import ir
from npc.flows import Endpoint
from npc.resolve import bit_indices
from npc.rulesets.base import (
    IANA_PROTOCOLS,
    Candidates,
    Packet,
    address_signatures,
    span_holders,
)
from npc.rulesets.nft.lookup import FAMILIES, Index, value_of
from npc.rulesets.nft.model import (
    Chain,
    Element,
    Field,
    Kind,
    Match,
    Nop,
    Rule,
    Table,
    Verdict,
    VerdictMap,
)

__all__ = ["NftRows"]

#: The family under which :meth:`NftRows._blind` collects spans of destination ports (the
#: only field besides the addresses that a probe's packet varies in; see ``value_of``).
_PORTS = 0

#: A verdict map's source signature (version, address -> number) and the elements whose
#: chains test a span holding the source (version, address -> element indices).
_Fan = tuple[Callable[[int, int], int], Callable[[int, int], tuple[int, ...]]]


def _lone_map(rule: Rule) -> VerdictMap | None:
    """The rule's verdict map when that is its only statement (besides no-ops)."""
    statements = [s for s in rule.statements if not isinstance(s, Nop)]
    if len(statements) == 1 and isinstance(statements[0], VerdictMap):
        return statements[0]
    return None


@dataclass
class _Base:
    """Per verdict map, family, protocol and port signature: what each element does for a
    source in none of its chain's spans (``kinds``; ``unknown``: not yet seen), as outcome
    -> candidates."""

    unknown: set[int]
    kinds: dict[int, str] = field(default_factory=dict)
    effects: dict[str, int] = field(default_factory=dict)


class _Judge(Protocol):
    """What :class:`NftRows` reads of :class:`~npc.rulesets.nft.evaluate.NftJudge`."""

    _base: tuple[tuple[Table, Chain], ...]
    _chains: dict[tuple[int, str], Chain]

    def _index(self, table: Table, statement: Match | VerdictMap) -> Index: ...

    def _lookup(
        self, table: Table, statement: Match | VerdictMap, packet: Packet
    ) -> Element | None: ...


#: What one rule or chain does to a set of candidate destinations: (verdict kind, bits).
_Parts = list[tuple[str, int]]


class NftRows:
    """:meth:`NftJudge.decide_packet` for one source towards many destinations: the rules of
    the module docstring applied to a bitset of candidate destination addresses. A lookup
    whose key holds the destination address is computed once per (set, position, the rest
    of the key) as the candidates each element holds, first match first as
    :class:`Index` finds it; every other match is decided on the concrete packet."""

    def __init__(self, judge: _Judge, dsts: Sequence[Endpoint]) -> None:
        self.judge = judge
        self.candidates = Candidates(dsts)
        self._lookups: dict[tuple[int, int, tuple[int | None, ...]], list[tuple[Element, int]]] = {}
        self._memo: dict[tuple[int, int, int, int, int], str] = {}
        self._effects: dict[tuple[int, int, int, int, int], dict[str, int]] = {}
        #: id of a verdict map's hits -> its :class:`_Fan` (None: a chain reads the destination)
        self._fans: dict[int, _Fan | None] = {}
        self._bases: dict[tuple[int, int, int, int], _Base] = {}
        #: id of a rule -> its verdict map when that is all it does, else None
        self._lone: dict[int, tuple[VerdictMap | None]] = {}
        self._cached: set[int] = set()  # ids of the lookups kept in _lookups
        self._signatures: dict[int, tuple[Callable[[int, int], int] | None]] = {}
        #: id of a lookup's hits -> (those hits, candidate -> index of its hit)
        self._owners: dict[int, tuple[list[tuple[Element, int]], dict[int, int]]] = {}

    def allowed(self, src: Endpoint, protocol: ir.Protocol, port: int) -> int:
        """Bit k set when the ruleset accepts ``src`` to the k-th destination."""
        version = int(src.address.version)
        packet = Packet(src.address, src.address, IANA_PROTOCOLS[protocol.value], port)
        alive = self.candidates.of_family(version)
        for table, chain in self.judge._base:
            if not alive:
                break
            if version not in FAMILIES[table.family]:
                continue
            assert chain.hook is not None
            for kind, bits in self._run(table, chain, alive, packet):
                if kind in ("drop", "reject") or (kind == "return" and chain.hook.policy == "drop"):
                    alive &= ~bits
        return alive

    def _run(self, table: Table, chain: Chain, live: int, packet: Packet) -> _Parts:
        out: _Parts = []
        for rule in chain.rules:
            if not live:
                return out
            found = self._lone.get(id(rule))
            if found is None:
                found = self._lone[id(rule)] = (_lone_map(rule),)
            lone = found[0]
            if lone is None:
                parts = self._rule(table, rule, live, packet)
            else:  # as _rule would, but a map into blind chains is applied at once
                hits = self._hits(table, lone, live, packet)
                effects = self._dispatch(table, hits, live, packet) if hits else None
                if effects is not None:
                    matched = 0
                    for kind, every in effects.items():
                        bits = every & live
                        if bits and kind != "continue":
                            matched |= bits
                            out.append((kind, bits))
                    live &= ~matched
                    continue
                parts = [] if hits is None else self._split(hits, live)
            for verdict, bits in parts:
                if verdict.kind == "continue":
                    continue
                live &= ~bits
                if verdict.kind in ("accept", "drop", "reject", "return"):
                    out.append((verdict.kind, bits))
                    continue
                target = self.judge._chains[id(table), verdict.target]
                for kind, inner in self._enter(table, target, bits, packet):
                    if kind != "return":
                        out.append((kind, inner))
                    elif verdict.kind == "goto":
                        out.append(("return", inner))
                    else:
                        live |= inner  # back from the jump: on with the next rule
        if live:
            out.append(("return", live))
        return out

    def _dispatch(
        self, table: Table, hits: list[tuple[Element, int]], live: int, packet: Packet
    ) -> dict[str, int] | None:
        """For a rule that is only a verdict map of the destination (``hits``: its look-up)
        into chains blind to it (``ip daddr vmap @ingress``), met by many candidates: what
        it does to every candidate at once, by outcome (``continue``: on with the next
        rule), remembered per source signature over all those chains. None for every other
        map."""
        if id(hits) not in self._cached or live.bit_count() * 4 < len(hits):
            return None
        fan = self._fans.get(id(hits))
        if fan is None:
            fan = self._fans[id(hits)] = self._fan(table, hits)
        if fan is None:
            return None
        version = packet.version
        source = int(packet.src)
        # the chains' port spans are in the signature too: probes no chain tells apart share
        ports = fan[0](_PORTS, packet.port) if packet.has_ports else -1
        key = (id(hits), version, fan[0](version, source), packet.protocol, ports)
        effects = self._effects.get(key)
        if effects is None:
            held = fan[1](version, source)
            base = (id(hits), version, packet.protocol, ports)
            effects = self._effects[key] = self._fan_out(table, hits, held, packet, base)
        return effects

    def _fan(self, table: Table, hits: list[tuple[Element, int]]) -> _Fan | None:
        """For a verdict map's elements: the signature of a source over the spans every
        chain they jump to tests, and which elements' chains test spans holding it; None
        when one of those chains reads the destination address."""
        spans: list[tuple[int, int, int]] = []
        held: list[tuple[int, int, int, int]] = []
        for e, (element, _) in enumerate(hits):
            verdict = element.verdict
            assert verdict is not None
            if verdict.kind in ("jump", "goto"):
                inner = self.judge._chains[id(table), verdict.target]
                mine: list[tuple[int, int, int]] = []
                if not self._blind(table, inner, mine, set()):
                    return None
                spans.extend(mine)
                held.extend((*span, e) for span in mine if span[0] != _PORTS)
        return address_signatures(spans), span_holders(held)

    def _fan_out(
        self,
        table: Table,
        hits: list[tuple[Element, int]],
        touched: tuple[int, ...],
        packet: Packet,
        key: tuple[int, int, int, int],
    ) -> dict[str, int]:
        """What the map's elements do to their candidates, by outcome, for ``packet``'s
        source. An element whose chain tests no span holding the source (not in
        ``touched``) does what it does for every such source: that outcome is kept per
        ``key`` (family, protocol, port signature), found once from the first source
        outside its spans, so a source costs only the chains that single it out."""
        base = self._bases.get(key)
        if base is None:
            base = self._bases[key] = _Base(set(range(len(hits))))
        if base.unknown:
            for e in sorted(base.unknown.difference(touched)):
                kind = base.kinds[e] = self._outcome(table, hits[e], packet)
                base.effects[kind] = base.effects.get(kind, 0) | hits[e][1]
                base.unknown.discard(e)
        effects = dict(base.effects)
        for e in touched:
            bits = hits[e][1]
            old = base.kinds.get(e)
            if old is not None:
                effects[old] &= ~bits
            kind = self._outcome(table, hits[e], packet)
            effects[kind] = effects.get(kind, 0) | bits
        return effects

    def _outcome(self, table: Table, hit: tuple[Element, int], packet: Packet) -> str:
        """What a verdict map's element does to its candidates (``continue``: a jump that
        came back)."""
        verdict = hit[0].verdict
        assert verdict is not None
        if verdict.kind not in ("jump", "goto"):
            return verdict.kind
        inner = self.judge._chains[id(table), verdict.target]
        kind = self._enter(table, inner, hit[1], packet)[0][0]
        if kind == "return":
            return "return" if verdict.kind == "goto" else "continue"
        return kind

    def _enter(self, table: Table, chain: Chain, live: int, packet: Packet) -> _Parts:
        """:meth:`_run` of a jumped-to chain; one whose rules (and the chains they reach)
        never look at the destination address treats all of ``live`` alike, so its outcome
        is remembered per source signature (the elements its source lookups hold) and port
        signature (those its port lookups hold: probes it does not tell apart share one)."""
        signature = self._signature(table, chain)
        if signature is None:
            return self._run(table, chain, live, packet)
        version = packet.version
        key = (
            id(chain),
            version,
            signature(version, int(packet.src)),
            packet.protocol,
            signature(_PORTS, packet.port) if packet.has_ports else -1,  # a port read is None
        )
        kind = self._memo.get(key)
        if kind is None:
            parts = self._run(table, chain, live, packet)
            assert len(parts) == 1, "a chain blind to the destination split it"
            kind = self._memo[key] = parts[0][0]
        return [(kind, live)]

    def _signature(self, table: Table, chain: Chain) -> Callable[[int, int], int] | None:
        found = self._signatures.get(id(chain))
        if found is None:
            spans: list[tuple[int, int, int]] = []
            blind = self._blind(table, chain, spans, set())
            found = self._signatures[id(chain)] = ((address_signatures(spans) if blind else None),)
        return found[0]

    def _blind(
        self, table: Table, chain: Chain, spans: list[tuple[int, int, int]], seen: set[int]
    ) -> bool:
        """Whether nothing ``chain`` runs reads the destination address; collects the
        spans its source address lookups test, and (as family ``_PORTS``) those its port
        lookups test."""
        if id(chain) in seen:
            return True
        seen.add(id(chain))
        for rule in chain.rules:
            for statement in rule.statements:
                targets: list[Verdict] = []
                if isinstance(statement, Verdict):
                    targets.append(statement)
                elif isinstance(statement, Match | VerdictMap):
                    index = self.judge._index(table, statement)
                    elements = (*index.exact.values(), *index.ranged)
                    for i, f in enumerate(statement.fields):
                        if f.kind in (Kind.IPV4_ADDR, Kind.IPV6_ADDR):
                            if not f.name.endswith("saddr"):
                                return False
                            v = 4 if f.kind is Kind.IPV4_ADDR else 6
                            spans.extend((v, *e.key[i]) for e in elements)
                        elif f.kind is Kind.INET_SERVICE:
                            spans.extend((_PORTS, *e.key[i]) for e in elements)
                    if isinstance(statement, VerdictMap):
                        targets.extend(e.verdict for e in elements if e.verdict is not None)
                for verdict in targets:
                    if verdict.kind in ("jump", "goto"):
                        inner = self.judge._chains[id(table), verdict.target]
                        if not self._blind(table, inner, spans, seen):
                            return False
        return True

    def _rule(
        self, table: Table, rule: Rule, live: int, packet: Packet
    ) -> list[tuple[Verdict, int]]:
        for statement in rule.statements:
            if isinstance(statement, Nop):
                continue
            if isinstance(statement, Verdict):
                return [(statement, live)]
            hits = self._hits(table, statement, live, packet)
            if hits is None:
                return []  # a dependency failed: no operator makes it match (rule 6)
            if isinstance(statement, Match):
                found = 0
                for _, bits in hits:
                    found |= bits
                live &= ~found if statement.negate else found
                if not live:
                    return []
                continue
            return self._split(hits, live)
        return []

    def _split(self, hits: list[tuple[Element, int]], live: int) -> list[tuple[Verdict, int]]:
        """A verdict map's verdicts for ``live``: by element when few, else by candidate
        (a map of one verdict per pod class fans out widely; ``live`` is often a few)."""
        parts: list[tuple[Verdict, int]] = []
        if live.bit_count() * 4 >= len(hits):
            for element, bits in hits:
                if bits & live:
                    assert element.verdict is not None
                    parts.append((element.verdict, bits & live))
            return parts
        owner = self._owners.get(id(hits))
        if owner is None or owner[0] is not hits:
            owner = (hits, {k: e for e, (_, bits) in enumerate(hits) for k in bit_indices(bits)})
            self._owners[id(hits)] = owner
        chosen: dict[int, int] = {}
        for k in bit_indices(live):
            e = owner[1].get(k)
            if e is not None:
                chosen[e] = chosen.get(e, 0) | 1 << k
        for e in sorted(chosen):
            verdict = hits[e][0].verdict
            assert verdict is not None
            parts.append((verdict, chosen[e]))
        return parts

    def _hits(
        self, table: Table, statement: Match | VerdictMap, live: int, packet: Packet
    ) -> list[tuple[Element, int]] | None:
        """The candidates the lookup finds, per element found (one per verdict of a map),
        over every candidate or over ``live``; None when a dependency of its expressions
        fails (the packet's family or protocol)."""
        fields = statement.fields
        key: list[int | None] = []
        position = -1
        for i, f in enumerate(fields):
            if f.family is not None and f.family != packet.version:
                return None
            if f.protocol is not None and f.protocol != packet.protocol:
                return None
            if f.kind in (Kind.IPV4_ADDR, Kind.IPV6_ADDR) and not f.name.endswith("saddr"):
                if position >= 0:
                    return self._each(table, statement, live, packet)
                position = i
                key.append(None)
            else:
                key.append(value_of(f, packet))
        index = self.judge._index(table, statement)
        if position < 0:
            element = index.find(tuple(key), fields)
            return [] if element is None else [(element, live)]
        if any(v is None for i, v in enumerate(key) if i != position):
            return self._each(table, statement, live, packet)
        cache = (id(index), position, tuple(key))
        found = self._lookups.get(cache)
        if found is None:
            found = self._lookups[cache] = self._first_matches(index, position, key, fields)
            self._cached.add(id(found))
        return found

    def _first_matches(
        self, index: Index, position: int, key: list[int | None], fields: tuple[Field, ...]
    ) -> list[tuple[Element, int]]:
        """Per verdict (one entry for a set), the candidates whose address completes
        ``key`` at ``position`` to a key of an element, each given to the first element
        :meth:`Index.find` would find (the single values, then the ranges in order)."""
        version = 4 if fields[position].kind is Kind.IPV4_ADDR else 6
        claimed = 0
        found: dict[tuple[str, str] | None, tuple[Element, int]] = {}
        for element in (*index.exact.values(), *index.ranged):
            if not all(
                value is None or lo <= value <= hi
                for (lo, hi), value in zip(element.key, key, strict=True)
            ):
                continue
            lo, hi = element.key[position]
            bits = self.candidates.span(version, lo, hi) & ~claimed
            if bits:
                claimed |= bits
                verdict = element.verdict
                which = None if verdict is None else (verdict.kind, verdict.target)
                previous = found.get(which)
                found[which] = (previous[0], previous[1] | bits) if previous else (element, bits)
        return list(found.values())

    def _each(
        self, table: Table, statement: Match | VerdictMap, live: int, packet: Packet
    ) -> list[tuple[Element, int]]:
        """The lookup decided destination by destination, as :meth:`NftJudge._lookup`
        does (a key with two destination addresses, or a port the packet lacks: the judge
        then refuses as it does for one flow)."""
        found: list[tuple[Element, int]] = []
        dsts = self.candidates.dsts
        for k in bit_indices(live):
            one = Packet(packet.src, dsts[k].address, packet.protocol, packet.port)
            element = self.judge._lookup(table, statement, one)
            if element is not None:
                found.append((element, 1 << k))
        return found
