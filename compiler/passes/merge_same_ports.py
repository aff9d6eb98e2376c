"""Pass: merge rules of one direction that have the same ports, uniting their peers.

Rules are ORed, and within a rule peers AND ports, so ``(peers A, Q)`` or ``(peers B, Q)`` is
``(A ∪ B, Q)``. "Any peer" absorbs every peer list it is united with. The merged rule takes
the position and origin of the first rule of its group, so output order stays stable.
"""

from __future__ import annotations

from npc import ir
from npc.passes.base import map_rules

__all__ = ["merge_same_ports", "union_peers"]


def union_peers(a: ir.Peers, b: ir.Peers) -> ir.Peers:
    """Every peer of either, each once, in first-seen order ("any peer" absorbs the other)."""
    if isinstance(a, ir.AnyPeer) or isinstance(b, ir.AnyPeer):
        return ir.ANY_PEER
    return a + tuple(p for p in b if p not in a)


def merge_same_ports(policies: ir.PolicySet) -> ir.PolicySet:
    """One rule per port set, with the union of the peers: rules that differ only in whom
    they admit become one, so a backend emits one port match for all of them."""

    def rules_fn(rules: tuple[ir.Rule, ...]) -> tuple[ir.Rule, ...]:
        # Nothing to merge (the usual case) is found by comparisons that stop at the first
        # difference, without hashing every port set.
        if not any(r.ports == s.ports for i, r in enumerate(rules) for s in rules[i + 1 :]):
            return rules
        groups: dict[ir.Ports, ir.Rule] = {}
        for r in rules:
            prev = groups.get(r.ports)
            groups[r.ports] = (
                r
                if prev is None
                else ir.Rule(union_peers(prev.peers, r.peers), prev.ports, prev.origin)
            )
        return tuple(groups.values())

    return map_rules(policies, rules_fn)
