"""The optimizer: an ordered tuple of pure passes ``PolicySet -> PolicySet``.

Each pass lives in a module of its own, with its own fixtures, and is checked semantically:
for many random flows, "allowed before == allowed after" under :mod:`npc.analysis.semantics`.
"""

from __future__ import annotations

from collections.abc import Callable

from npc.ir import PolicySet
from npc.passes.dedupe_peers import dedupe_peers
from npc.passes.drop_subsumed import drop_subsumed
from npc.passes.merge_address_peers import merge_address_peers
from npc.passes.merge_same_peers import merge_same_peers
from npc.passes.merge_same_ports import merge_same_ports

__all__ = ["PASSES", "Pass", "optimize"]

Pass = Callable[[PolicySet], PolicySet]

#: The passes, in the order they run. Peers are cleaned first, so that rules group well;
#: rules with equal peers merge their ports before rules with equal ports merge their peers
#: (the second grouping sees the first's results); subsumption runs last, on the fewest rules.
PASSES: tuple[Pass, ...] = (
    dedupe_peers,
    merge_address_peers,
    merge_same_peers,
    merge_same_ports,
    drop_subsumed,
)


#: Rounds of the whole pipeline at most; one merge can enable another, and a fixpoint is
#: usually reached in two.
MAX_ROUNDS = 4


def optimize(policies: PolicySet, passes: tuple[Pass, ...] = PASSES) -> PolicySet:
    """Run the passes in order, repeating the pipeline until nothing changes."""
    for _ in range(MAX_ROUNDS):
        before = policies
        for p in passes:
            policies = p(policies)
        if policies == before:
            break
    return policies
