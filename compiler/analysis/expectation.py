"""The spec side of ``npc verify``: what the policies expect of every flow a ruleset enforces.

For pod pairs, verdicts come from class matrices: the class engine
(:class:`~npc.analysis.reach.Reach`) for NetworkPolicy alone, and with ClusterNetworkPolicies
the tiered engine (:class:`~npc.analysis.reach_tiers.TieredReach`, refined classes and the
oracle asked once per pair of classes; ``tests/test_cnp_reach.py`` checks it against the
oracle). For outside addresses, the oracle itself (:class:`~npc.analysis.semantics.
Semantics`, tiers included).

With a node, the ruleset is one node's: for a pair with one local end, only the local side's
verdict counts, so two more engines judge one side each (the policies projected on one
direction, the tiers too: :func:`~npc.analysis.flowspace.one_direction_tiers`).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator

from npc import ir, tiers
from npc.analysis.flowspace import (
    FlowSpace,
    Outside,
    address_sets,
    cluster_address_sets,
    one_direction,
    one_direction_tiers,
)
from npc.analysis.reach import Reach
from npc.analysis.reach_tiers import make_reach
from npc.analysis.semantics import Semantics
from npc.analysis.tier_semantics import TierJudge
from npc.flows import Probe
from npc.rulesets.base import address_signatures
from npc.snapshot import Pod

__all__ = ["Expectation"]


def _spans(
    policies: ir.PolicySet, cluster: tiers.ClusterPolicySet
) -> Iterator[tuple[int, int, int]]:
    """(version, first, last) of every CIDR of every ipBlock and ``networks`` peer."""
    blocks = [*address_sets(policies), *cluster_address_sets(cluster)]
    for addresses in blocks:
        for net in addresses.cidrs:
            yield net.version, net.first, net.last


def _local_pods(space: FlowSpace) -> dict[str, list[Pod]]:
    by_namespace: dict[str, list[Pod]] = {}
    for pod, here in zip(space.pods, space.local, strict=True):
        if here and not pod.host_network:
            by_namespace.setdefault(pod.namespace, []).append(pod)
    return by_namespace


def _selecting_local(space: FlowSpace, policies: ir.PolicySet) -> ir.PolicySet:
    """The policies that select some local pod: with a node, the only ones whose verdicts
    the node's flows depend on (every flow judged has its enforced side on a local pod), so
    the classes are those of a much smaller vocabulary."""
    by_namespace = _local_pods(space)
    return ir.PolicySet(
        tuple(
            p
            for p in policies
            if any(p.pod_selector.matches(pod.labels) for pod in by_namespace.get(p.namespace, ()))
        )
    )


def _subject_local(space: FlowSpace, cluster: tiers.ClusterPolicySet) -> tiers.ClusterPolicySet:
    """The ClusterNetworkPolicies whose subject holds some local pod (the same reasoning)."""
    judge = TierJudge(cluster, space.snapshot)
    kept: set[tiers.ClusterPolicy] = set()
    for pods in _local_pods(space).values():
        for pod in pods:
            kept.update(judge.subject_of(pod))
    return tiers.ClusterPolicySet(tuple(p for p in cluster if p in kept))


class Expectation:
    """The spec's verdict on pod pair (i, j) for what this ruleset enforces, by class
    matrices: with a node, the local side's verdict when only one end is local."""

    def __init__(
        self,
        space: FlowSpace,
        policies: ir.PolicySet,
        cluster_policies: tiers.ClusterPolicySet = tiers.EMPTY,
    ) -> None:
        self.space = space
        if space.node is not None:
            policies = _selecting_local(space, policies)
            if cluster_policies:
                cluster_policies = _subject_local(space, cluster_policies)
        #: The policies the verdicts depend on (with a node, those selecting a local pod).
        self.policies = policies
        self.cluster_policies = cluster_policies
        snapshot = space.snapshot
        self.full: Reach = make_reach(policies, snapshot, cluster_policies)
        self.full_classes = space.classes(self.full)
        self.sides: tuple[tuple[Reach, list[int]], ...] = ()
        if space.node is not None:
            found = []
            for direction in (ir.Direction.EGRESS, ir.Direction.INGRESS):
                reach = make_reach(
                    one_direction(policies, direction),
                    snapshot,
                    one_direction_tiers(cluster_policies, direction),
                )
                found.append((reach, space.classes(reach)))
            self.sides = tuple(found)
        #: The oracle, for flows with an outside end.
        self.semantics = Semantics(policies, snapshot, cluster_policies)
        self._spans = address_signatures(_spans(policies, cluster_policies))

    def row_of(self, probe: Probe) -> Callable[[int], Callable[[int], bool]]:
        """For one probe: i -> (j -> the spec's verdict on i to j)."""
        local = self.space.local
        full_rows, full_classes = self.full.matrix(probe).rows, self.full_classes
        if not self.sides:

            def whole(i: int) -> Callable[[int], bool]:
                row, c = full_rows[full_classes[i]], full_classes
                return lambda j: bool(row >> c[j] & 1)

            return whole
        (egress, e_classes), (ingress, i_classes) = self.sides
        e_rows, i_rows = egress.matrix(probe).rows, ingress.matrix(probe).rows

        def per_side(i: int) -> Callable[[int], bool]:
            if local[i]:
                row, e_row, c, e = (
                    full_rows[full_classes[i]],
                    e_rows[e_classes[i]],
                    full_classes,
                    e_classes,
                )
                return lambda j: bool((row >> c[j] if local[j] else e_row >> e[j]) & 1)
            row, c = i_rows[i_classes[i]], i_classes
            return lambda j: bool(row >> c[j] & 1)

        return per_side

    def outside_class(self, outside: Outside) -> Hashable:
        """What the spec sees of an outside address: its family, the set of ipBlock and
        ``networks`` spans holding it, and the node it belongs to (rule 8; ``nodes`` peers)."""
        address = outside.endpoint.address
        return (
            outside.version,
            self._spans(outside.version, int(address)),
            self.space.node_of.get(address),
        )

    def pod_outside_class(self, index: int) -> Hashable:
        """What the spec sees of pod ``index`` against outside addresses: its class, and its
        node when node addresses are among them (a pod always reaches its own node)."""
        pod = self.space.pods[index]
        node = pod.node_name if self.space.node_outside else None
        return (self.full_classes[index], node)
