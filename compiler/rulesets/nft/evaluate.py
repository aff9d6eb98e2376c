"""Decide a new connection's first packet the way the kernel's nftables does on forwarding.

The rules of evaluation, and where they are documented:

1. Every base chain registered on the forward hook runs, in increasing priority order, in
   every table whose family sees the packet: ``ip`` tables IPv4, ``ip6`` tables IPv6,
   ``inet`` tables both (nft(8), "ADDRESS FAMILIES" and "CHAINS": lower priority values run
   first; the nftables wiki, "Configuring chains", base chain priority). Chains of equal
   priority run in the order they were created (the order only changes which rule is named,
   never the verdict, as rules 2 and 3 show).
2. ``accept`` ends the evaluation of the current base chain only: the packet goes on to the
   next base chain on the same hook; ``drop`` (and ``reject``) is final at once (nftables
   wiki, "Configuring chains": an accept in one base chain is not final when another base
   chain with a later priority shares the hook; a drop takes effect immediately).
3. A base chain that falls off its end, or whose rule says ``return``, applies its policy
   (nft(8), "CHAINS", ``policy``; default ``accept``).
4. Rules run in order; a rule's statements run in order and the rule stops at the first match
   that fails (nft(8), "RULES"). ``counter``, ``log`` and comments change nothing.
5. ``jump C`` runs C and, when C returns or falls off its end, continues with the next rule;
   ``goto C`` runs C and, when C returns, returns from the chain that said ``goto``;
   ``return`` goes back to the calling chain; ``continue`` goes on with the next rule (nft(8),
   "VERDICT STATEMENT").
6. A match compares the (concatenated) value of its expressions with a value, an anonymous
   set or a named set; ``!=`` negates it. An expression that implies a family or a protocol
   (``ip saddr``: IPv4; ``tcp dport``: TCP) makes the match fail on other packets whatever the
   operator, because nft inserts that dependency before it (nft(8), "PAYLOAD EXPRESSION").
   A verdict map (``vmap``) runs the verdict of the element the value falls in; when it falls
   in none, the rule does not match (nft(8), "MAPS").
7. The first packet of a new connection has conntrack state ``new``: ``ct state new``
   matches, ``established``, ``related``, ``invalid`` and ``untracked`` do not (nft(8),
   "CT EXPRESSION").

``th dport`` of a packet without ports (ICMP) reads other bytes of its header (nft(8), "RAW
PAYLOAD EXPRESSION": ``th`` is the transport header, whatever it holds); the judge cannot know
them and refuses to decide where the verdict depends on them.

:class:`NftRows` decides one source towards many destinations at once by the same rules: the
destination address is a set of candidates (a bitset) that each match narrows and each
verdict map splits, everything else about the packet is concrete. It agrees with
:meth:`NftJudge.decide` flow by flow (``tests/test_verify_scale.py`` compares them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from npc import ir
from npc.errors import Code, Diagnostic, Severity, UnsupportedError
from npc.flows import Endpoint, Flow
from npc.resolve import bit_indices
from npc.rulesets.base import (
    IANA_PROTOCOLS,
    Candidates,
    Decision,
    Packet,
    address_signatures,
    where,
)
from npc.rulesets.nft.model import (
    Chain,
    Element,
    Field,
    Kind,
    Match,
    Nop,
    Rule,
    Ruleset,
    Table,
    Verdict,
    VerdictMap,
)
from npc.rulesets.nft.values import CT_STATES

__all__ = ["NftJudge", "NftRows"]

_NEW = CT_STATES["new"]
_FAMILIES = {"ip": (4,), "ip6": (6,), "inet": (4, 6)}


class _Index:
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
            return _find(self.ranged, key, fields)
        return _find((*self.exact.values(), *self.ranged), key, fields)


@dataclass(frozen=True, slots=True)
class _Outcome:
    kind: str  # accept, drop, reject, return (also: fell off the end)
    rule: Rule | None = None


class NftJudge:
    """The verdict of an nftables ruleset on forwarded traffic (see the module docstring)."""

    def __init__(self, ruleset: Ruleset) -> None:
        self.ruleset = ruleset
        base: list[tuple[int, int, Table, Chain]] = []
        for table in ruleset.tables:
            for chain in table.chains:
                if chain.hook is not None and chain.hook.hook == "forward":
                    base.append((chain.hook.priority, len(base), table, chain))
        self._base = tuple((t, c) for _, _, t, c in sorted(base, key=lambda b: b[:2]))
        self._chains = {(id(t), c.name): c for t in ruleset.tables for c in t.chains}
        self._sets = {(id(t), s.name): _Index(s.elements) for t in ruleset.tables for s in t.sets}
        self._anonymous: dict[int, _Index] = {}

    def decide(self, flow: Flow) -> Decision:
        """The verdict on the first packet of ``flow``."""
        return self.decide_packet(Packet.of(flow))

    def rows(self, dsts: Sequence[Endpoint]) -> NftRows:
        """Verdicts towards ``dsts``, many at once (:class:`~npc.rulesets.base.Batched`)."""
        return NftRows(self, dsts)

    def decide_packet(self, packet: Packet) -> Decision:
        """The verdict on ``packet``, the first of a new connection (any protocol)."""
        accepted: Rule | None = None
        notes = []
        for table, chain in self._base:
            if packet.version not in _FAMILIES[table.family]:
                continue
            assert chain.hook is not None
            outcome = self._run(table, chain, packet)
            name = f"{table} chain {chain.name}"
            if outcome.kind in ("drop", "reject"):
                assert outcome.rule is not None
                return Decision(False, where(outcome.rule.location), f"{name}: {outcome.kind}")
            if outcome.kind == "accept":
                accepted = outcome.rule
                notes.append(f"{name}: accept")
            elif chain.hook.policy == "drop":
                return Decision(False, None, f"{name}: policy drop")
            else:
                notes.append(f"{name}: policy accept")
        if not notes:
            return Decision(True, None, "no base chain on the forward hook sees this packet")
        return Decision(True, where(accepted.location) if accepted else None, "; ".join(notes))

    # -- chains ----------------------------------------------------------------------------

    def _run(self, table: Table, chain: Chain, packet: Packet) -> _Outcome:
        for rule in chain.rules:
            verdict = self._rule(table, rule, packet)
            if verdict is None or verdict.kind == "continue":
                continue
            if verdict.kind in ("accept", "drop", "reject", "return"):
                return _Outcome(verdict.kind, rule)
            target = self._chains[id(table), verdict.target]  # the reader checked every target
            inner = self._run(table, target, packet)
            if inner.kind in ("accept", "drop", "reject"):
                return inner
            if verdict.kind == "goto":
                return _Outcome("return", inner.rule)
        return _Outcome("return")

    def _rule(self, table: Table, rule: Rule, packet: Packet) -> Verdict | None:
        """The verdict the rule reaches, or None when a match fails or it has none."""
        for statement in rule.statements:
            if isinstance(statement, Nop):
                continue
            if isinstance(statement, Verdict):
                return statement
            if isinstance(statement, Match):
                if not self._match(table, statement, packet):
                    return None
                continue
            element = self._lookup(table, statement, packet)
            if element is None:
                return None
            assert element.verdict is not None
            return element.verdict
        return None

    # -- matches -----------------------------------------------------------------------------

    def _index(self, table: Table, statement: Match | VerdictMap) -> _Index:
        if statement.set_name is not None:
            return self._sets[id(table), statement.set_name]  # the reader checked every name
        found = self._anonymous.get(id(statement))
        if found is None:
            found = self._anonymous[id(statement)] = _Index(statement.elements)
        return found

    def _lookup(
        self, table: Table, statement: Match | VerdictMap, packet: Packet
    ) -> Element | None:
        key = self._key(statement.fields, packet)
        if key is None:
            return None
        return self._index(table, statement).find(key, statement.fields)

    def _match(self, table: Table, statement: Match, packet: Packet) -> bool:
        key = self._key(statement.fields, packet)
        if key is None:
            return False  # a dependency failed: no operator makes it match (rule 6)
        found = self._index(table, statement).find(key, statement.fields) is not None
        return found != statement.negate

    @staticmethod
    def _key(fields: Iterable[Field], packet: Packet) -> tuple[int | None, ...] | None:
        key: list[int | None] = []
        for f in fields:
            if f.family is not None and f.family != packet.version:
                return None
            if f.protocol is not None and f.protocol != packet.protocol:
                return None
            key.append(_value(f, packet))
        return tuple(key)


def _value(f: Field, packet: Packet) -> int | None:
    if f.kind in (Kind.IPV4_ADDR, Kind.IPV6_ADDR):
        return int(packet.src if f.name.endswith("saddr") else packet.dst)
    if f.kind is Kind.INET_PROTO:
        return packet.protocol
    if f.kind is Kind.INET_SERVICE:
        return packet.port if packet.has_ports else None
    if f.kind is Kind.CT_STATE:
        return _NEW
    if f.kind is Kind.NF_PROTO:
        return 2 if packet.version == 4 else 10
    return 0x0800 if packet.version == 4 else 0x86DD


def _find(
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


#: What one rule or chain does to a set of candidate destinations: (verdict kind, bits).
_Parts = list[tuple[str, int]]


class NftRows:
    """:meth:`NftJudge.decide_packet` for one source towards many destinations: the rules of
    the module docstring applied to a bitset of candidate destination addresses. A lookup
    whose key holds the destination address is computed once per (set, position, the rest
    of the key) as the candidates each element holds, first match first as
    :class:`_Index` finds it; every other match is decided on the concrete packet."""

    def __init__(self, judge: NftJudge, dsts: Sequence[Endpoint]) -> None:
        self.judge = judge
        self.candidates = Candidates(dsts)
        self._lookups: dict[tuple[int, int, tuple[int | None, ...]], list[tuple[Element, int]]] = {}
        self._memo: dict[tuple[int, int, int, int, int], str] = {}
        self._effects: dict[tuple[int, int, int, int, int], dict[str, int]] = {}
        self._map_signatures: dict[int, tuple[Callable[[int, int], int] | None]] = {}
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
            if version not in _FAMILIES[table.family]:
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
            effects = self._dispatch(table, rule, live, packet)
            if effects is not None:
                matched = 0
                for kind, every in effects.items():
                    bits = every & live
                    if bits and kind != "continue":
                        matched |= bits
                        out.append((kind, bits))
                live &= ~matched
                continue
            for verdict, bits in self._rule(table, rule, live, packet):
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
        self, table: Table, rule: Rule, live: int, packet: Packet
    ) -> dict[str, int] | None:
        """For a rule that is only a verdict map of the destination into chains blind to
        it (``ip daddr vmap @ingress``), met by many candidates: what it does to every
        candidate at once, by outcome (``continue``: on with the next rule), remembered
        per source signature over all those chains. None for every other rule."""
        statements = [s for s in rule.statements if not isinstance(s, Nop)]
        if len(statements) != 1 or not isinstance(statements[0], VerdictMap):
            return None
        statement = statements[0]
        hits = self._hits(table, statement, live, packet)
        if not hits or id(hits) not in self._cached or live.bit_count() * 4 < len(hits):
            return None
        signature = self._map_signatures.get(id(hits))
        if signature is None:
            spans: list[tuple[int, int, int]] = []
            blind = True
            for element, _ in hits:
                verdict = element.verdict
                assert verdict is not None
                if verdict.kind in ("jump", "goto"):
                    inner = self.judge._chains[id(table), verdict.target]
                    blind = blind and self._blind(table, inner, spans, set())
            signature = self._map_signatures[id(hits)] = (
                (address_signatures(spans) if blind else None),
            )
        if signature[0] is None:
            return None
        version = packet.version
        key = (
            id(hits),
            version,
            signature[0](version, int(packet.src)),
            packet.protocol,
            packet.port,
        )
        effects = self._effects.get(key)
        if effects is None:
            effects = self._effects[key] = {}
            for element, bits in hits:
                verdict = element.verdict
                assert verdict is not None
                kind = verdict.kind
                if kind in ("jump", "goto"):
                    inner = self.judge._chains[id(table), verdict.target]
                    kind = self._enter(table, inner, bits, packet)[0][0]
                    if kind == "return":
                        kind = "return" if verdict.kind == "goto" else "continue"
                effects[kind] = effects.get(kind, 0) | bits
        return effects

    def _enter(self, table: Table, chain: Chain, live: int, packet: Packet) -> _Parts:
        """:meth:`_run` of a jumped-to chain; one whose rules (and the chains they reach)
        never look at the destination address treats all of ``live`` alike, so its outcome
        is remembered per source signature (the elements its source lookups hold)."""
        signature = self._signature(table, chain)
        if signature is None:
            return self._run(table, chain, live, packet)
        version = packet.version
        key = (
            id(chain),
            version,
            signature(version, int(packet.src)),
            packet.protocol,
            packet.port,
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
        spans its source address lookups test."""
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
                key.append(_value(f, packet))
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
        self, index: _Index, position: int, key: list[int | None], fields: tuple[Field, ...]
    ) -> list[tuple[Element, int]]:
        """Per verdict (one entry for a set), the candidates whose address completes
        ``key`` at ``position`` to a key of an element, each given to the first element
        :meth:`_Index.find` would find (the single values, then the ranges in order)."""
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
