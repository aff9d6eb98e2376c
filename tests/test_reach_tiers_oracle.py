"""The tiered class engine (:mod:`npc.analysis.reach_tiers`) against the oracle: on random
clusters (hostNetwork pods, nodes, dual-stack), NetworkPolicies and ClusterNetworkPolicies,
on every probe the policies and the tiers name, every pod pair's verdict equals the
oracle's."""

from __future__ import annotations

import random

import pytest

from npc.analysis.flowspace import policy_probes
from npc.analysis.reach_tiers import TieredReach
from npc.analysis.semantics import Semantics
from tests.synth import random_cluster, random_policies
from tests.synth_tiers import random_cluster_policies, with_nodes


@pytest.mark.parametrize("seed", range(40))
def test_tiered_reach_equals_the_oracle(seed: int) -> None:
    rng = random.Random(1000 + seed)
    ipv6 = seed % 3 == 0
    snap = with_nodes(
        rng, random_cluster(rng, namespaces=3, pods=10, ipv6=ipv6, host_network=seed % 2 == 0)
    )
    policies = random_policies(rng, snap, count=rng.randint(0, 5), ipv6=ipv6)
    cluster = random_cluster_policies(rng, count=rng.randint(1, 6), ipv6=ipv6)
    reach = TieredReach(policies, snap, cluster)
    sem = Semantics(policies, snap, cluster)
    for probe in policy_probes((policies,), snap, (cluster,)):
        for src in snap.pods:
            for dst in snap.pods:
                verdict = sem.pod_allowed(src, dst, probe.protocol, probe.port)
                assert reach.allowed(src, dst, probe) == verdict, (probe, src.key, dst.key)
