"""Explaining the ClusterNetworkPolicy tiers' part in one side of a flow: which tier, policy,
rule and action decided it, and what a ``Pass`` handed on (rules T1-T4 of
:mod:`npc.analysis.tier_semantics`, rule 9 of :mod:`npc.analysis.semantics`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from npc import ir, tiers
from npc.analysis.semantics import DirectionVerdict
from npc.analysis.tier_semantics import TierDecision
from npc.errors import Location

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = ["TierSide", "describe_decision", "tiered_side", "with_tiers"]

_Side = TypeVar("_Side", bound="DataclassInstance")

_NEXT = {tiers.Tier.ADMIN: "NetworkPolicy", tiers.Tier.BASELINE: "the default (allow)"}


def describe_decision(
    decision: TierDecision, locate: Callable[[ir.Origin | None], Location | None]
) -> str:
    """``Admin tier: ClusterNetworkPolicy p (priority 5) egress[1] (name): Deny (file:l:c)``."""
    ref = decision.match
    name = f" ({ref.rule.name})" if ref.rule.name else ""
    location = locate(ref.rule.origin)
    where = f" ({location})" if location is not None else ""
    return (
        f"{decision.tier} tier: ClusterNetworkPolicy {ref.policy.name} (priority "
        f"{ref.policy.priority}) {ref.direction}[{ref.index}]{name}: {ref.rule.action}{where}"
    )


@dataclasses.dataclass(frozen=True, slots=True)
class TierSide:
    """What the tiers make of one side: its verdict and note, whether NetworkPolicy's
    rule checks still belong to it (not when the Admin tier decided), and one line per tier
    decision."""

    allowed: bool
    note: str
    network_policy: bool
    lines: tuple[str, ...]


def tiered_side(
    note: str,
    verdict: DirectionVerdict,
    locate: Callable[[ir.Origin | None], Location | None],
) -> TierSide:
    """The tiers' part in one side whose NetworkPolicy explanation has ``note``; the verdict
    is the oracle's ``verdict.allowed``."""
    lines: list[str] = []
    decider = verdict.decided_by
    for decision in (verdict.admin, verdict.baseline):
        if decision is None:
            continue
        text = describe_decision(decision, locate)
        if decision.action is tiers.Action.PASS:
            lines.append(f"{text}: passed on to {_NEXT[decision.tier]}")
        else:
            lines.append(f"decided by {text}")
    verb = "accepts" if verdict.allowed else "denies"
    if decider == "Admin":
        return TierSide(verdict.allowed, f"the Admin tier {verb} it", False, tuple(lines))
    if decider == "Baseline":
        note = f"no NetworkPolicy isolates it; the Baseline tier {verb} it"
    elif decider == "default" and verdict.baseline is None and verdict.admin is None:
        lines.append("no ClusterNetworkPolicy rule matches it")
    return TierSide(verdict.allowed, note, True, tuple(lines))


def with_tiers(
    side: _Side, verdict: DirectionVerdict, locate: Callable[[ir.Origin | None], Location | None]
) -> _Side:
    """An explanation of one side (:class:`npc.analysis.explain.SideExplanation`) with the
    tiers' part added (its fields ``note``, ``allowed``, ``isolated_by``, ``checks``,
    ``tiers``)."""
    found = tiered_side(getattr(side, "note"), verdict, locate)  # noqa: B009
    changes: dict[str, object] = {
        "allowed": found.allowed,
        "note": found.note,
        "tiers": found.lines,
    }
    if not found.network_policy:
        changes.update(isolated_by=(), checks=())
    return dataclasses.replace(side, **changes)
