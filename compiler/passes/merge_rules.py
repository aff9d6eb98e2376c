"""Passes: merge rules of one direction that share their peers, or their ports.

Rules are ORed, and within a rule peers AND ports, so

* ``(P, ports A)`` or ``(P, ports B)`` is ``(P, A ∪ B)`` (:func:`merge_same_peers`);
* ``(peers A, Q)`` or ``(peers B, Q)`` is ``(A ∪ B, Q)`` (:func:`merge_same_ports`).

"Any port" and "any peer" absorb everything they are united with. The merged rule takes the
position and origin of the first rule of its group, so output order stays stable.
"""

from __future__ import annotations

from npc import ir
from npc.passes.base import map_rules

__all__ = ["merge_same_peers", "merge_same_ports", "union_peers", "union_ports"]


def union_ports(a: ir.Ports, b: ir.Ports) -> ir.Ports:
    if isinstance(a, ir.AnyPort) or isinstance(b, ir.AnyPort):
        return ir.ANY_PORT
    return a.union(b)


def union_peers(a: ir.Peers, b: ir.Peers) -> ir.Peers:
    if isinstance(a, ir.AnyPeer) or isinstance(b, ir.AnyPeer):
        return ir.ANY_PEER
    return a + tuple(p for p in b if p not in a)


def _peers_key(peers: ir.Peers) -> object:
    # Peers are ORed: their order does not matter for grouping.
    return peers if isinstance(peers, ir.AnyPeer) else frozenset(peers)


def merge_same_peers(policies: ir.PolicySet) -> ir.PolicySet:
    def rules_fn(rules: tuple[ir.Rule, ...]) -> tuple[ir.Rule, ...]:
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


def merge_same_ports(policies: ir.PolicySet) -> ir.PolicySet:
    def rules_fn(rules: tuple[ir.Rule, ...]) -> tuple[ir.Rule, ...]:
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
