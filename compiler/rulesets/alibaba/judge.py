"""The Alibaba judge as ``npc verify`` loads it: :func:`read` over ruleset files, and
:class:`EcsJudge` deciding flows as :class:`~npc.rulesets.base.Decision` values.

Three kinds of file are read, told apart by their content (each refused at its position when
malformed): npc's own ``--target alibaba`` JSON (groups, PodNetworkings and label changes);
what ``DescribeSecurityGroupAttribute`` returns for groups (one body or a JSON list of them,
each with the ``SecurityGroupType`` that ``DescribeSecurityGroups`` reports); and PodNetworking
objects (``kubectl get podnetworkings -o json``). The groups and PodNetworkings of every file
are pooled, so a cloud dump and a cluster dump judge together. The evaluation is
:class:`~npc.rulesets.alibaba.evaluate.EcsSemantics` (its docstring cites the ECS and Terway
documentation for each rule).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from npc.errors import Code, Diagnostic, InputError, Location, Severity, snapshot_required
from npc.flows import Flow
from npc.rulesets.alibaba.evaluate import AttachmentError, EcsSemantics, SideDecision
from npc.rulesets.alibaba.model import LabelChange, PodNetworking, Ruleset, SecurityGroup
from npc.rulesets.alibaba.read import read_groups, read_pod_networkings, read_ruleset
from npc.rulesets.base import Decision, Text
from npc.snapshot import Snapshot

__all__ = ["EcsJudge", "read"]


@dataclass(slots=True)
class EcsJudge:
    """ECS verdicts for pooled groups and PodNetworkings over one snapshot."""

    ruleset: Ruleset
    snapshot: Snapshot
    _semantics: EcsSemantics = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._semantics = EcsSemantics(self.ruleset, self.snapshot)

    def decide(self, flow: Flow) -> Decision:
        """The verdict; the rule is the refusing side's (or, when allowed, the egress side's
        accepting rule, else the ingress side's), as ``file:line``."""
        found = self._semantics.decide(flow)
        sides = (found.egress, found.ingress)
        deciding = next((s for s in sides if not s.allowed), None)
        if deciding is None:
            deciding = next((s for s in sides if s.rule is not None), found.egress)
        return Decision(found.allowed, _rule(deciding), _note(deciding))


def _rule(side: SideDecision) -> str | None:
    where = side.rule.where if side.rule is not None else None
    if where is None:
        return None
    return f"{where.file}:{where.line}"


def _note(side: SideDecision) -> str:
    group = f" (group {side.group})" if side.group else ""
    return f"{side.direction}: {side.reason}{group}"


def _kind(source: Text) -> str:
    try:
        data = json.loads(source.text)
    except ValueError:
        return "unreadable"  # the reader of npc's JSON reports the position
    if isinstance(data, dict) and "securityGroups" in data:
        return "npc"
    if isinstance(data, dict) and (
        data.get("kind") in ("PodNetworking", "PodNetworkingList", "List") or "items" in data
    ):
        return "podnetworkings"
    return "groups"


def read(sources: Sequence[Text], snapshot: Snapshot | None) -> EcsJudge:
    """Read every source and pool what they hold into one judge. A snapshot is required:
    which groups a pod joins depends on its labels (Terway's PodNetworking selectors)."""
    if snapshot is None:
        raise InputError(
            snapshot_required("judging security groups (PodNetworkings attach them by labels)")
        )
    groups: list[SecurityGroup] = []
    networkings: list[PodNetworking] = []
    labels: list[LabelChange] = []
    region: str | None = None
    for source in sources:
        kind = _kind(source)
        if kind in ("npc", "unreadable"):
            part = read_ruleset(source.text, source.name)
            groups.extend(part.groups)
            networkings.extend(part.pod_networkings)
            labels.extend(part.labels)
            region = region or part.region
        elif kind == "podnetworkings":
            networkings.extend(read_pod_networkings(source.text, source.name))
        else:
            groups.extend(read_groups(source.text, source.name))
    ruleset = Ruleset(tuple(groups), tuple(networkings), tuple(labels), region)
    try:
        return EcsJudge(ruleset, snapshot)
    except AttachmentError as exc:
        raise InputError(
            Diagnostic(
                Code.INVALID_VALUE,
                Severity.ERROR,
                f"the PodNetworkings do not give every pod defined groups: {exc}",
                location=Location(sources[0].name, 1, 1) if sources else None,
                hint="Terway takes the first PodNetworking that matches a pod, from an "
                "unordered list: make the selectors disjoint",
            )
        ) from None
