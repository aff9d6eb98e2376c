"""The resolver agrees with the reference semantics on random clusters."""

from __future__ import annotations

import random

import pytest

from npc import ir
from npc.analysis.semantics import Semantics
from npc.flows import Endpoint
from npc.resolve import Resolver
from tests.helpers import http_in_two_containers
from tests.synth import random_cluster, random_policies


@pytest.mark.parametrize("seed", range(40))
def test_selected_and_peer_pods_match_semantics(seed: int) -> None:
    rng = random.Random(seed)
    snap = random_cluster(rng, namespaces=3, pods=12, host_network=True, ipv6=seed % 2 == 0)
    policies = random_policies(rng, snap, count=6, ipv6=seed % 2 == 0)
    sem = Semantics(policies, snap)
    res = Resolver(snap)
    for policy in policies:
        selected = {p.key for p in res.selected(policy)}
        assert selected == {p.key for p in snap.pods if policy in sem.selecting(p)}
        for rules in (policy.ingress or (), policy.egress or ()):
            for rule in rules:
                if not isinstance(rule.peers, tuple):
                    continue
                for peer in rule.peers:
                    if isinstance(peer, ir.PodPeer):
                        got = {p.key for p in res.peer_pods(policy, peer)}
                    else:
                        got = {p.key for p in res.address_pods(peer.addresses)}
                    want = {
                        p.key
                        for p in snap.pods
                        if any(
                            sem.peer_matches(
                                policy, peer, Endpoint(a, None if p.host_network else p, p.key)
                            )
                            for a in p.ips
                        )
                    }
                    assert got == want, (policy.key, peer)


def test_named_port_resolution() -> None:
    rng = random.Random(7)
    snap = random_cluster(rng, namespaces=2, pods=10)
    res = Resolver(snap)
    table = res.named_port("http", ir.Protocol.TCP)
    for number, pods in table.items():
        for p in pods:
            assert number in p.named_port_numbers("http", ir.Protocol.TCP)
    declared = {p.key for p in snap.pods if p.named_port_numbers("http", ir.Protocol.TCP)}
    assert declared == {p.key for pods in table.values() for p in pods}
    everyone = res.podset(res.all_bits)
    ports = ir.ProtocolPorts(ir.Protocol.TCP, (ir.PortRange(443, 443),), ("http",))
    for ranges, pods in res.resolve_ports(ports, everyone):
        for p in pods:
            want = {443, *p.named_port_numbers("http", ir.Protocol.TCP)}
            assert {r.start for r in ranges} == want


def test_a_name_declared_by_two_containers_resolves_to_both_numbers() -> None:
    """The API server accepts one port name in two containers of a pod; the name then stands
    for both numbers, in the resolver's table, and in resolve_ports (isolation
    classes: test_grants)."""
    snap = http_in_two_containers()
    res = Resolver(snap)
    assert snap.pod("a/web").named_port_numbers("http", ir.Protocol.TCP) == (8080, 9090)
    assert {
        n: [p.key for p in pods] for n, pods in res.named_port("http", ir.Protocol.TCP).items()
    } == {
        8080: ["a/web"],
        9090: ["a/web"],
    }
    ports = ir.ProtocolPorts(ir.Protocol.TCP, (), ("http",))
    groups = {
        tuple(p.key for p in pods): ranges
        for ranges, pods in res.resolve_ports(ports, res.podset(res.all_bits))
    }
    assert groups == {("a/web",): (ir.PortRange(8080, 8080), ir.PortRange(9090, 9090))}


@pytest.mark.parametrize("seed", range(10))
def test_named_port_groups_and_namespaces_agree_with_the_pods(seed: int) -> None:
    """The indexes (declared ports, namespace labels, addresses) say what a scan says."""
    rng = random.Random(seed)
    snap = random_cluster(rng, namespaces=4, pods=16, host_network=True, ipv6=seed % 2 == 0)
    res = Resolver(snap)
    for name in ("http", "dns", "metrics", "nosuch"):
        for proto in ir.Protocol:
            groups = res.named_port_groups(name, proto)
            assert [numbers for numbers, _ in groups] == sorted(numbers for numbers, _ in groups)
            seen = 0
            for numbers, bits in groups:
                assert not seen & bits
                seen |= bits
                for p in res.pods_of(bits):
                    assert p.named_port_numbers(name, proto) == numbers
            assert seen == res.all_bits
    for policy in random_policies(rng, snap, count=6):
        for rules in (policy.ingress or (), policy.egress or ()):
            for rule in rules:
                for peer in rule.peers if isinstance(rule.peers, tuple) else ():
                    if isinstance(peer, ir.PodPeer) and isinstance(
                        peer.namespaces, ir.LabelSelector
                    ):
                        want = tuple(
                            ns.name for ns in snap.namespaces if peer.namespaces.matches(ns.labels)
                        )
                        assert res.namespaces_matching(peer.namespaces) == want
    assert res.address_values() == tuple(
        tuple((a.version, int(a)) for a in p.ips) for p in snap.pods
    )
