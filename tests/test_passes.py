"""Optimizer passes: per-pass fixtures, and the semantic check that no pass changes meaning.

Fixtures live in ``tests/passes/<pass>.yaml``: each case is a NetworkPolicy and the IR after
that pass alone, in the ``ir`` target's format. The semantic check runs each pass, and the whole
pipeline, over random policy sets and compares the reference semantics flow by flow: every pod
pair on every probe port, plus addresses outside the cluster, IPv4 and IPv6.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import netaddr
import pytest
import yaml

import npc
from npc import ir
from npc.analysis.semantics import Semantics
from npc.backends.base import BackendOptions
from npc.backends.ir.backend import IrBackend
from npc.flows import Flow
from npc.passes import PASSES, optimize
from npc.snapshot import Snapshot
from tests.flows import flows
from tests.synth import (
    random_cluster,
    random_peers,
    random_policies,
    random_ports,
    random_selector,
)

FIXTURES = Path(__file__).parent / "passes"
PASS_BY_NAME = {p.__name__: p for p in PASSES}


def _cases() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for f in sorted(FIXTURES.glob("*.yaml")):
        for case in yaml.safe_load(f.read_text()):
            out.append((f.stem, case))
    return out


def test_every_pass_has_fixtures() -> None:
    assert {f.stem for f in FIXTURES.glob("*.yaml")} == set(PASS_BY_NAME)


@pytest.mark.parametrize("pass_name", sorted(PASS_BY_NAME))
def test_every_pass_has_its_module_and_docstring(pass_name: str) -> None:
    transform = PASS_BY_NAME[pass_name]
    assert transform.__module__ == f"npc.passes.{pass_name}"
    assert (transform.__doc__ or "").strip(), f"{pass_name} does not say what it does"


@pytest.mark.parametrize(
    ("pass_name", "case"), _cases(), ids=[f"{n}:{c['name']}" for n, c in _cases()]
)
def test_pass_fixture(pass_name: str, case: dict[str, Any]) -> None:
    doc = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", **case["policy"]}
    bundle = npc.load([npc.Source("fixture.yaml", yaml.safe_dump(doc))])
    after = PASS_BY_NAME[pass_name](bundle.policies)
    text = IrBackend().emit(after, None, BackendOptions()).text
    assert yaml.safe_load(text)["policies"] == case["expected"]


_OUTSIDE = ("10.77.0.200", "10.77.1.3", "192.0.2.7", "10.78.0.1", "fd77::1:9", "2001:db8::1")


def _flows(snap: Snapshot, policies: ir.PolicySet, rng: random.Random) -> list[Flow]:
    return list(flows(snap, policies, _OUTSIDE, rng=rng))


def _same_meaning(before: ir.PolicySet, after: ir.PolicySet, snap: Snapshot, seed: int) -> None:
    a, b = Semantics(before, snap), Semantics(after, snap)
    for flow in _flows(snap, before, random.Random(seed)):
        assert a.allowed(flow) == b.allowed(flow), (
            f"seed {seed}: {flow.src} -> {flow.dst} {flow.protocol}/{flow.port}"
        )


def correlated_policies(rng: random.Random, snap: Snapshot, count: int) -> ir.PolicySet:
    """Policies whose rules draw peers and ports from a small pool, so that rules share
    peers or ports, cover each other, and hold overlapping ipBlocks: what the passes act on."""
    ipv6 = any(a.version == 6 for p in snap.pods for a in p.ips)
    peer_pool = [random_peers(rng, ipv6) for _ in range(3)]
    port_pool = [random_ports(rng) for _ in range(3)]
    # Widen some pooled port sets into ranges that cover others, named ports included.
    # (Named ports resolve to 80/8080, 9000/9100, 53/5353: some inside 1-1024, some not.)
    port_pool.append(ir.PortSet.of(("TCP", (1, 1024)), ("UDP", None)))
    port_pool.append(ir.PortSet.of(("TCP", (1, 1024)), ("TCP", "http")))
    # Duplicated peers, and a block whose excepts leave it empty, for dedupe_peers.
    first = peer_pool[0]
    if isinstance(first, tuple):
        peer_pool.append(first + first[:1])
    empty = ir.AddressPeer.block("10.77.0.0/31", "10.77.0.0/32", "10.77.0.1/32")
    peer_pool.append((empty, ir.PodPeer(ir.SAME_NAMESPACE, random_selector(rng))))
    policies = []
    for i in range(count):
        rules = []
        for _ in range(rng.randint(1, 4)):
            peers = rng.choice(peer_pool)
            if isinstance(peers, tuple) and rng.random() < 0.3:
                peers = tuple(rng.sample(peers, len(peers)))  # same peers, other order
            rules.append(ir.Rule(peers, rng.choice(port_pool)))
        direction = rng.choice(("ingress", "egress"))
        policies.append(
            ir.Policy(
                rng.choice([ns.name for ns in snap.namespaces]),
                f"c{i}",
                random_selector(rng),
                tuple(rules) if direction == "ingress" else None,
                tuple(rules) if direction == "egress" else None,
            )
        )
    return ir.PolicySet(tuple(policies))


def _generated(pass_name: str, seed: int) -> tuple[Snapshot, ir.PolicySet]:
    """The cluster and policies a pass is checked on (the same for the guard below)."""
    rng = random.Random(seed * 7919 + len(pass_name))
    snap = random_cluster(rng, namespaces=3, pods=6, ipv6=seed % 2 == 1, host_network=True)
    if seed % 3 == 0:
        return snap, random_policies(rng, snap, count=6, ipv6=seed % 2 == 1)
    return snap, correlated_policies(rng, snap, count=5)


@pytest.mark.parametrize("seed", range(25))
@pytest.mark.parametrize("pass_name", [*sorted(PASS_BY_NAME), "pipeline"])
def test_pass_preserves_meaning(pass_name: str, seed: int) -> None:
    snap, policies = _generated(pass_name, seed)
    transform = PASS_BY_NAME.get(pass_name, optimize)
    after = transform(policies)
    _same_meaning(policies, after, snap, seed)


@pytest.mark.parametrize("pass_name", sorted(PASS_BY_NAME))
def test_pass_acts_on_generated_policies(pass_name: str) -> None:
    """Guard against vacuous semantic tests: each pass changes some generated policy set."""
    changed = 0
    for seed in range(25):
        _, policies = _generated(pass_name, seed)
        changed += PASS_BY_NAME[pass_name](policies) != policies
    assert changed >= 3


def test_pipeline_reaches_a_fixpoint_and_is_idempotent() -> None:
    rng = random.Random(11)
    snap = random_cluster(rng, namespaces=3, pods=8)
    policies = random_policies(rng, snap, count=12)
    once = optimize(policies)
    assert optimize(once) == once


def test_pipeline_keeps_isolation_and_policies() -> None:
    rng = random.Random(5)
    snap = random_cluster(rng)
    policies = random_policies(rng, snap, count=10)
    after = optimize(policies)
    assert [p.key for p in after] == [p.key for p in policies]
    for p, q in zip(policies, after, strict=True):
        assert (p.ingress is None) == (q.ingress is None)
        assert (p.egress is None) == (q.egress is None)
        assert p.pod_selector == q.pod_selector


def test_external_address_endpoints_are_used() -> None:
    # Guard against a vacuous semantic test: flows include non-pod addresses.
    rng = random.Random(1)
    snap = random_cluster(rng)
    flows = _flows(snap, random_policies(rng, snap), rng)
    assert any(f.src.pod is None for f in flows)
    assert any(f.dst.address == netaddr.IPAddress("192.0.2.7") for f in flows)
