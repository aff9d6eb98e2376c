"""Pass: fold all ipBlock peers of a rule into one address set.

Peers are ORed, so ``ipBlock A`` or ``ipBlock B`` is the single set A ∪ B (netaddr does the
set algebra, excepts included). Backends then emit one set per rule instead of one per block
(seed 004's four /32 "tunl0" blocks become one peer). A lone block keeps its written form.
"""

from __future__ import annotations

from npc import ir
from npc.passes.base import map_rules

__all__ = ["merge_address_peers"]


def _rule(rule: ir.Rule) -> ir.Rule:
    if not isinstance(rule.peers, tuple):
        return rule
    blocks = [p for p in rule.peers if isinstance(p, ir.AddressPeer)]
    if len(blocks) < 2:
        return rule
    union = blocks[0].addresses
    for b in blocks[1:]:
        union = union.union(b.addresses)
    merged = ir.AddressPeer(union)
    peers: list[ir.Peer] = []
    for p in rule.peers:
        if isinstance(p, ir.AddressPeer):
            if merged not in peers:
                peers.append(merged)
        else:
            peers.append(p)
    return ir.Rule(tuple(peers), rule.ports, rule.origin)


def merge_address_peers(policies: ir.PolicySet) -> ir.PolicySet:
    """Each rule with its ipBlocks folded into one address set, where the first block stood,
    so backends emit one set per rule."""
    return map_rules(policies, lambda rules: tuple(_rule(r) for r in rules))
