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
"""

from __future__ import annotations

from dataclasses import dataclass

from npc.flows import Flow
from npc.rulesets.base import Decision, Packet, where
from npc.rulesets.iptables.model import Chain, IpSet, Match, Rule, SetEntry, Table
from npc.rulesets.iptables.read import Ruleset

__all__ = ["IptablesJudge"]


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
        self._sets = {s.name: s for s in ruleset.sets}

    def decide(self, flow: Flow) -> Decision:
        """The verdict on the first packet of ``flow``."""
        return self.decide_packet(Packet.of(flow))

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
            inner_chain = table.chain(target.name)
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
