"""Random ClusterNetworkPolicies (admin and baseline tiers), seeded like :mod:`tests.synth`,
for the property tests of the tiered semantics, reach engine and targets."""

from __future__ import annotations

import random
from typing import Any

import netaddr

import npc
from npc import ir, kubeyaml, tiers
from npc.snapshot import Node, Snapshot
from tests.synth import (
    cluster_yaml,
    policy_yaml,
    random_block,
    random_cluster,
    random_policies,
    random_ports,
    random_selector,
)


def with_nodes(rng: random.Random, snapshot: Snapshot) -> Snapshot:
    """``snapshot`` plus the two nodes its pods run on (``node0``, ``node1``), labelled."""
    nodes = tuple(
        Node(
            f"node{i}",
            {"role": rng.choice(("infra", "worker"))},
            (("InternalIP", netaddr.IPAddress(f"192.168.7.{i + 10}")),),
        )
        for i in range(2)
    )
    return Snapshot(snapshot.namespaces, snapshot.pods, snapshot.services, nodes)


def nodes_yaml(snap: Snapshot) -> str:
    """The snapshot's Node objects as YAML documents (to append to :func:`cluster_yaml`)."""
    docs = [
        "---\napiVersion: v1\nkind: Node\n"
        f"metadata: {{name: {n.name}, labels: {{role: {n.labels['role']}}}}}\n"
        "status: {addresses: ["
        + ", ".join(f"{{type: {t}, address: '{a}'}}" for t, a in n.addresses)
        + "]}\n"
        for n in snap.nodes
    ]
    return "".join(docs)


def random_peer(
    rng: random.Random, direction: str, ipv6: bool = False, nodes: bool = True
) -> tiers.ClusterPeer:
    choice = rng.random()
    if choice < 0.35:
        return ir.PodPeer(random_selector(rng, pod=False), ir.EVERYTHING)
    if choice < 0.7 or direction == "ingress":
        return ir.PodPeer(random_selector(rng, pod=False), random_selector(rng))
    if choice < 0.9 or not nodes:
        block = random_block(rng, ipv6=ipv6)
        assert block.cidr is not None
        return ir.AddressPeer(ir.AddressSet((block.cidr,)), block.cidr)
    return tiers.NodesPeer(rng.choice((ir.EVERYTHING, ir.LabelSelector.of({"role": "infra"}))))


def random_cluster_ports(rng: random.Random, named: bool) -> ir.Ports:
    ports = random_ports(rng)
    if isinstance(ports, ir.PortSet):
        # A ClusterNetworkPolicy names a port per protocol, never "every port of TCP", and
        # its named ports hold for every protocol.
        entries = [e for e in ports.entries if not e.named and e.ranges != (ir.ALL_PORTS,)]
        if named and rng.random() < 0.3:
            entries.extend(ir.ProtocolPorts(p, (), ("http",)) for p in ir.Protocol)
        return ir.PortSet(tuple(entries)) if entries else ir.ANY_PORT
    return ports


def random_cluster_policies(
    rng: random.Random, count: int = 3, *, ipv6: bool = False, nodes: bool = True
) -> tiers.ClusterPolicySet:
    out = []
    for i in range(count):
        rules: dict[str, tuple[tiers.ClusterRule, ...]] = {}
        for direction in ("ingress", "egress"):
            made = []
            for _ in range(rng.choice((0, 1, 2, 3))):
                peers = tuple(
                    random_peer(rng, direction, ipv6, nodes) for _ in range(rng.randint(1, 2))
                )
                named = all(isinstance(p, ir.PodPeer) for p in peers)
                made.append(
                    tiers.ClusterRule(
                        rng.choice(tuple(tiers.Action)), peers, random_cluster_ports(rng, named)
                    )
                )
            rules[direction] = tuple(made)
        if rng.random() < 0.5:
            subject = tiers.Subject(random_selector(rng, pod=False))
        else:
            subject = tiers.Subject(random_selector(rng, pod=False), random_selector(rng))
        out.append(
            tiers.ClusterPolicy(
                f"cnp{i}",
                rng.choice(tuple(tiers.Tier)),
                rng.choice((0, 10, 20, 1000)),
                subject,
                rules["ingress"],
                rules["egress"],
            )
        )
    return tiers.ClusterPolicySet(tuple(out))


# -- rendering back to YAML -----------------------------------------------------------------


def _selector(sel: ir.LabelSelector) -> dict[str, Any]:
    out: dict[str, Any] = {}
    labels = {
        r.key: r.values[0]
        for r in sel.requirements
        if r.operator is ir.Operator.IN and len(r.values) == 1
    }
    exprs = [
        r for r in sel.requirements if not (r.operator is ir.Operator.IN and len(r.values) == 1)
    ]
    if labels:
        out["matchLabels"] = labels
    if exprs:
        out["matchExpressions"] = [
            {
                "key": r.key,
                "operator": str(r.operator),
                **({"values": list(r.values)} if r.values else {}),
            }
            for r in exprs
        ]
    return out


def _peer(peer: tiers.ClusterPeer) -> dict[str, Any]:
    if isinstance(peer, ir.PodPeer):
        assert isinstance(peer.namespaces, ir.LabelSelector)
        if peer.pods.is_everything:
            return {"namespaces": _selector(peer.namespaces)}
        return {
            "pods": {
                "namespaceSelector": _selector(peer.namespaces),
                "podSelector": _selector(peer.pods),
            }
        }
    if isinstance(peer, ir.AddressPeer):
        return {"networks": [str(c) for c in peer.addresses.cidrs]}
    if isinstance(peer, tiers.NodesPeer):
        return {"nodes": _selector(peer.nodes)}
    raise AssertionError(f"cannot render {peer!r}")


def _protocols(ports: ir.Ports) -> list[dict[str, Any]]:
    if isinstance(ports, ir.AnyPort):
        return []
    out: list[dict[str, Any]] = []
    named: set[str] = set()
    for entry in ports.entries:
        named.update(entry.named)
        for r in entry.ranges:
            port = (
                {"number": r.start}
                if r.start == r.end
                else {"range": {"start": r.start, "end": r.end}}
            )
            out.append({entry.protocol.lower(): {"destinationPort": port}})
    out.extend({"destinationNamedPort": n} for n in sorted(named))
    return out


def cluster_policy_yaml(policies: tiers.ClusterPolicySet) -> str:
    """The policies as ClusterNetworkPolicy YAML (what the frontend reads back to the same IR)."""
    docs = []
    for p in policies:
        spec: dict[str, Any] = {"tier": str(p.tier), "priority": p.priority}
        if p.subject.pods.is_everything:
            spec["subject"] = {"namespaces": _selector(p.subject.namespaces)}
        else:
            spec["subject"] = {
                "pods": {
                    "namespaceSelector": _selector(p.subject.namespaces),
                    "podSelector": _selector(p.subject.pods),
                }
            }
        for direction, field in (("ingress", "from"), ("egress", "to")):
            rules = []
            for r in p.rules(direction):
                rule: dict[str, Any] = {"action": str(r.action), field: [_peer(x) for x in r.peers]}
                protocols = _protocols(r.ports)
                if protocols:
                    rule["protocols"] = protocols
                rules.append(rule)
            if rules:
                spec[direction] = rules
        docs.append(
            {
                "apiVersion": "policy.networking.k8s.io/v1alpha2",
                "kind": "ClusterNetworkPolicy",
                "metadata": {"name": p.name},
                "spec": spec,
            }
        )
    return kubeyaml.dump_all(docs, explicit_start=True, sort_keys=False, default_flow_style=False)


def random_tier_bundle(seed: int, *, host_network: bool = False) -> npc.Bundle:
    """A random cluster (with nodes), NetworkPolicies and ClusterNetworkPolicies, written as
    YAML and loaded (IPv6 for every third seed)."""
    rng = random.Random(seed)
    ipv6 = seed % 3 == 0
    snap = with_nodes(
        rng, random_cluster(rng, namespaces=3, pods=8, ipv6=ipv6, host_network=host_network)
    )
    policies = random_policies(rng, snap, count=rng.randint(0, 4), ipv6=ipv6)
    cluster = random_cluster_policies(rng, count=rng.randint(1, 4), ipv6=ipv6)
    sources = [
        npc.Source("cnp.yaml", cluster_policy_yaml(cluster)),
        npc.Source("cluster.yaml", cluster_yaml(snap) + nodes_yaml(snap)),
    ]
    if len(policies):
        sources.append(npc.Source("np.yaml", policy_yaml(policies)))
    bundle = npc.load(sources)
    assert bundle.snapshot is not None
    assert len(bundle.cluster_policies) == len(cluster)
    return bundle
