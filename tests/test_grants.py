"""Isolation classes and grants (``npc.backends.grants``): what every address-based target
builds on, checked against the reference semantics."""

from __future__ import annotations

import random

import netaddr
import pytest

from npc import ir
from npc.analysis.semantics import Semantics
from npc.backends.grants import Grants
from npc.errors import UnsupportedError, ValidationError
from npc.snapshot import Namespace, Node, Pod, Snapshot
from tests.helpers import http_in_two_containers
from tests.synth import random_cluster, random_policies


def test_a_name_declared_by_two_containers_gives_a_class_both_numbers() -> None:
    snap = http_in_two_containers()
    ports = ir.ProtocolPorts(ir.Protocol.TCP, (), ("http",))
    policy = ir.Policy("a", "p", ingress=(ir.Rule(ports=ir.PortSet((ports,))),))
    classes = Grants(ir.PolicySet((policy,)), snap).classes(ir.Direction.INGRESS)
    assert [(c.named_ports, [p.key for p in c.pods]) for c in classes] == [
        ((("http", ir.Protocol.TCP, ()),), ["a/plain"]),
        ((("http", ir.Protocol.TCP, (8080, 9090)),), ["a/web"]),
    ]
    assert classes[1].resolve("http", ir.Protocol.TCP) == (8080, 9090)
    assert classes[0].resolve("http", ir.Protocol.TCP) == ()


@pytest.mark.parametrize("seed", range(30))
def test_isolation_classes_partition_isolated_pods(seed: int) -> None:
    rng = random.Random(seed)
    snap = random_cluster(rng, namespaces=3, pods=14, host_network=True)
    policies = random_policies(rng, snap, count=8)
    sem = Semantics(policies, snap)
    grants = Grants(policies, snap)
    for direction in ir.DIRECTIONS:
        classes = grants.classes(direction)
        seen: set[str] = set()
        for cls in classes:
            assert cls.pods, "no empty classes"
            for pod in cls.pods:
                assert pod.key not in seen
                seen.add(pod.key)
                assert cls.policies == sem.isolating(pod, direction)
                for name, proto, numbers in cls.named_ports:
                    assert pod.named_port_numbers(name, proto) == numbers
        isolated = {p.key for p in snap.pods if sem.isolating(p, direction)}
        assert seen == isolated
        if direction == "egress":
            assert all(not c.named_ports for c in classes)
        keys = [(c.policies, c.named_ports) for c in classes]
        assert len(set(keys)) == len(keys), "one class per (policies, resolution)"


def _two_nodes() -> Snapshot:
    pods = tuple(
        Pod("ns0", f"pod{i}", ips=(netaddr.IPAddress(f"10.0.0.{i + 1}"),), node_name=node)
        for i, node in enumerate(("n1", "n2", ""))
    )
    return Snapshot((Namespace("ns0"),), pods, nodes=(Node("n1"), Node("n2")))


def test_a_node_keeps_its_pods_and_those_that_name_no_node() -> None:
    snap = _two_nodes()
    deny = ir.PolicySet((ir.Policy("ns0", "deny", ir.EVERYTHING, ingress=()),))
    grants = Grants(deny, snap, node="n1")
    (cls,) = grants.classes(ir.Direction.INGRESS)
    assert [p.key for p in cls.pods] == ["ns0/pod0", "ns0/pod2"]
    assert [d.message.split(":")[0] for d in grants.diagnostics] == [
        "pod ns0/pod2 has no spec.nodeName"
    ]
    assert grants.pod_addresses(cls.pods.bits).hosts == {4: {0x0A000001, 0x0A000003}, 6: set()}
    assert Grants(deny, snap).diagnostics == ()


def test_an_unknown_node_and_shared_addresses_are_refused() -> None:
    snap = _two_nodes()
    deny = ir.PolicySet((ir.Policy("ns0", "deny", ir.EVERYTHING, ingress=()),))
    with pytest.raises(ValidationError, match="--node n3: no such node"):
        Grants(deny, snap, node="n3")
    twin = Pod("ns0", "twin", ips=(netaddr.IPAddress("10.0.0.1"),), node_name="n1")
    shared = Snapshot(snap.namespaces, (*snap.pods, twin), nodes=snap.nodes)
    with pytest.raises(UnsupportedError, match=r"share address 10\.0\.0\.1"):
        Grants(deny, shared)


def test_copies_of_a_policy_in_other_namespaces_share_their_grants() -> None:
    rng = random.Random(5)
    snap = random_cluster(rng, namespaces=3, pods=9)
    dns = ir.Rule(ports=ir.PortSet((ir.ProtocolPorts(ir.Protocol.UDP, (ir.PortRange(53, 53),)),)))
    same = ir.Rule(peers=(ir.PodPeer(ir.SAME_NAMESPACE, ir.EVERYTHING),))
    policies = ir.PolicySet(
        tuple(
            ir.Policy(ns.name, "p", ir.EVERYTHING, egress=(dns,), ingress=(same,))
            for ns in snap.namespaces
        )
    )
    grants = Grants(policies, snap)
    egress = grants.classes(ir.Direction.EGRESS)
    keys = {grants.sharing_key(c.policies[0], ir.Direction.EGRESS, c) for c in egress}
    assert len(egress) == 3 and len(keys) == 1
    ingress = grants.classes(ir.Direction.INGRESS)
    keys = {grants.sharing_key(c.policies[0], ir.Direction.INGRESS, c) for c in ingress}
    assert len(keys) == 3, "rules that name their own namespace do not share"
