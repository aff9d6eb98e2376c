"""Pass: merge rules of one direction that have the same peers, uniting their ports.

Rules are ORed, and within a rule peers AND ports, so ``(P, ports A)`` or ``(P, ports B)`` is
``(P, A ∪ B)``. "Any port" absorbs every port set it is united with. The merged rule takes the
position and origin of the first rule of its group, so output order stays stable.
"""

from __future__ import annotations

from npc import ir
from npc.passes.base import map_rules

__all__ = ["merge_same_peers", "union_ports"]


def union_ports(a: ir.Ports, b: ir.Ports) -> ir.Ports:
    """Every port either allows ("any port" absorbs the other)."""
    if isinstance(a, ir.AnyPort) or isinstance(b, ir.AnyPort):
        return ir.ANY_PORT
    return a.union(b)


def _peers_key(peers: ir.Peers) -> object:
    # Peers are ORed: their order does not matter for grouping.
    return peers if isinstance(peers, ir.AnyPeer) else frozenset(peers)


def _same_peers(a: ir.Peers, b: ir.Peers) -> bool:
    if a == b:
        return True
    if isinstance(a, ir.AnyPeer) or isinstance(b, ir.AnyPeer):
        return False
    return all(p in b for p in a) and all(p in a for p in b)


def _any_same_peers(rules: tuple[ir.Rule, ...]) -> bool:
    """Whether two rules have the same peers: a few comparisons (which stop at the first
    difference) instead of hashing every selector of every rule, when there is nothing to
    merge (the usual case)."""
    return any(_same_peers(r.peers, s.peers) for i, r in enumerate(rules) for s in rules[i + 1 :])


def merge_same_peers(policies: ir.PolicySet) -> ir.PolicySet:
    """One rule per set of peers (in any order), with the union of their ports: fewer rules
    for a backend to emit, and ``merge_same_ports`` then sees whole port sets."""

    def rules_fn(rules: tuple[ir.Rule, ...]) -> tuple[ir.Rule, ...]:
        if len(rules) < 2 or not _any_same_peers(rules):
            return rules
        groups: dict[object, ir.Rule] = {}
        for r in rules:
            key = _peers_key(r.peers)
            prev = groups.get(key)
            groups[key] = (
                r
                if prev is None
                else ir.Rule(prev.peers, union_ports(prev.ports, r.ports), prev.origin)
            )
        return tuple(groups.values())

    return map_rules(policies, rules_fn)
