"""Helpers shared by the passes: rebuilding policies direction by direction."""

from __future__ import annotations

from collections.abc import Callable

from npc import ir

__all__ = ["map_rules"]

RulesFn = Callable[[tuple[ir.Rule, ...]], tuple[ir.Rule, ...]]


def map_rules(policies: ir.PolicySet, fn: RulesFn) -> ir.PolicySet:
    """Apply ``fn`` to the rules of every isolated direction of every policy.

    Directions that are not isolated (``None``) stay ``None``; an isolated direction stays
    isolated even when ``fn`` returns no rules. When no policy changes, the input itself comes
    back (no re-sorting, and the optimizer's fixpoint test is then an identity check)."""
    out = []
    changed = False
    for p in policies:
        ingress = fn(p.ingress) if p.ingress is not None else None
        egress = fn(p.egress) if p.egress is not None else None
        if ingress == p.ingress and egress == p.egress:
            out.append(p)
        else:
            changed = True
            out.append(ir.Policy(p.namespace, p.name, p.pod_selector, ingress, egress, p.origin))
    return ir.PolicySet(tuple(out)) if changed else policies
