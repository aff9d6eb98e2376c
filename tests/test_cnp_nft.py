"""The nft target with ClusterNetworkPolicy tiers, against the reference semantics: random
clusters, NetworkPolicies and ClusterNetworkPolicies, written as YAML, compiled by npc and
run through the nft interpreter (:mod:`tests.nft_sim`) flow by flow. The kernel tests run
the golden cases (the conformance suite's among them) in the real kernel."""

from __future__ import annotations

import random

import pytest

import npc
from npc.analysis.semantics import Semantics
from tests.flows import flows
from tests.nft_sim import Packet, Ruleset
from tests.synth import cluster_yaml, policy_yaml, random_cluster, random_policies
from tests.synth_tiers import cluster_policy_yaml, random_cluster_policies, with_nodes

OUTSIDE = ("192.0.2.1", "10.77.9.9", "192.168.7.10", "2001:db8::1")


@pytest.mark.parametrize("seed", range(40))
def test_nft_tiers_agree_with_the_oracle(seed: int) -> None:
    rng = random.Random(seed)
    ipv6 = seed % 3 == 0
    snap = with_nodes(rng, random_cluster(rng, namespaces=3, pods=8, ipv6=ipv6))
    policies = random_policies(rng, snap, count=rng.randint(0, 4), ipv6=ipv6)
    cluster = random_cluster_policies(rng, count=rng.randint(1, 4), ipv6=ipv6)
    sources = [
        npc.Source("cnp.yaml", cluster_policy_yaml(cluster)),
        npc.Source("cluster.yaml", cluster_yaml(snap) + _nodes_yaml(snap)),
    ]
    if len(policies):
        sources.append(npc.Source("np.yaml", policy_yaml(policies)))
    bundle = npc.load(sources)
    assert bundle.snapshot is not None
    assert len(bundle.cluster_policies) == len(cluster)
    text = npc.compile(bundle, "nft").text
    ruleset = Ruleset.parse(text)
    sem = Semantics(bundle.policies, bundle.snapshot, bundle.cluster_policies)
    wrong = []
    for flow in flows(bundle.snapshot, bundle.policies, OUTSIDE, rng=rng, sample=4):
        local = (flow.src.pod is not None and sem.own_node(flow.src.pod, flow.dst)) or (
            flow.dst.pod is not None and sem.own_node(flow.dst.pod, flow.src)
        )
        packet = Packet(flow.src.address, flow.dst.address, flow.protocol.value, flow.port)
        got = local or ruleset.allows(packet)
        if got != sem.allowed(flow):
            wrong.append(f"{flow.src} -> {flow.dst} {flow.protocol}/{flow.port}: nft {got}")
    assert wrong == [], f"seed {seed}:\n" + "\n".join(wrong[:20])


def _nodes_yaml(snap: npc.snapshot.Snapshot) -> str:
    docs = [
        "---\napiVersion: v1\nkind: Node\n"
        f"metadata: {{name: {n.name}, labels: {{role: {n.labels['role']}}}}}\n"
        "status: {addresses: ["
        + ", ".join(f"{{type: {t}, address: '{a}'}}" for t, a in n.addresses)
        + "]}\n"
        for n in snap.nodes
    ]
    return "".join(docs)
