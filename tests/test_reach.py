"""The reach engine agrees with the reference semantics, pair by pair, on random clusters."""

from __future__ import annotations

import random

import pytest

import npc
from npc import ir
from npc.analysis.reach import Reach
from npc.analysis.semantics import Semantics
from npc.flows import Probe, ProbeSyntaxError, default_probes
from npc.snapshot import Snapshot
from tests.helpers import load
from tests.synth import (
    cluster_yaml,
    policy_yaml,
    probe_ports,
    random_cluster,
    random_policies,
    scaled_cluster,
    scaled_policies,
)


def _disagreements(policies: ir.PolicySet, snap: Snapshot, probes: list[Probe]) -> list[str]:
    sem = Semantics(policies, snap)
    reach = Reach(policies, snap)
    wrong = []
    for probe in probes:
        for src in snap.pods:
            reachable = {p.key for p in reach.reachable(src, probe)}
            for dst in snap.pods:
                want = sem.pod_allowed(src, dst, probe.protocol, probe.port)
                got = reach.allowed(src, dst, probe)
                if got != want or (dst.key in reachable) != want:
                    wrong.append(f"{probe} {src.key} -> {dst.key}: oracle {want}, reach {got}")
    return wrong


@pytest.mark.parametrize("seed", range(60))
def test_agrees_with_oracle_on_random_clusters(seed: int) -> None:
    rng = random.Random(seed)
    ipv6 = seed % 3 == 0
    snap = random_cluster(rng, namespaces=3, pods=14, ipv6=ipv6, host_network=True)
    policies = random_policies(rng, snap, count=rng.randint(1, 8), ipv6=ipv6)
    probes = [Probe(port, proto) for proto, port in probe_ports(snap, policies)]
    assert _disagreements(policies, snap, probes) == []


@pytest.mark.parametrize("seed", range(2))
def test_agrees_with_oracle_on_replicated_clusters(seed: int) -> None:
    """Deployments with replicas make classes of many pods: pairs inside one class are
    evaluated as distinct pods, and each pod still reaches itself."""
    rng = random.Random(seed)
    snap = scaled_cluster(rng, namespaces=16, pods_per_namespace=5)
    policies = scaled_policies(rng, snap, count=50)
    reach = Reach(policies, snap)
    assert len(reach.classes) < len(snap.pods) * 0.7
    assert any(len(c) >= 2 for c in reach.classes)
    probes = [*default_probes(snap), Probe(443), Probe(12345)]
    assert _disagreements(policies, snap, probes) == []


def test_a_class_of_replicas_under_default_deny() -> None:
    bundle = load(
        """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: deny, namespace: shop}
        spec: {podSelector: {}}
        """,
        """
        apiVersion: v1
        kind: List
        items:
        - {apiVersion: v1, kind: Namespace, metadata: {name: shop}}
        - apiVersion: v1
          kind: Pod
          metadata: {name: web-1, namespace: shop, labels: {app: web}}
          status: {podIP: 10.0.0.1}
        - apiVersion: v1
          kind: Pod
          metadata: {name: web-2, namespace: shop, labels: {app: web}}
          status: {podIP: 10.0.0.2}
        """,
    )
    assert bundle.snapshot is not None
    reach = Reach(bundle.policies, bundle.snapshot)
    (cls,) = reach.classes
    assert [p.key for p in cls.pods] == ["shop/web-1", "shop/web-2"]
    web1, web2 = bundle.snapshot.pods
    probe = Probe(80)
    assert not reach.matrix(probe).allows(cls.index, cls.index)
    assert reach.allowed(web1, web1, probe)
    assert not reach.allowed(web1, web2, probe)
    assert [p.key for p in reach.reachable(web2, probe)] == ["shop/web-2"]


def test_probes_every_rule_treats_alike_share_one_matrix() -> None:
    rng = random.Random(5)
    snap = scaled_cluster(rng, namespaces=8, pods_per_namespace=4)
    policies = scaled_policies(rng, snap, count=20)
    reach = Reach(policies, snap)
    assert reach.matrix(Probe(12345)).rows is reach.matrix(Probe(23456)).rows
    assert reach.matrix(Probe(12345)).probe == Probe(12345)


def test_class_matrix_from_loaded_yaml_equals_the_ir_one() -> None:
    """What reach computes from YAML (through npc.load) is what it computes from the IR."""
    rng = random.Random(11)
    snap = random_cluster(rng, namespaces=2, pods=8)
    policies = random_policies(rng, snap, count=4)
    bundle = npc.load(
        [npc.Source("p.yaml", policy_yaml(policies)), npc.Source("c.yaml", cluster_yaml(snap))]
    )
    assert bundle.snapshot is not None
    from_yaml = Reach(bundle.policies, bundle.snapshot)
    direct = Reach(policies, snap)
    for proto, port in probe_ports(snap, policies):
        probe = Probe(port, proto)
        assert from_yaml.matrix(probe).rows == direct.matrix(probe).rows


def test_default_probes_are_the_snapshots_container_ports() -> None:
    rng = random.Random(3)
    snap = random_cluster(rng, namespaces=2, pods=10)
    want = sorted({(cp.port, cp.protocol) for p in snap.pods for cp in p.ports})
    assert [(p.port, p.protocol) for p in default_probes(snap)] == want


@pytest.mark.parametrize(
    ("text", "probe"),
    [
        ("80", Probe(80, ir.Protocol.TCP)),
        ("80/TCP", Probe(80, ir.Protocol.TCP)),
        ("53/udp", Probe(53, ir.Protocol.UDP)),
        (" 2905 / SCTP ", Probe(2905, ir.Protocol.SCTP)),
        ("65535/TCP", Probe(65535)),
    ],
)
def test_probe_parse(text: str, probe: Probe) -> None:
    assert Probe.parse(text) == probe
    assert str(Probe.parse(str(probe))) == str(probe)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("http", "is not PORT[/PROTOCOL]"),
        ("80/ICMP", 'unknown protocol "ICMP"'),
        ("0", "port 0 is not between 1 and 65535"),
        ("70000/UDP", "port 70000 is not between 1 and 65535"),
        ("80/", "is not PORT[/PROTOCOL]"),
    ],
)
def test_probe_parse_errors(text: str, message: str) -> None:
    with pytest.raises(ProbeSyntaxError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Probe.parse(text)
