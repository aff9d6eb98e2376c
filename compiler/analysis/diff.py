"""``npc diff``: the flows a policy change opens and closes.

Both policy sets are judged by the reference semantics over one snapshot and the same
:class:`~npc.analysis.flowspace.FlowSpace` (probes and outside addresses of both sets).
Pods are grouped by the pair of their classes under the two sets (pods neither set tells
apart), class pairs are compared with two bit tests, and only the class pairs that differ
are expanded to pods; so a diff of a large cluster costs what its classes cost.

With ClusterNetworkPolicies on either side, that side's engine is the tiered one
(:class:`~npc.analysis.reach_tiers.TieredReach`, checked against the oracle), its outside
verdicts the oracle with tiers, and the flow space holds what the tiers name too (their port
boundaries, ``networks`` boundaries and, with a ``nodes`` peer, the node addresses).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from npc import ir, tiers
from npc.analysis.flowspace import FlowSpace
from npc.analysis.reach_tiers import make_reach
from npc.analysis.semantics import Semantics
from npc.flows import Flow, Probe
from npc.snapshot import Snapshot

__all__ = ["Change", "DiffReport", "diff"]


@dataclass(frozen=True, slots=True, order=True)
class Change:
    """A flow whose verdict changes: ``old`` under the old policies, ``new`` under the new."""

    src: str
    dst: str
    protocol: str
    port: int
    old: bool
    new: bool

    @property
    def opened(self) -> bool:
        return self.new and not self.old

    def to_json(self) -> dict[str, Any]:
        return {
            "from": self.src,
            "to": self.dst,
            "protocol": self.protocol,
            "port": self.port,
            "old": self.old,
            "new": self.new,
        }


@dataclass(frozen=True, slots=True)
class DiffReport:
    """Every flow that changes, sorted."""

    differences: tuple[Change, ...]
    probes: tuple[Probe, ...]
    outside: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return bool(self.differences)

    def to_json(self) -> dict[str, Any]:
        """Exactly ``{"changed": bool, "differences": [...]}``."""
        return {"changed": self.changed, "differences": [d.to_json() for d in self.differences]}


def diff(
    old: ir.PolicySet,
    new: ir.PolicySet,
    snapshot: Snapshot,
    *,
    old_tiers: tiers.ClusterPolicySet = tiers.EMPTY,
    new_tiers: tiers.ClusterPolicySet = tiers.EMPTY,
) -> DiffReport:
    """The flows on which ``old`` and ``new`` (each with its ClusterNetworkPolicies)
    disagree over ``snapshot``."""
    space = FlowSpace(snapshot, (old, new), cluster_sets=(old_tiers, new_tiers))
    reach_old = make_reach(old, snapshot, old_tiers)
    reach_new = make_reach(new, snapshot, new_tiers)
    joint_of: dict[tuple[int, int, tuple[int, ...], str | None], int] = {}
    members: list[list[int]] = []
    keys: list[tuple[int, int]] = []
    classes = zip(space.classes(reach_old), space.classes(reach_new), strict=True)
    for index, (c_old, c_new) in enumerate(classes):
        # Pods of one class may differ in address families: outside flows need both; and
        # their nodes, when node addresses are outside ends (a pod reaches its own node).
        node = space.pods[index].node_name if space.node_outside else None
        key = (c_old, c_new, tuple(sorted(space.endpoints[index])), node)
        joint = joint_of.get(key)
        if joint is None:
            joint = joint_of[key] = len(members)
            members.append([])
            keys.append((c_old, c_new))
        members[joint].append(index)
    pods = space.pods
    found: list[Change] = []
    for probe in space.probes:
        m_old, m_new = reach_old.matrix(probe), reach_new.matrix(probe)
        for a, (ao, an) in enumerate(keys):
            for b, (bo, bn) in enumerate(keys):
                was, now = m_old.allows(ao, bo), m_new.allows(an, bn)
                if was == now:
                    continue
                for i in members[a]:
                    for j in members[b]:
                        if i != j:
                            found.append(
                                Change(
                                    pods[i].key,
                                    pods[j].key,
                                    str(probe.protocol),
                                    probe.port,
                                    was,
                                    now,
                                )
                            )
    sem_old = Semantics(old, snapshot, old_tiers)
    sem_new = Semantics(new, snapshot, new_tiers)
    for a, _ in enumerate(keys):
        rep = members[a][0]
        if pods[rep].host_network:
            continue
        for outside in space.outside:
            mine = space.endpoints[rep].get(outside.version)
            if mine is None:
                continue
            for probe in space.probes:
                for inbound in (True, False):
                    src, dst = (outside.endpoint, mine) if inbound else (mine, outside.endpoint)
                    flow = Flow(src, dst, probe.protocol, probe.port)
                    was, now = sem_old.allowed(flow), sem_new.allowed(flow)
                    if was == now:
                        continue
                    for i in members[a]:
                        pod = pods[i].key
                        there = str(outside.endpoint)
                        found.append(
                            Change(
                                there if inbound else pod,
                                pod if inbound else there,
                                str(probe.protocol),
                                probe.port,
                                was,
                                now,
                            )
                        )
    return DiffReport(
        tuple(sorted(found)), space.probes, tuple(str(o.endpoint) for o in space.outside)
    )
