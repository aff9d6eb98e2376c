"""IR rendered to Kubernetes YAML loads back to the same IR (frontend, lowering, defaulting)."""

from __future__ import annotations

import random

import pytest

import npc
from tests.synth import cluster_yaml, policy_yaml, random_cluster, random_policies


@pytest.mark.parametrize("seed", range(60))
def test_policies_round_trip(seed: int) -> None:
    rng = random.Random(seed)
    snap = random_cluster(rng, namespaces=3, pods=10, ipv6=seed % 3 == 0)
    policies = random_policies(rng, snap, count=5, ipv6=seed % 3 == 0)
    bundle = npc.load(
        [npc.Source("p.yaml", policy_yaml(policies)), npc.Source("c.yaml", cluster_yaml(snap))]
    )
    assert bundle.policies == policies
    assert bundle.snapshot is not None
    assert bundle.snapshot.pods == snap.pods
    assert bundle.snapshot.namespaces == snap.namespaces
