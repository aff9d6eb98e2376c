"""Calico output, read back with Calico's semantics, allows exactly what the spec allows.

The emitted YAML is parsed again (:func:`npc.rulesets.calico.model.load_objects`) and every flow is
decided by :class:`npc.rulesets.calico.evaluate.CalicoSemantics` and by the reference
:class:`npc.analysis.semantics.Semantics`: pods (hostNetwork ones included) and external addresses,
IPv4 and IPv6, every probe port. Over the golden snapshots and random clusters, for both
scopes, and for policies large enough to be split.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

import npc
from npc import ir
from npc.analysis.semantics import Semantics
from npc.flows import Flow
from npc.rulesets.calico.evaluate import CalicoSemantics
from npc.rulesets.calico.model import load_objects
from npc.snapshot import Snapshot
from tests.flows import endpoints
from tests.flows import flows as every_flow
from tests.synth import (
    cluster_yaml,
    large_policy,
    policy_yaml,
    random_cluster,
    random_policies,
)

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
SCOPES = ("global", "namespaced")
#: Addresses outside the cluster: inside and outside the synthetic ipBlocks.
EXTERNAL = ("10.77.1.250", "10.77.2.129", "192.0.2.10", "172.17.1.9", "fd77::1:fe", "2001:db8::1")


def flows(
    snapshot: Snapshot, policies: ir.PolicySet, externals: tuple[str, ...] = EXTERNAL
) -> Iterator[Flow]:
    return (f for f in every_flow(snapshot, policies, externals) if f.src.pod or f.dst.pod)


def assert_equivalent(bundle: npc.Bundle, text: str) -> int:
    """Compare flow by flow; returns how many flows were compared."""
    assert bundle.snapshot is not None
    calico = CalicoSemantics(load_objects(text), bundle.snapshot)
    spec = Semantics(bundle.policies, bundle.snapshot, bundle.cluster_policies)
    count = 0
    wrong = []
    for flow in flows(bundle.snapshot, bundle.policies):
        count += 1
        if (
            flow.src.pod is not None
            and spec.own_node(flow.src.pod, flow.dst)
            and not calico.decide(flow).egress.allowed
        ):
            # Calico applies a workload's egress policy to traffic to its own host (the one
            # documented divergence, and a stricter one): the spec allows it (rule 8).
            assert spec.allowed(flow)
            continue
        if calico.allowed(flow) != spec.allowed(flow):
            d = calico.decide(flow)
            wrong.append(
                f"{flow.src} -> {flow.dst} {flow.protocol}/{flow.port}: spec "
                f"{spec.allowed(flow)}, calico {d.allowed} ({d.egress.reason}; {d.ingress.reason})"
            )
    assert not wrong, f"{len(wrong)} of {count} flows differ:\n" + "\n".join(wrong[:20])
    return count


def _golden_cases() -> list[Path]:
    return sorted(p for p in GOLDEN.iterdir() if (p / "cluster.yaml").exists())


@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("case", _golden_cases(), ids=lambda p: p.name)
def test_golden_snapshots(case: Path, scope: str) -> None:
    sources = [
        npc.Source(name, (case / name).read_text(encoding="utf-8"))
        for name in ("input.yaml", "cluster.yaml")
    ]
    bundle = npc.load(sources)
    if (case / "expected.calico.yaml.error").exists():
        pytest.skip("calico refuses this case (its golden .error file says why)")
    text = npc.compile(bundle, "calico", {"calico_scope": scope}).text
    assert assert_equivalent(bundle, text) > 50


@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("seed", range(24))
def test_random_clusters(seed: int, scope: str) -> None:
    rng = random.Random(seed)
    ipv6 = seed % 2 == 0
    snap = random_cluster(rng, namespaces=3, pods=9, ipv6=ipv6, host_network=True)
    policies = random_policies(rng, snap, count=5, ipv6=ipv6)
    bundle = npc.load(
        [npc.Source("p.yaml", policy_yaml(policies)), npc.Source("c.yaml", cluster_yaml(snap))]
    )
    text = npc.compile(bundle, "calico", {"calico_scope": scope}).text
    assert_equivalent(bundle, text)


@pytest.mark.parametrize("optimize", [False, True], ids=["as-written", "optimized"])
def test_split_policies_keep_their_meaning(optimize: bool) -> None:
    """A policy beyond every Calico limit (rules, ports, nets, excepts) is split, and the
    parts together still allow exactly what it allows (optimized, its ipBlocks merge into
    one rule whose nets are split instead)."""
    rng = random.Random(5)
    snap = random_cluster(rng, namespaces=2, pods=8, ipv6=True)
    policy = large_policy(snap, rules=1100, ports=120, blocks=20, excepts=300)
    policies = ir.PolicySet((policy,))
    bundle = npc.load(
        [npc.Source("p.yaml", policy_yaml(policies)), npc.Source("c.yaml", cluster_yaml(snap))]
    )
    text = npc.compile(bundle, "calico", optimize_ir=optimize).text
    objects = load_objects(text)
    if not optimize:
        assert len(objects.policies) == 2
        assert max(len(p.ingress) for p in objects.policies) == 1024
    assert all(len(r.source.nets) <= 256 for p in objects.policies for r in p.ingress)
    calico = CalicoSemantics(objects, snap)
    spec = Semantics(bundle.policies, snap)
    externals = ("10.99.1.7", "10.99.1.8", "10.98.0.19", "fd99::5", "192.0.2.1")
    probes = [(ir.Protocol.TCP, p) for p in (1000, 1001, 1238, 5003, 6099)]
    probes += [(ir.Protocol.UDP, 53), (ir.Protocol.SCTP, 1000)]
    verdicts = []
    selected = [e for e in endpoints(snap, ()) if e.pod and e.pod.namespace == policy.namespace]
    for src in endpoints(snap, externals):
        for dst in selected:
            if src.address.version != dst.address.version:
                continue
            for protocol, port in probes:
                flow = Flow(src, dst, protocol, port)
                verdicts.append(spec.allowed(flow))
                assert calico.allowed(flow) == verdicts[-1], (str(src), str(dst), port)
    assert len(verdicts) > 200
    assert 0.1 < sum(verdicts) / len(verdicts) < 0.9, "the probes should meet both verdicts"
