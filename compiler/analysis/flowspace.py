"""The flows a whole-cluster check walks: :mod:`.verify` and :mod:`.diff` share them.

Every ordered pair of distinct pods of the snapshot, on every probe: each (port, protocol)
a pod declares (named ports resolve to these) and each port boundary the policies name (the
first and last port of every range, and the ports just outside it), so a port a ruleset
moved is met where the policy put it. Outside the cluster, one address on each side of
every ipBlock boundary (the first and last address of each range of cidr minus except, and
the addresses just beyond), plus one address no policy names, per address family pods
have: a dropped ``except`` or a widened cidr is met at its edge.

With ClusterNetworkPolicies the same holds for what the tiers name: their port boundaries are
probes, the boundaries of their ``networks`` are outside addresses, and when a ``nodes`` peer
is used, every node address of the snapshot that no pod holds is an outside address too (a
node address held by a hostNetwork pod is already met as that pod).

The reference semantics decide by class (:class:`~npc.analysis.reach.Reach`: pods no policy
tells apart), so the spec side costs one bit test per pod pair.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

import netaddr

from npc import ir, tiers
from npc.analysis.reach import Reach
from npc.flows import Endpoint, Probe, default_probes, node_addresses
from npc.intervals import ADDRESS_BITS
from npc.snapshot import Pod, Snapshot

__all__ = [
    "FlowSpace",
    "Outside",
    "address_sets",
    "cluster_address_sets",
    "one_direction",
    "one_direction_tiers",
    "policy_probes",
    "uses_nodes",
]

#: Addresses no policy is expected to name (documentation ranges, RFC 5737 and RFC 3849),
#: used as "somewhere else on the internet" when no boundary is at hand.
_ELSEWHERE = {4: netaddr.IPAddress("198.51.100.77"), 6: netaddr.IPAddress("2001:db8:77::77")}


def _port_entries(policies: ir.PolicySet) -> Iterator[ir.ProtocolPorts]:
    for policy in policies:
        for direction in ir.Direction:
            for rule in policy.rules(direction) or ():
                if isinstance(rule.ports, ir.PortSet):
                    yield from rule.ports.entries


def _cluster_port_entries(cluster: tiers.ClusterPolicySet) -> Iterator[ir.ProtocolPorts]:
    for policy in cluster:
        for direction in ir.Direction:
            for rule in policy.rules(direction):
                if isinstance(rule.ports, ir.PortSet):
                    yield from rule.ports.entries


def policy_probes(
    policies: Iterable[ir.PolicySet],
    snapshot: Snapshot,
    cluster_sets: Iterable[tiers.ClusterPolicySet] = (),
) -> tuple[Probe, ...]:
    """The snapshot's container ports plus every port boundary the policies (and the
    ClusterNetworkPolicies) name."""
    found = set(default_probes(snapshot))
    entries = [e for policy_set in policies for e in _port_entries(policy_set)]
    entries += [e for cluster in cluster_sets for e in _cluster_port_entries(cluster)]
    for entry in entries:
        for r in entry.ranges:
            for port in (r.start - 1, r.start, r.end, r.end + 1):
                if 1 <= port <= 65535:
                    found.add(Probe(port, entry.protocol))
    return tuple(sorted(found))


def address_sets(policies: ir.PolicySet) -> Iterator[ir.AddressSet]:
    """Every ipBlock's addresses (cidr minus except), rule by rule."""
    for policy in policies:
        for direction in ir.Direction:
            for rule in policy.rules(direction) or ():
                if isinstance(rule.peers, ir.AnyPeer):
                    continue
                for peer in rule.peers:
                    if isinstance(peer, ir.AddressPeer):
                        yield peer.addresses


def cluster_address_sets(cluster: tiers.ClusterPolicySet) -> Iterator[ir.AddressSet]:
    """Every ``networks`` peer's addresses, rule by rule."""
    for policy in cluster:
        for direction in ir.Direction:
            for rule in policy.rules(direction):
                for peer in rule.peers:
                    if isinstance(peer, ir.AddressPeer):
                        yield peer.addresses


def uses_nodes(cluster_sets: Iterable[tiers.ClusterPolicySet]) -> bool:
    """Whether some rule has a ``nodes`` peer (node addresses then become outside ends)."""
    return any(
        isinstance(peer, tiers.NodesPeer)
        for cluster in cluster_sets
        for policy in cluster
        for direction in ir.Direction
        for rule in policy.rules(direction)
        for peer in rule.peers
    )


def one_direction_tiers(
    cluster: tiers.ClusterPolicySet, direction: ir.Direction
) -> tiers.ClusterPolicySet:
    """The ClusterNetworkPolicies with only ``direction``'s rules: the tiers' part in one
    side (a policy without rules of a direction does not affect it)."""
    keep_ingress = direction is ir.Direction.INGRESS
    return tiers.ClusterPolicySet(
        tuple(replace(p, egress=()) if keep_ingress else replace(p, ingress=()) for p in cluster)
    )


def one_direction(policies: ir.PolicySet, direction: ir.Direction) -> ir.PolicySet:
    """The policies with only ``direction`` isolating: the spec's verdict of one side."""
    keep_ingress = direction is ir.Direction.INGRESS
    return ir.PolicySet(
        tuple(
            ir.Policy(
                p.namespace,
                p.name,
                p.pod_selector,
                p.ingress if keep_ingress else None,
                None if keep_ingress else p.egress,
                p.origin,
            )
            for p in policies
        )
    )


@dataclass(frozen=True, slots=True)
class Outside:
    """An address outside the cluster, as a flow endpoint."""

    endpoint: Endpoint

    @property
    def version(self) -> int:
        return int(self.endpoint.address.version)


class FlowSpace:
    """Pods, probes and outside addresses of one check, over one snapshot.

    ``node``: only pods scheduled there (and pods no node is named for, which every node
    keeps) are *local*; a per-node ruleset enforces the egress of local pods and the ingress
    of local pods only."""

    def __init__(
        self,
        snapshot: Snapshot,
        policy_sets: Iterable[ir.PolicySet],
        *,
        node: str | None = None,
        probes: tuple[Probe, ...] | None = None,
        cluster_sets: Iterable[tiers.ClusterPolicySet] = (),
    ) -> None:
        sets = tuple(policy_sets)
        clusters = tuple(cluster_sets)
        self.snapshot = snapshot
        self.node = node
        self.pods: tuple[Pod, ...] = snapshot.pods
        self.probes = policy_probes(sets, snapshot, clusters) if probes is None else probes
        self.local = tuple(node is None or p.node_name in (None, node) for p in self.pods)
        #: per pod, its endpoint per address family
        self.endpoints: tuple[dict[int, Endpoint], ...] = tuple(
            {a.version: Endpoint.of_pod(p, a.version) for a in reversed(p.ips)} for p in self.pods
        )
        #: Node address -> node name (rule 8: a pod and its own node always connect).
        self.node_of: dict[netaddr.IPAddress, str] = node_addresses(snapshot)
        #: Whether node addresses no pod holds are among the outside addresses.
        self.node_outside = uses_nodes(clusters)
        self.outside = self._outside(sets, clusters)

    def _outside(
        self, sets: tuple[ir.PolicySet, ...], clusters: tuple[tiers.ClusterPolicySet, ...]
    ) -> tuple[Outside, ...]:
        held = {a for p in self.pods for a in p.ips}
        taken = held | set(self.node_of)
        versions = {a.version for p in self.pods if not p.host_network for a in p.ips}
        values: set[tuple[int, int]] = set()
        blocks = [a for policies in sets for a in address_sets(policies)]
        blocks += [a for cluster in clusters for a in cluster_address_sets(cluster)]
        for addresses in blocks:
            for net in addresses.cidrs:
                top = (1 << ADDRESS_BITS[net.version]) - 1
                for value in (net.first - 1, net.first, net.last, net.last + 1):
                    if 0 <= value <= top:
                        values.add((net.version, value))
        values.update((v, int(a)) for v, a in _ELSEWHERE.items())
        found = []
        for version, value in sorted(values):
            address = netaddr.IPAddress(value, version)
            if version in versions and address not in taken:
                found.append(Outside(Endpoint.of_address(address)))
        if self.node_outside:
            nodes = {a for a in self.node_of if a not in held and a.version in versions}
            found.extend(Outside(Endpoint.of_address(a)) for a in sorted(nodes))
        return tuple(found)

    def pairs(self) -> Iterator[tuple[int, int]]:
        """Indices of ordered pairs of distinct pods that the check covers (with a node: at
        least one end local)."""
        n = len(self.pods)
        local = self.local
        for i in range(n):
            if local[i]:
                for j in range(n):
                    if i != j:
                        yield i, j
            else:
                for j in range(n):
                    if local[j] and i != j:
                        yield i, j

    def classes(self, reach: Reach) -> list[int]:
        """Per pod, its class index under ``reach``."""
        return [reach.class_of(p).index for p in self.pods]
