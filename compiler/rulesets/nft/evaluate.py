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

:class:`~npc.rulesets.nft.rows.NftRows` decides one source towards many destinations at once
by the same rules: the destination address is a set of candidates (a bitset) that each match
narrows and each verdict map splits, everything else about the packet is concrete. It agrees
with :meth:`NftJudge.decide` flow by flow (``tests/test_verify_scale.py`` compares them).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from npc.flows import Endpoint, Flow
from npc.rulesets.base import (
    Decision,
    Packet,
    where,
)
from npc.rulesets.nft.lookup import FAMILIES, Index, value_of
from npc.rulesets.nft.model import (
    Chain,
    Element,
    Field,
    Match,
    Nop,
    Rule,
    Ruleset,
    Table,
    Verdict,
    VerdictMap,
)
from npc.rulesets.nft.rows import NftRows

__all__ = ["NftJudge"]


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
        self._sets = {(id(t), s.name): Index(s.elements) for t in ruleset.tables for s in t.sets}
        self._anonymous: dict[int, Index] = {}

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
            if packet.version not in FAMILIES[table.family]:
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

    def _index(self, table: Table, statement: Match | VerdictMap) -> Index:
        if statement.set_name is not None:
            return self._sets[id(table), statement.set_name]  # the reader checked every name
        found = self._anonymous.get(id(statement))
        if found is None:
            found = self._anonymous[id(statement)] = Index(statement.elements)
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
            key.append(value_of(f, packet))
        return tuple(key)
