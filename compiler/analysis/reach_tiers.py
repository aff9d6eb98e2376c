"""Reachability with ClusterNetworkPolicy tiers: the class engine's set algebra, extended to
ordered rules with Accept, Deny and Pass.

:class:`TieredReach` is :class:`npc.analysis.reach.Reach` with two changes.

1. **Classes** also tell apart everything the tiers read (rules T1-T4 of
   :mod:`npc.analysis.tier_semantics`): the selectors of every subject and pod peer join the
   engine's label projection and namespace keys, every ``networks`` CIDR its address
   intervals, every ``destinationNamedPort`` its named ports, and, when some rule has a
   ``nodes`` peer, the node each pod address belongs to joins the class key. Two pods of one
   class are then alike to every tier rule as to every NetworkPolicy.
2. **Class matrices.** Per probe and address family, each tier rule becomes a rectangle of
   class pairs: for egress, its subject's classes (sources) times its peers' classes that its
   protocols admit (destinations); for ingress, its peers' classes (sources) times its
   subject's classes that its protocols admit (destinations). First match wins, so a tier
   is walked rule by rule in evaluation order with a bitset of the destinations already
   decided per source; sources the same rules apply to share the walk. A side's row is then
   rule 9 of :mod:`npc.analysis.semantics` in bit operations:
   ``admin_accept | (~admin_decided & (isolated ? networkpolicy : ~baseline_deny))``, where
   ``admin_decided`` counts Accept and Deny (a Pass hands on) and the NetworkPolicy rows are
   the plain engine's. Rules 7 and 8 (a pod with itself, with its own node) hold as in the
   plain engine.

``tests/test_cnp_semantics.py`` checks this engine pair by pair against
:meth:`npc.analysis.semantics.Semantics.pod_allowed` on random clusters and policies, and
``bench/reach_tiers_bench.py`` measures it against the plain engine.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import netaddr

from npc import ir, tiers
from npc.analysis.reach import Reach
from npc.flows import Probe, node_addresses
from npc.resolve import Resolver, bit_indices
from npc.snapshot import Pod, Snapshot

if TYPE_CHECKING:
    from npc.analysis.reach import _Vocabulary

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


@dataclass(frozen=True, slots=True)
class _TierRule:
    """One rule of a tier in evaluation order: its tier, its policy's number and the rule."""

    tier: tiers.Tier
    policy: int
    rule: tiers.ClusterRule


class TieredReach(Reach):
    """:class:`~npc.analysis.reach.Reach` for NetworkPolicies and ClusterNetworkPolicies."""

    def __init__(
        self,
        policies: ir.PolicySet,
        snapshot: Snapshot,
        cluster_policies: tiers.ClusterPolicySet,
        resolver: Resolver | None = None,
    ) -> None:
        # Read by the partition, which the base constructor computes.
        self.cluster_policies = cluster_policies
        self._tier_node_of: dict[netaddr.IPAddress, str] = node_addresses(snapshot)
        self._node_labels = {n.name: n.labels for n in snapshot.nodes}
        self._reads_nodes = any(
            isinstance(peer, tiers.NodesPeer)
            for policy in cluster_policies
            for direction in ir.DIRECTIONS
            for rule in policy.rules(direction)
            for peer in rule.peers
        )
        super().__init__(policies, snapshot, resolver)
        self._subjects = [self._subject_classes(p.subject) for p in cluster_policies]
        self._tier_rules: dict[tuple[str, tiers.Tier], tuple[_TierRule, ...]] = {}
        for direction in ir.DIRECTIONS:
            for tier in tiers.Tier:
                self._tier_rules[(direction, tier)] = tuple(
                    _TierRule(tier, i, rule)
                    for i, policy in enumerate(cluster_policies)
                    if policy.tier is tier and self._subjects[i]
                    for rule in policy.rules(direction)
                )
        # The tier rules in the order their port classes follow the NetworkPolicy rules'.
        self._tier_order = tuple(
            entry
            for direction in ir.DIRECTIONS
            for tier in tiers.Tier
            for entry in self._tier_rules[(direction, tier)]
        )
        self._tier_index = {id(entry): k for k, entry in enumerate(self._tier_order)}
        self._np_isolated = {
            direction: self._union(selected for _, selected, _ in self._isolating[direction])
            for direction in ir.DIRECTIONS
        }
        self._tier_peer_cache: dict[tuple[int, int], int] = {}
        self._pod_peer_cache: dict[int, int] = {}
        # Sources the same policies apply to (their egress walks are one).
        by_subjects: dict[tuple[bool, ...], int] = {}
        for c in self.classes:
            key = tuple(bool(bits >> c.index & 1) for bits in self._subjects)
            if any(key):
                by_subjects[key] = by_subjects.get(key, 0) | 1 << c.index
        self._egress_groups = tuple(by_subjects.items())
        self._ingress_groups: dict[int, tuple[tuple[tuple[bool, ...], int], ...]] = {}

    # -- classes --------------------------------------------------------------------------

    def _vocabulary(self) -> _Vocabulary:
        vocab = super()._vocabulary()
        for policy in self.cluster_policies:
            vocab.pod_selectors.add(policy.subject.pods)
            vocab.namespace_selectors.add(policy.subject.namespaces)
            for direction in ir.DIRECTIONS:
                for rule in policy.rules(direction):
                    if isinstance(rule.ports, ir.PortSet):
                        for entry in rule.ports.entries:
                            vocab.named_ports.update((n, entry.protocol) for n in entry.named)
                    for peer in rule.peers:
                        if isinstance(peer, ir.AddressPeer):
                            vocab.address_sets.add(peer.addresses)
                        elif isinstance(peer, ir.PodPeer):
                            vocab.pod_selectors.add(peer.pods)
                            if isinstance(peer.namespaces, ir.LabelSelector):
                                vocab.namespace_selectors.add(peer.namespaces)
        return vocab

    def _node_key(self, pod: Pod) -> object:
        key = super()._node_key(pod)
        if self._reads_nodes:  # rule T3: a ``nodes`` peer matches a node's addresses
            return key, tuple(self._tier_node_of.get(a) for a in pod.ips)
        return key

    def _subject_classes(self, subject: tiers.Subject) -> int:
        """Classes a subject selects (rule T1: never hostNetwork ones)."""
        found = 0
        for c in self.classes:
            rep = c.representative
            if (
                not rep.host_network
                and subject.pods.matches(rep.labels)
                and subject.namespaces.matches(self.snapshot.namespace_labels(rep.namespace))
            ):
                found |= 1 << c.index
        return found

    @staticmethod
    def _union(sets: Iterable[int]) -> int:
        found = 0
        for bits in sets:
            found |= bits
        return found

    def _tier_peer_classes(self, entry: _TierRule, version: int) -> int:
        """Classes (at their address of ``version``) that any peer of a tier rule matches
        (rule T3)."""
        key = (self._tier_index[id(entry)], version)
        found = self._tier_peer_cache.get(key)
        if found is None:
            found = 0
            for peer in entry.rule.peers:
                found |= self._peer_of(peer, entry.rule.action, version)
            self._tier_peer_cache[key] = found
        return found

    def _peer_of(self, peer: tiers.ClusterPeer, action: tiers.Action, version: int) -> int:
        if isinstance(peer, ir.AddressPeer):
            return self._address_classes(version, peer.addresses)
        if isinstance(peer, tiers.DomainNamesPeer):
            return 0
        if isinstance(peer, tiers.UnknownPeer):  # fail closed
            return 0 if action is tiers.Action.ACCEPT else self.all_classes
        if isinstance(peer, ir.PodPeer):  # the same in every address family
            cached = self._pod_peer_cache.get(id(peer))
            if cached is not None:
                return cached
        found = 0
        for c in self.classes:
            rep = c.representative
            if isinstance(peer, tiers.NodesPeer):
                address = rep.ip(version)
                node = self._tier_node_of.get(address) if address is not None else None
                hit = node is not None and peer.nodes.matches(self._node_labels.get(node, {}))
            else:
                hit = (
                    not rep.host_network
                    and isinstance(peer.namespaces, ir.LabelSelector)
                    and peer.pods.matches(rep.labels)
                    and peer.namespaces.matches(self.snapshot.namespace_labels(rep.namespace))
                )
            if hit:
                found |= 1 << c.index
        if isinstance(peer, ir.PodPeer):
            self._pod_peer_cache[id(peer)] = found
        return found

    # -- class matrices -------------------------------------------------------------------

    def _probe_ports(self, probe: Probe) -> tuple[int, ...]:
        return super()._probe_ports(probe) + tuple(
            self._port_classes(entry.rule.ports, probe) for entry in self._tier_order
        )

    def _sides(self, ports: Sequence[int], version: int, n: int) -> tuple[list[int], list[int]]:
        egress, ingress = super()._sides(ports, version, n)
        offset = len(self._rules)
        tier_ports = {id(e): ports[offset + k] for k, e in enumerate(self._tier_order)}
        return (
            self._tiered_egress(egress, tier_ports, version),
            self._tiered_ingress(ingress, tier_ports, version),
        )

    @staticmethod
    def _walk(rules: Iterable[tuple[tiers.Action, int]]) -> tuple[int, int, int]:
        """First match over one tier's applicable rules, each given as (action, the
        destination classes it matches): the destinations accepted, denied, and decided
        (passed ones included)."""
        decided = accepted = denied = 0
        for action, matched in rules:
            new = matched & ~decided
            if not new:
                continue
            decided |= new
            if action is tiers.Action.ACCEPT:
                accepted |= new
            elif action is tiers.Action.DENY:
                denied |= new
        return accepted, denied, decided

    def _tiered_egress(self, rows: list[int], ports: dict[int, int], version: int) -> list[int]:
        """Egress rows: a rule's destinations do not depend on the source, so sources with
        the same subjects share one walk of each tier."""
        isolated = self._np_isolated[ir.Direction.EGRESS]
        everything = self.all_classes
        out = list(rows)
        for key, sources in self._egress_groups:
            (accepted, denied, _), (_, base_denied, _) = (
                self._walk(
                    (e.rule.action, self._tier_peer_classes(e, version) & ports[id(e)])
                    for e in self._tier_rules[(ir.Direction.EGRESS, tier)]
                    if key[e.policy]
                )
                for tier in tiers.Tier
            )
            decided = accepted | denied
            for s in bit_indices(sources):
                rest = rows[s] if isolated >> s & 1 else everything & ~base_denied
                out[s] = (accepted | (rest & ~decided)) & everything
        return out

    def _tiered_ingress(self, rows: list[int], ports: dict[int, int], version: int) -> list[int]:
        """Ingress rows, transposed like the plain engine's (per source, the destinations
        that admit it): a rule's destinations are its subject's classes its ports admit, and
        sources matched by the same rules share one walk of each tier."""
        entries = [e for tier in tiers.Tier for e in self._tier_rules[(ir.Direction.INGRESS, tier)]]
        if not entries:
            return rows
        groups = self._ingress_groups.get(version)
        if groups is None:
            peers = [self._tier_peer_classes(e, version) for e in entries]
            by_rules: dict[tuple[bool, ...], int] = {}
            for s in range(len(rows)):
                key = tuple(bool(bits >> s & 1) for bits in peers)
                if any(key):
                    by_rules[key] = by_rules.get(key, 0) | 1 << s
            groups = self._ingress_groups[version] = tuple(by_rules.items())
        isolated = self._np_isolated[ir.Direction.INGRESS]
        everything = self.all_classes
        out = list(rows)
        for key, sources in groups:
            (accepted, denied, _), (_, base_denied, _) = (
                self._walk(
                    (e.rule.action, self._subjects[e.policy] & ports[id(e)])
                    for e, hit in zip(entries, key, strict=True)
                    if hit and e.tier is tier
                )
                for tier in tiers.Tier
            )
            decided = accepted | denied
            closed = ~(base_denied & ~isolated)
            for s in bit_indices(sources):
                out[s] = (accepted | (rows[s] & closed & ~decided)) & everything
        return out
