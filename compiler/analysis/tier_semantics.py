"""Reference semantics of the ClusterNetworkPolicy tiers (``policy.networking.k8s.io/v1alpha2``).

Written from ``apis/v1alpha2/clusternetworkpolicy_types.go`` (network-policy-api v0.2.0) and
used by :class:`npc.analysis.semantics.Semantics`, which places the tiers around
NetworkPolicy. The rules, as implemented, for one side (egress of the source pod, ingress of
the destination pod) of one flow:

T1. A policy applies to a pod when the pod's namespace labels match ``subject.namespaces``
    (or ``subject.pods.namespaceSelector``) and its labels match ``subject.pods.podSelector``.
    Host-network pods are never subjects.
T2. The policies of a tier are taken in order: priority ascending, then name ascending for
    equal priorities (upstream leaves that order undefined; the loader warns). Within a policy
    the rules of the direction are taken in the order written. The first rule whose peers and
    protocols both match decides: ``Accept`` and ``Deny`` are final for this side, ``Pass``
    ends this tier and hands the flow to the next one (Admin -> NetworkPolicy, Baseline -> the
    default, allow).
T3. Peers: ``namespaces`` matches pods of matching namespaces, ``pods`` matching pods in
    matching namespaces (host-network pods are matched by neither); ``networks`` matches any
    address in the CIDRs, pod addresses included; ``nodes`` matches the addresses of the
    snapshot's nodes whose labels match (a host-network pod has its node's address);
    ``domainNames`` cannot be decided without DNS and matches no flow here (every target
    refuses it). A peer with no field npc knows fails closed: it matches nothing in an Accept
    rule and everything in a Deny or Pass rule.
T4. Protocols: none listed matches everything; otherwise the flow's protocol and destination
    port must be listed (a number or an inclusive range), or the destination pod must have a
    container port of the ``destinationNamedPort`` name with the flow's port and protocol.
"""

from __future__ import annotations

from dataclasses import dataclass

import netaddr

from npc import ir, tiers
from npc.flows import Endpoint, Flow, ports_match
from npc.snapshot import Pod, Snapshot

__all__ = ["TierDecision", "TierJudge", "TierRuleRef"]


@dataclass(frozen=True, slots=True)
class TierRuleRef:
    """A rule of a ClusterNetworkPolicy, named by policy, direction and index."""

    policy: tiers.ClusterPolicy
    direction: str
    index: int
    rule: tiers.ClusterRule

    def __str__(self) -> str:
        name = f" ({self.rule.name})" if self.rule.name else ""
        return (
            f"ClusterNetworkPolicy {self.policy.name} ({self.policy.tier} tier, priority "
            f"{self.policy.priority}) {self.direction}[{self.index}]{name}: {self.rule.action}"
        )


@dataclass(frozen=True, slots=True)
class TierDecision:
    """What one tier said about one side of a flow: the first matching rule (its action)."""

    tier: tiers.Tier
    match: TierRuleRef

    @property
    def action(self) -> tiers.Action:
        return self.match.rule.action


class TierJudge:
    """Evaluates the admin and baseline tiers for one snapshot (rules T1 to T4)."""

    def __init__(self, policies: tiers.ClusterPolicySet, snapshot: Snapshot) -> None:
        self.policies = policies
        self.snapshot = snapshot
        self._node_labels = {n.name: n.labels for n in snapshot.nodes}
        self._node_of: dict[netaddr.IPAddress, str] = {}
        for node in snapshot.nodes:
            for _, address in node.addresses:
                self._node_of.setdefault(address, node.name)
        for pod in snapshot.pods:
            if pod.host_network and pod.node_name:
                for address in pod.ips:
                    self._node_of.setdefault(address, pod.node_name)
        self._by_tier = {t: policies.tier(t) for t in tiers.Tier}
        self._subjects: dict[tuple[str, str], tuple[tiers.ClusterPolicy, ...]] = {}

    def subject_of(self, pod: Pod) -> tuple[tiers.ClusterPolicy, ...]:
        """The policies (all tiers, in order) whose subject is ``pod`` (rule T1)."""
        found = self._subjects.get((pod.namespace, pod.name))
        if found is None:
            found = (
                ()
                if pod.host_network
                else tuple(p for p in self.policies if self._subject_matches(p.subject, pod))
            )
            self._subjects[(pod.namespace, pod.name)] = found
        return found

    def _subject_matches(self, subject: tiers.Subject, pod: Pod) -> bool:
        return subject.pods.matches(pod.labels) and subject.namespaces.matches(
            self.snapshot.namespace_labels(pod.namespace)
        )

    def peer_matches(self, peer: tiers.ClusterPeer, action: tiers.Action, other: Endpoint) -> bool:
        """Rule T3."""
        if isinstance(peer, ir.AddressPeer):
            return peer.addresses.contains(other.address)
        if isinstance(peer, ir.PodPeer):
            return other.pod is not None and self.pod_peer_matches(peer, other.pod)
        if isinstance(peer, tiers.NodesPeer):
            node = self._node_of.get(other.address)
            return node is not None and peer.nodes.matches(self._node_labels.get(node, {}))
        if isinstance(peer, tiers.DomainNamesPeer):
            return False
        return action is not tiers.Action.ACCEPT  # UnknownPeer: fail closed

    def pod_peer_matches(self, peer: ir.PodPeer, pod: Pod) -> bool:
        """A ``namespaces`` or ``pods`` peer; host-network pods are never matched."""
        if pod.host_network:
            return False
        namespaces = peer.namespaces
        if isinstance(namespaces, ir.SameNamespace):  # not made by the frontend
            return False
        return peer.pods.matches(pod.labels) and namespaces.matches(
            self.snapshot.namespace_labels(pod.namespace)
        )

    def decide(
        self, tier: tiers.Tier, pod: Pod, direction: str, other: Endpoint, flow: Flow
    ) -> TierDecision | None:
        """The first rule of ``tier`` that matches (rule T2), or None when none does."""
        subject = self.subject_of(pod)
        if not subject:
            return None
        for policy in self._by_tier[tier]:
            if policy not in subject:
                continue
            for i, rule in enumerate(policy.rules(direction)):
                if not ports_match(rule.ports, flow):
                    continue
                if any(self.peer_matches(p, rule.action, other) for p in rule.peers):
                    return TierDecision(tier, TierRuleRef(policy, direction, i, rule))
        return None
