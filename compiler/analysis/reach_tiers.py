"""Reachability with ClusterNetworkPolicy tiers: the class engine, refined and checked by the
oracle.

The class engine of :mod:`npc.analysis.reach` lifts NetworkPolicy's union-of-allows to set
algebra; ordered rules with Deny and Pass across tiers do not lift the same way. So when the
input has ClusterNetworkPolicies, :class:`TieredReach` keeps the engine's *partition* (pods no
NetworkPolicy can tell apart) and refines it by everything the tiers look at: which
subjects and pod peers a pod matches, which ``networks`` hold each of its addresses, which
node its addresses belong to (for ``nodes`` peers), and the numbers of every named port the
tiers mention. Two pods of one refined class get the same verdict from the oracle against
any third pod, so the class matrix is computed by set algebra over the classes
(:mod:`npc.analysis.tier_algebra`: each rule's matches as bitsets, the ordered tiers walked
per class); :meth:`TieredReach.oracle_matrix` computes the same matrix by asking
:meth:`npc.analysis.semantics.Semantics.pod_allowed` once per pair of classes (a class with
two members answers its diagonal with two distinct pods). ``tests/test_cnp_semantics.py``
checks both pair by pair against the oracle on random clusters and policies.
"""

from __future__ import annotations

from npc import ir, tiers
from npc.analysis.reach import ClassMatrix, PodClass, Reach
from npc.analysis.semantics import Semantics
from npc.analysis.tier_algebra import TierAlgebra
from npc.analysis.tier_semantics import TierJudge
from npc.flows import Probe, node_addresses
from npc.resolve import Resolver
from npc.snapshot import Pod, Snapshot

__all__ = ["TieredReach", "make_reach"]


def make_reach(
    policies: ir.PolicySet,
    snapshot: Snapshot,
    cluster_policies: tiers.ClusterPolicySet = tiers.EMPTY,
) -> Reach:
    """The reach engine for an input: the plain class engine, or :class:`TieredReach` when
    there are ClusterNetworkPolicies."""
    if cluster_policies:
        return TieredReach(policies, snapshot, cluster_policies)
    return Reach(policies, snapshot)


class TieredReach(Reach):
    """:class:`~npc.analysis.reach.Reach` for NetworkPolicies and ClusterNetworkPolicies."""

    def __init__(
        self,
        policies: ir.PolicySet,
        snapshot: Snapshot,
        cluster_policies: tiers.ClusterPolicySet,
        resolver: Resolver | None = None,
    ) -> None:
        super().__init__(policies, snapshot, resolver)
        self.cluster_policies = cluster_policies
        self._oracle = Semantics(policies, snapshot, cluster_policies)
        self._judge = TierJudge(cluster_policies, snapshot)
        self._node_of = node_addresses(snapshot)
        base = [self._class_of[i] for i in range(len(self.pods))]
        groups: dict[tuple[object, ...], list[int]] = {}
        for i, pod in enumerate(self.pods):
            groups.setdefault((base[i], self._signature(pod)), []).append(i)
        classes = []
        for index, members in enumerate(groups.values()):
            bits = 0
            for i in members:
                bits |= 1 << i
                self._class_of[i] = index
            classes.append(PodClass(index, tuple(self.pods[i] for i in members), bits))
        self.classes = tuple(classes)
        self.all_classes = (1 << len(self.classes)) - 1
        self._tier_matrices: dict[Probe, ClassMatrix] = {}
        self._algebra = TierAlgebra(
            policies, snapshot, cluster_policies, [c.pods for c in self.classes]
        )

    def _signature(self, pod: Pod) -> tuple[object, ...]:
        """Everything the tiers' rules T1-T4 read about ``pod``."""
        judge = self._judge
        key: list[object] = [pod.host_network]
        names: set[str] = set()
        for policy in self.cluster_policies:
            key.append(policy in judge.subject_of(pod))
            for direction in ("ingress", "egress"):
                for rule in policy.rules(direction):
                    if isinstance(rule.ports, ir.PortSet):
                        for entry in rule.ports.entries:
                            names.update(entry.named)
                    for peer in rule.peers:
                        if isinstance(peer, ir.PodPeer):
                            key.append(judge.pod_peer_matches(peer, pod))
                        elif isinstance(peer, ir.AddressPeer):
                            key.append(tuple(peer.addresses.contains(a) for a in pod.ips))
                        elif isinstance(peer, tiers.NodesPeer):
                            key.append(tuple(self._node_of.get(a) for a in pod.ips))
        for name in sorted(names):
            for protocol in ir.Protocol:
                key.append(pod.named_port_numbers(name, protocol))
        return tuple(key)

    def matrix(self, probe: Probe) -> ClassMatrix:
        """The class matrix of one probe, by set algebra over the classes."""
        found = self._tier_matrices.get(probe)
        if found is None:
            found = ClassMatrix(probe, self._algebra.rows(probe))
            self._tier_matrices[probe] = found
        return found

    def oracle_matrix(self, probe: Probe) -> ClassMatrix:
        """The class matrix of one probe, from the oracle on one pair of pods per pair of
        classes (what :meth:`matrix` must equal; for tests and benchmarks)."""
        rows = []
        for src in self.classes:
            row = 0
            for dst in self.classes:
                a = src.pods[0]
                b = dst.pods[1] if src is dst and len(dst) > 1 else dst.pods[0]
                if self._oracle.pod_allowed(a, b, probe.protocol, probe.port):
                    row |= 1 << dst.index
            rows.append(row)
        return ClassMatrix(probe, tuple(rows))
