"""The optimizer with ClusterNetworkPolicy tiers.

The passes are ``PolicySet -> PolicySet``: they never see a ClusterNetworkPolicy, so ordered
rules with Deny and Pass are never merged, reordered or dropped. What the tiers add is a
stronger demand on the NetworkPolicy passes: with a Baseline tier behind NetworkPolicy, a
pass must keep each *side* of a flow (which pods are isolated, and what their rules admit),
not only the verdict of the whole flow. Checked here: for random clusters, NetworkPolicies
and ClusterNetworkPolicies, the oracle allows the same flows before and after the pipeline.
"""

from __future__ import annotations

import random

import pytest

from npc.analysis.semantics import Semantics
from npc.passes import PASSES, optimize
from tests.flows import flows
from tests.synth import random_cluster, random_policies
from tests.synth_tiers import random_cluster_policies, with_nodes
from tests.test_passes import correlated_policies

_OUTSIDE = ("10.77.0.200", "192.0.2.7", "192.168.7.10", "fd77::1:9")


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("index", [*range(len(PASSES)), -1])
def test_passes_preserve_meaning_under_tiers(index: int, seed: int) -> None:
    rng = random.Random(seed * 31 + index)
    ipv6 = seed % 2 == 1
    snap = with_nodes(rng, random_cluster(rng, namespaces=3, pods=6, ipv6=ipv6, host_network=True))
    if seed % 3 == 0:
        policies = random_policies(rng, snap, count=6, ipv6=ipv6)
    else:
        policies = correlated_policies(rng, snap, count=5)
    cluster = random_cluster_policies(rng, count=3, ipv6=ipv6)
    after = optimize(policies) if index < 0 else PASSES[index](policies)
    a = Semantics(policies, snap, cluster)
    b = Semantics(after, snap, cluster)
    for flow in flows(snap, policies, _OUTSIDE, rng=random.Random(seed)):
        assert a.allowed(flow) == b.allowed(flow), (
            f"seed {seed}: {flow.src} -> {flow.dst} {flow.protocol}/{flow.port}"
        )
