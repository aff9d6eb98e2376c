"""Pass: drop rules that another rule of the same direction already covers.

Rule R is dropped when some other rule S admits every (peer, port) R admits: S's peers cover
R's (``any peer`` covers all; a pod peer is covered by an equal peer; an address set by a
superset) and S's ports cover R's (``any port`` covers all; per protocol, every range of R lies
within S's ranges and every named port of R is named by S too, or S allows all ports of that
protocol). The check is conservative: when in doubt, the rule stays. Of two equal rules, the
later one goes.
"""

from __future__ import annotations

from npc import ir
from npc.passes.base import map_rules

__all__ = ["drop_subsumed", "peers_cover", "ports_cover"]


def _peer_covered(peer: ir.Peer, by: tuple[ir.Peer, ...]) -> bool:
    if peer in by:
        return True
    if isinstance(peer, ir.AddressPeer):
        return any(
            isinstance(o, ir.AddressPeer) and peer.addresses.issubset(o.addresses) for o in by
        )
    return False


def peers_cover(outer: ir.Peers, inner: ir.Peers) -> bool:
    """Whether every peer of ``inner`` is matched by some peer of ``outer`` (conservative)."""
    if isinstance(outer, ir.AnyPeer):
        return True
    if isinstance(inner, ir.AnyPeer):
        return False
    return all(_peer_covered(p, outer) for p in inner)


def _ranges_cover(outer: tuple[ir.PortRange, ...], inner: ir.PortRange) -> bool:
    return any(o.start <= inner.start and inner.end <= o.end for o in outer)


def ports_cover(outer: ir.Ports, inner: ir.Ports) -> bool:
    """Whether ``outer`` allows every (protocol, port or port name) ``inner`` allows."""
    if isinstance(outer, ir.AnyPort):
        return True
    if isinstance(inner, ir.AnyPort):
        return False
    for entry in inner.entries:
        have = outer.get(entry.protocol)
        if have is None:
            return False
        if have.all_ports:
            continue
        if not all(_ranges_cover(have.ranges, r) for r in entry.ranges):
            return False
        if not set(entry.named) <= set(have.named):
            return False
    return True


def _covers(outer: ir.Rule, inner: ir.Rule) -> bool:
    return peers_cover(outer.peers, inner.peers) and ports_cover(outer.ports, inner.ports)


def drop_subsumed(policies: ir.PolicySet) -> ir.PolicySet:
    """Each direction without the rules another of its rules covers (of two equal rules, the
    first stays): what is left is what a backend has to emit."""

    def rules_fn(rules: tuple[ir.Rule, ...]) -> tuple[ir.Rule, ...]:
        if len(rules) < 2:
            return rules
        kept: list[ir.Rule] = []
        for i, r in enumerate(rules):
            covered = any(
                _covers(s, r) and (not _covers(r, s) or j < i)
                for j, s in enumerate(rules)
                if j != i
            )
            if not covered:
                kept.append(r)
        return tuple(kept)

    return map_rules(policies, rules_fn)
