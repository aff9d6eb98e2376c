"""The calico target with ClusterNetworkPolicy tiers, read back by the Calico judge
(:mod:`npc.rulesets.calico`) and compared flow by flow with the reference semantics on
random clusters; the golden cases (the conformance suite's among them) are compared in
``tests/test_calico_equivalence.py`` and schema-checked in ``tests/test_calico_schema.py``."""

from __future__ import annotations

import random

import pytest
import yaml

import npc
from npc.errors import UnsupportedError
from tests.synth import cluster_yaml, policy_yaml, random_cluster, random_policies
from tests.synth_tiers import cluster_policy_yaml, random_cluster_policies
from tests.test_calico_equivalence import assert_equivalent

NODES = """\
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: no-ssh}
spec:
  tier: Admin
  priority: 1
  subject: {namespaces: {}}
  egress:
  - action: Deny
    to: [{nodes: {}}]
"""


@pytest.mark.parametrize("scope", ["global", "namespaced"])
@pytest.mark.parametrize("seed", range(24))
def test_random_tiers_agree_with_the_oracle(seed: int, scope: str) -> None:
    rng = random.Random(seed)
    ipv6 = seed % 2 == 0
    snap = random_cluster(rng, namespaces=3, pods=8, ipv6=ipv6, host_network=True)
    policies = random_policies(rng, snap, count=rng.randint(0, 4), ipv6=ipv6)
    cluster = random_cluster_policies(rng, count=rng.randint(1, 4), ipv6=ipv6, nodes=False)
    sources = [
        npc.Source("cnp.yaml", cluster_policy_yaml(cluster)),
        npc.Source("c.yaml", cluster_yaml(snap)),
    ]
    if len(policies):
        sources.append(npc.Source("p.yaml", policy_yaml(policies)))
    bundle = npc.load(sources)
    text = npc.compile(bundle, "calico", {"calico_scope": scope}).text
    kinds = [d["kind"] for d in yaml.safe_load_all(text) if d]
    assert kinds.count("Tier") == 2
    assert assert_equivalent(bundle, text) > 50


def test_calico_mapping_of_tiers_and_actions() -> None:
    text = npc.compile(
        [npc.Source("p.yaml", NODES.replace("nodes: {}", "networks: [10.0.0.0/8]"))], "calico"
    ).text
    tier, _, gnp = [d for d in yaml.safe_load_all(text) if d]
    assert tier == {
        "apiVersion": "projectcalico.org/v3",
        "kind": "Tier",
        "metadata": {"name": "kube-admin"},
        "spec": {"order": 1000, "defaultAction": "Pass"},
    }
    assert gnp["metadata"]["name"] == "kube-admin.no-ssh"
    assert gnp["spec"]["tier"] == "kube-admin" and gnp["spec"]["order"] == 1
    assert gnp["spec"]["egress"] == [{"action": "Deny", "destination": {"nets": ["10.0.0.0/8"]}}]
    assert gnp["spec"]["types"] == ["Egress"]


def test_nodes_peers_are_refused_naming_the_policy() -> None:
    with pytest.raises(UnsupportedError) as info:
        npc.compile([npc.Source("p.yaml", NODES)], "calico")
    (d,) = info.value.diagnostics
    assert "ClusterNetworkPolicy no-ssh: target calico cannot express nodes peers" in d.message
    assert d.location is not None and (d.location.line, d.location.column) == (10, 18)
