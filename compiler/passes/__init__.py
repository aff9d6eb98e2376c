"""The optimizer: an ordered tuple of pure passes ``PolicySet -> PolicySet``.

Each pass lives in a module of its own, with its own fixtures, and is checked semantically:
for many random flows, "allowed before == allowed after" under :mod:`npc.semantics`.
"""

from __future__ import annotations

from collections.abc import Callable

from npc.ir import PolicySet

__all__ = ["PASSES", "Pass", "optimize"]

Pass = Callable[[PolicySet], PolicySet]

#: The passes, in the order they run.
PASSES: tuple[Pass, ...] = ()


def optimize(policies: PolicySet, passes: tuple[Pass, ...] = PASSES) -> PolicySet:
    """Run every pass in order."""
    for p in passes:
        policies = p(policies)
    return policies
