"""ClusterNetworkPolicy tiers in the real kernel: random clusters, NetworkPolicies and admin
and baseline ClusterNetworkPolicies (Accept, Deny, Pass), loaded with ``npc apply`` into the
namespace lab and probed flow by flow against the reference semantics, on one router and
with per-node rulesets (``--node``) on two. The golden cases, among them the conformance
suite's, are enforced in ``test_nft_kernel.py``."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest

import npc
from tests.kernel.check import assert_enforces_semantics, hosts_of
from tests.kernel.conftest import SHAPE, MakeLab, Ports
from tests.kernel.netns import Lab
from tests.synth import cluster_yaml, policy_yaml, probe_ports, random_cluster, random_policies
from tests.synth_tiers import cluster_policy_yaml, random_cluster_policies


@pytest.fixture(scope="module", params=[None, "per-node"], ids=["one-router", "two-nodes"])
def tier_lab(request: pytest.FixtureRequest, make_module_lab: MakeLab) -> tuple[str | None, Lab]:
    snapshot = random_cluster(random.Random(0), **SHAPE)
    node = None if request.param else "node"
    return request.param, make_module_lab(hosts_of(snapshot, node=node))


@pytest.mark.parametrize("seed", range(6))
def test_random_tiers_are_enforced(
    seed: int,
    tier_lab: tuple[str | None, Lab],
    tmp_path: Path,
    probe_ports_for: Callable[[Ports], Ports],
) -> None:
    mode, lab = tier_lab
    rng = random.Random(11000 + seed)
    snapshot = random_cluster(rng, **SHAPE)
    policies = random_policies(rng, snapshot, count=3)
    cluster = random_cluster_policies(rng, count=3, nodes=False)
    files = [tmp_path / "cnp.yaml", tmp_path / "cluster.yaml", tmp_path / "np.yaml"]
    files[0].write_text(cluster_policy_yaml(cluster), encoding="utf-8")
    files[1].write_text(cluster_yaml(snapshot), encoding="utf-8")
    files[2].write_text(policy_yaml(policies), encoding="utf-8")
    args = [a for f in files for a in ("-f", str(f))]
    for node in sorted(lab.nodes):
        extra = ("--node", node) if mode else ()
        done = lab.npc(node, "apply", "--target", "nft", *args, *extra)
        assert done.returncode == 0, done.stderr
    bundle = npc.load(npc.read_sources([str(f) for f in files]))
    assert bundle.snapshot is not None and len(bundle.cluster_policies) == len(cluster)
    ports = probe_ports_for(probe_ports(bundle.snapshot, bundle.policies))
    assert_enforces_semantics(
        lab, bundle.policies, bundle.snapshot, ports, cluster_policies=bundle.cluster_policies
    )
