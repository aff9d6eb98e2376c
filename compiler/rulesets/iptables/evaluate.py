"""Decide a new connection's first packet the way iptables' filter table does on forwarding.

The rules of evaluation, and where they are documented:

1. A forwarded packet traverses the filter table's built-in ``FORWARD`` chain (iptables(8),
   "TABLES": filter's FORWARD is "for packets being routed through the box"). IPv4 packets
   meet the iptables table, IPv6 packets the ip6tables one; with no table for a family,
   nothing filters it.
2. Rules are tried in order; a rule matches when every one of its matches does (iptables(8),
   "DESCRIPTION": "if the packet does not match, the next rule in the chain is examined").
3. ``ACCEPT`` and ``DROP`` are final; ``REJECT`` drops (iptables-extensions(8), REJECT);
   ``RETURN`` goes back to the calling chain, and in a built-in chain applies its policy;
   falling off the end of a user chain returns, of a built-in chain applies the policy
   (iptables(8), "TARGETS").
4. ``-j CHAIN`` runs CHAIN then continues after the rule; ``-g CHAIN`` runs CHAIN and, when
   it returns, returns from the chain that said ``-g`` (iptables(8), ``--goto``).
5. ``LOG`` and ``NFLOG`` are non-terminating: the packet goes on to the next rule
   (iptables-extensions(8), LOG: "a non-terminating target"). ``MARK`` changes the packet's
   mark and goes on (iptables-extensions(8), MARK: ``--set-xmark value/mask`` zeroes the mask
   bits and XORs value; ``--set-mark value/mask`` zeroes the mask bits and ORs value); the
   mark is per-packet state carried through the whole traversal and tested by
   ``-m mark --mark value[/mask]`` (the mark ANDed with the mask, compared with the value).
   The mark starts at 0: the reader refuses mangle rules that could set it earlier.
6. ``-m conntrack --ctstate`` / ``-m state --state``: the first packet of a new connection is
   ``NEW``, never ``ESTABLISHED``, ``RELATED``, ``INVALID``, ``UNTRACKED``, ``SNAT``, ``DNAT``
   (iptables-extensions(8), conntrack).
7. ``-m set --match-set NAME src|dst|src,dst``: the packet's address (and destination port,
   for ``hash:*,port`` sets) is looked up in the set; ``nomatch`` entries exclude what they
   cover, the most specific entry deciding (ipset(8), ``nomatch``: hash:net types test the
   most specific prefix first).
8. ``-m addrtype --src-type LOCAL`` / ``--dst-type LOCAL``: a forwarded packet has neither
   source nor destination on this host (those go through OUTPUT and INPUT), so it never
   matches. ``-m physdev --physdev-is-bridged`` matches when the judge is asked about bridged
   traffic (``bridged=True``: pods of one node on a Linux bridge), not for routed traffic.

:class:`IptablesRows` decides one source towards many destinations at once by the same rules:
the destination address is a set of candidates (a bitset) that ``-d`` and ``-m set ... dst``
narrow, split further where a ``MARK`` rule gives part of them another mark; everything else
about the packet is concrete. It agrees with :meth:`IptablesJudge.decide` flow by flow
(``tests/test_verify_scale.py`` compares them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from npc import ir
from npc.flows import Endpoint, Flow
from npc.rulesets.base import (
    IANA_PROTOCOLS,
    Candidates,
    Decision,
    Packet,
    address_signatures,
    where,
)
from npc.rulesets.iptables.model import Chain, IpSet, Match, Rule, SetEntry, Table
from npc.rulesets.iptables.read import Ruleset

__all__ = ["IptablesJudge", "IptablesRows"]


@dataclass(slots=True)
class _State:
    packet: Packet
    mark: int = 0


@dataclass(frozen=True, slots=True)
class _Outcome:
    kind: str  # ACCEPT, DROP, REJECT, RETURN (also: fell off the end)
    rule: Rule | None = None


class IptablesJudge:
    """The verdict of an iptables filter table on forwarded traffic (module docstring)."""

    def __init__(self, ruleset: Ruleset, *, bridged: bool = False) -> None:
        self.ruleset = ruleset
        self.bridged = bridged
        self._tables = {t.version: t for t in ruleset.tables}
        self._chains: dict[tuple[int, str], Chain] = {}
        for t in ruleset.tables:
            for c in t.chains:  # the first of a name, as Table.chain finds it
                self._chains.setdefault((t.version, c.name), c)
        self._sets = {s.name: s for s in ruleset.sets}

    def decide(self, flow: Flow) -> Decision:
        """The verdict on the first packet of ``flow``."""
        return self.decide_packet(Packet.of(flow))

    def rows(self, dsts: Sequence[Endpoint]) -> IptablesRows:
        """Verdicts towards ``dsts``, many at once (:class:`~npc.rulesets.base.Batched`)."""
        return IptablesRows(self, dsts)

    def decide_packet(self, packet: Packet) -> Decision:
        """The verdict on ``packet``, the first of a new connection (any protocol)."""
        table = self._tables.get(packet.version)
        if table is None:
            return Decision(True, None, f"no IPv{packet.version} filter table: nothing filters")
        forward = table.chain("FORWARD")
        if forward is None:
            return Decision(True, None, "the filter table has no FORWARD chain")
        outcome = self._run(table, forward, _State(packet), 0)
        if outcome.kind in ("ACCEPT", "DROP", "REJECT"):
            assert outcome.rule is not None
            return Decision(outcome.kind == "ACCEPT", where(outcome.rule.location), outcome.kind)
        policy = forward.policy or "ACCEPT"
        note = f"chain FORWARD policy {policy}" + (f" ({table.assumed})" if table.assumed else "")
        return Decision(policy == "ACCEPT", None, note)

    def _run(self, table: Table, chain: Chain, state: _State, depth: int) -> _Outcome:
        for rule in chain.rules:
            if not all(self._match(m, state) for m in rule.matches):
                continue
            target = rule.target
            if target is None or target.name in ("LOG", "NFLOG"):
                continue
            if target.name == "MARK":
                state.mark = _mark(state.mark, target.op, target.value, target.mask)
                continue
            if target.name in ("ACCEPT", "DROP", "REJECT", "RETURN"):
                return _Outcome(target.name, rule)
            inner_chain = self._chains.get((table.version, target.name))
            assert inner_chain is not None  # the reader checked every target
            inner = self._run(table, inner_chain, state, depth + 1)
            if inner.kind in ("ACCEPT", "DROP", "REJECT"):
                return inner
            if target.goto:
                return _Outcome("RETURN", inner.rule)
        return _Outcome("RETURN")

    def _match(self, match: Match, state: _State) -> bool:
        return self._test(match, state) != match.negate

    def _test(self, match: Match, state: _State) -> bool:
        packet = state.packet
        kind = match.kind
        if kind in ("src", "dst"):
            value = int(packet.src if kind == "src" else packet.dst)
            return any(lo <= value <= hi for lo, hi in match.spans)
        if kind == "proto":
            return any(lo <= packet.protocol <= hi for lo, hi in match.spans)
        if kind == "dport":
            return packet.has_ports and any(lo <= packet.port <= hi for lo, hi in match.spans)
        if kind == "state":
            return "NEW" in match.names
        if kind == "mark":
            return state.mark & match.mask == match.value
        if kind == "set":
            return _in_set(self._sets[match.names[0]], match.names[1:], packet)
        if kind == "bridged":
            return self.bridged
        # a rate limit sits only on rules that change no verdict (the reader checks);
        # ``local`` never matches forwarded packets (rule 8)
        return kind == "limit"


def _mark(mark: int, op: str, value: int, mask: int) -> int:
    if op == "xset":
        return (mark & ~mask & 0xFFFFFFFF) ^ value
    if op == "set":
        return (mark & ~mask & 0xFFFFFFFF) | value
    if op == "or":
        return mark | value
    if op == "and":
        return mark & value
    return mark ^ value


def _in_set(ipset: IpSet, dims: tuple[str, ...], packet: Packet) -> bool:
    if ipset.version != packet.version:
        return False  # a set of the other family never matches
    address = int(packet.src if dims[0] == "src" else packet.dst)
    best: SetEntry | None = None
    for entry in ipset.entries:
        lo, hi = entry.address
        if not lo <= address <= hi:
            continue
        if entry.ports is not None:
            if entry.protocol != packet.protocol or not packet.has_ports:
                continue
            if not entry.ports[0] <= packet.port <= entry.ports[1]:
                continue
        if best is None or entry.prefix > best.prefix:
            best = entry
    return best is not None and not best.nomatch


_BUILT_IN = frozenset(("ACCEPT", "DROP", "REJECT", "RETURN", "LOG", "NFLOG", "MARK"))

#: Candidate destinations by the mark their packets carry: mark -> bits.
_Streams = dict[int, int]


class IptablesRows:
    """:meth:`IptablesJudge.decide_packet` for one source towards many destinations: the
    rules of the module docstring applied to bitsets of candidate destinations, one per
    packet mark. ``-d`` spans and ``-m set`` lookups of the destination are computed once
    (per set, protocol and port) as the candidates they hold."""

    def __init__(self, judge: IptablesJudge, dsts: Sequence[Endpoint]) -> None:
        self.judge = judge
        self.candidates = Candidates(dsts)
        self._masks: dict[tuple[object, ...], int] = {}
        self._memo: dict[tuple[int, ...], tuple[str, int]] = {}
        self._signatures: dict[int, tuple[Callable[[int, int], int] | None]] = {}
        self._closures: dict[int, Callable[[int, int], int]] = {}
        self._whole: dict[tuple[int, ...], list[tuple[str, int, int]]] = {}

    def allowed(self, src: Endpoint, protocol: ir.Protocol, port: int) -> int:
        """Bit k set when the filter table accepts ``src`` to the k-th destination."""
        version = int(src.address.version)
        family = self.candidates.of_family(version)
        table = self.judge._tables.get(version)
        forward = None if table is None else table.chain("FORWARD")
        if table is None or forward is None:
            return family
        packet = Packet(src.address, src.address, IANA_PROTOCOLS[protocol.value], port)
        accepted = 0
        for kind, bits, _ in self._run(table, forward, {0: family}, packet):
            if kind == "ACCEPT" or (kind == "RETURN" and (forward.policy or "ACCEPT") == "ACCEPT"):
                accepted |= bits
        return accepted

    def _run(
        self, table: Table, chain: Chain, streams: _Streams, packet: Packet
    ) -> list[tuple[str, int, int]]:
        """(outcome, bits, mark) for the candidates entering ``chain`` with their marks."""
        out: list[tuple[str, int, int]] = []
        for rule in chain.rules:
            if not streams:
                return out
            target = rule.target
            following: _Streams = {}
            for mark, live in streams.items():
                hit = self._matching(rule, live, mark, packet)
                rest = live & ~hit
                if rest:
                    following[mark] = following.get(mark, 0) | rest
                if not hit:
                    continue
                if target is None or target.name in ("LOG", "NFLOG"):
                    following[mark] = following.get(mark, 0) | hit
                elif target.name == "MARK":
                    new = _mark(mark, target.op, target.value, target.mask)
                    following[new] = following.get(new, 0) | hit
                elif target.name in ("ACCEPT", "DROP", "REJECT", "RETURN"):
                    out.append((target.name, hit, mark))
                else:
                    inner_chain = self.judge._chains.get((table.version, target.name))
                    assert inner_chain is not None  # the reader checked every target
                    for kind, bits, after in self._enter(table, inner_chain, hit, mark, packet):
                        if kind != "RETURN":
                            out.append((kind, bits, after))
                        elif target.goto:
                            out.append(("RETURN", bits, after))
                        else:
                            following[after] = following.get(after, 0) | bits
            streams = following
        out.extend(("RETURN", bits, mark) for mark, bits in streams.items())
        return out

    def _enter(
        self, table: Table, chain: Chain, live: int, mark: int, packet: Packet
    ) -> list[tuple[str, int, int]]:
        """:meth:`_run` of a jumped-to chain; one whose rules (and the chains they reach)
        never test the destination treats all of ``live`` alike, so its outcome is
        remembered per source signature (the spans and entries its source tests hold)."""
        signature = self._signature(table, chain)
        version = packet.version
        if signature is None:
            every = self.candidates.of_family(version)
            if live.bit_count() * 4 < every.bit_count():
                return self._run(table, chain, {mark: live}, packet)
            # many candidates: the chain run once for all of them (each candidate's path is
            # its own), remembered per source signature over everything the chain reaches
            whole = self._closure(table, chain)
            key = (id(chain), version, whole(version, int(packet.src)), packet.protocol,
                   packet.port, mark)
            parts = self._whole.get(key)
            if parts is None:
                parts = self._whole[key] = self._run(table, chain, {mark: every}, packet)
            return [(kind, bits & live, after) for kind, bits, after in parts if bits & live]
        key = (
            id(chain),
            version,
            signature(version, int(packet.src)),
            packet.protocol,
            packet.port,
            mark,
        )
        found = self._memo.get(key)
        if found is None:
            parts = self._run(table, chain, {mark: live}, packet)
            assert len(parts) == 1, "a chain blind to the destination split it"
            found = self._memo[key] = (parts[0][0], parts[0][2])
        return [(found[0], live, found[1])]

    def _signature(self, table: Table, chain: Chain) -> Callable[[int, int], int] | None:
        found = self._signatures.get(id(chain))
        if found is None:
            spans: list[tuple[int, int, int]] = []
            blind = self._blind(table, chain, spans, set())
            found = self._signatures[id(chain)] = (address_signatures(spans) if blind else None,)
        return found[0]

    def _closure(self, table: Table, chain: Chain) -> Callable[[int, int], int]:
        found = self._closures.get(id(chain))
        if found is None:
            spans: list[tuple[int, int, int]] = []
            self._blind(table, chain, spans, set(), whole=True)
            found = self._closures[id(chain)] = address_signatures(spans)
        return found

    def _blind(
        self,
        table: Table,
        chain: Chain,
        spans: list[tuple[int, int, int]],
        seen: set[str],
        *,
        whole: bool = False,
    ) -> bool:
        """Whether nothing ``chain`` runs tests the destination address; collects the
        spans and set entries its source tests hold (``whole``: of every chain it reaches,
        whatever they test)."""
        if chain.name in seen:
            return True
        seen.add(chain.name)
        for rule in chain.rules:
            for match in rule.matches:
                if match.kind == "dst" or (match.kind == "set" and match.names[1] == "dst"):
                    if not whole:
                        return False
                elif match.kind == "src":
                    spans.extend((table.version, lo, hi) for lo, hi in match.spans)
                elif match.kind == "set":
                    ipset = self.judge._sets[match.names[0]]
                    spans.extend((ipset.version, *e.address) for e in ipset.entries)
            target = rule.target
            if target is not None and target.name not in _BUILT_IN:
                inner = self.judge._chains.get((table.version, target.name))
                assert inner is not None
                if not self._blind(table, inner, spans, seen, whole=whole) and not whole:
                    return False
        return True

    def _matching(self, rule: Rule, live: int, mark: int, packet: Packet) -> int:
        for match in rule.matches:
            if match.kind == "dst" or (match.kind == "set" and match.names[1] == "dst"):
                bits = self._destinations(match, packet)
                live &= ~bits if match.negate else bits
            elif match.kind == "mark":
                if (mark & match.mask == match.value) == match.negate:
                    return 0
            elif not self.judge._match(match, _State(packet, mark)):
                return 0
            if not live:
                return 0
        return live

    def _destinations(self, match: Match, packet: Packet) -> int:
        """The candidates whose address (with the packet's port) the match's test holds."""
        key: tuple[object, ...] = (id(match), packet.protocol, packet.port)
        found = self._masks.get(key)
        if found is not None:
            return found
        version = packet.version
        found = 0
        if match.kind == "dst":
            for lo, hi in match.spans:
                found |= self.candidates.span(version, lo, hi)
        else:
            ipset = self.judge._sets[match.names[0]]
            if ipset.version == version:
                # the most specific entry decides (ties: the first), nomatch excludes
                ranked = sorted(
                    enumerate(ipset.entries), key=lambda item: (-item[1].prefix, item[0])
                )
                claimed = 0
                for _, entry in ranked:
                    if entry.ports is not None and (
                        entry.protocol != packet.protocol
                        or not packet.has_ports
                        or not entry.ports[0] <= packet.port <= entry.ports[1]
                    ):
                        continue
                    bits = self.candidates.span(version, *entry.address) & ~claimed
                    claimed |= bits
                    if not entry.nomatch:
                        found |= bits
        self._masks[key] = found
        return found
