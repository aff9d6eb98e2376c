"""Pass: drop duplicate peers within a rule, and peers that can match nothing.

Peers of a rule are ORed, so a repeated peer adds nothing. An ipBlock whose excepts cover its
whole cidr matches no address; a rule left with no peer at all admits nothing and goes. (Its
direction stays isolated: an empty rule tuple still isolates.)
"""

from __future__ import annotations

from npc import ir
from npc.passes.base import map_rules

__all__ = ["dedupe_peers"]


def _rule(rule: ir.Rule) -> ir.Rule | None:
    if not isinstance(rule.peers, tuple):
        return rule
    if len(rule.peers) == 1 and not isinstance(rule.peers[0], ir.AddressPeer):
        return rule  # the usual case: one pod peer, nothing to drop
    seen: list[ir.Peer] = []
    for peer in rule.peers:
        if isinstance(peer, ir.AddressPeer) and not peer.addresses:
            continue
        if peer not in seen:
            seen.append(peer)
    if not seen:
        return None
    if len(seen) == len(rule.peers):
        return rule
    return ir.Rule(tuple(seen), rule.ports, rule.origin)


def dedupe_peers(policies: ir.PolicySet) -> ir.PolicySet:
    """Each rule without repeated peers or peers that match no address; rules left with no
    peer go (they admit nothing). Cleaning first lets the merging passes group rules."""
    return map_rules(policies, lambda rules: tuple(r for r in map(_rule, rules) if r is not None))
