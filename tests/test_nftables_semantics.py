"""The nft ruleset means what the spec says, flow by flow, over many random clusters.

The emitted text is read back by the nft judge (``npc.rulesets.nft``) and every flow between
pods, hostNetwork pods and outside addresses, on every interesting port, is compared with the
reference semantics. (The kernel tests load the same text into the kernel, on fewer cases.)
"""

from __future__ import annotations

import random
from pathlib import Path

import netaddr
import pytest

import npc
from npc import ir
from npc.errors import Severity
from npc.flows import Endpoint
from npc.rulesets import nft
from npc.rulesets.base import Packet
from npc.snapshot import Namespace, Pod, Snapshot
from tests.flow_check import Verdict, packet, wrong_flows
from tests.synth import cluster_yaml, policy_yaml, random_cluster, random_policies

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
GOLDEN_CASES = sorted(p for p in GOLDEN.iterdir() if (p / "cluster.yaml").exists())


class _Text:
    def __init__(self, name: str, text: str) -> None:
        self.name, self.text = name, text


def _judge(text: str, name: str = "ruleset.nft") -> nft.NftJudge:
    return nft.read([_Text(name, text)])


def _allows(judge: nft.NftJudge, first: Packet) -> bool:
    return judge.decide_packet(first).allowed


def _compile(policies: ir.PolicySet, snapshot: npc.snapshot.Snapshot) -> tuple[npc.Bundle, str]:
    bundle = npc.load(
        [
            npc.Source("policies.yaml", policy_yaml(policies)),
            npc.Source("cluster.yaml", cluster_yaml(snapshot)),
        ]
    )
    return bundle, npc.compile(bundle, "nft").text


def _whole(text: str) -> Verdict:
    judge = _judge(text)
    return lambda _src, _dst, packet: _allows(judge, packet)


def _per_node(bundle: npc.Bundle) -> Verdict:
    """Each node's ``--node`` ruleset: a flow passes the forward hook of its source pod's
    node and of its destination pod's node (once when they are the same; outside addresses
    and hostNetwork pods have no node of their own here)."""
    assert bundle.snapshot is not None
    nodes = sorted({p.node_name for p in bundle.snapshot.pods if p.node_name})
    rulesets = {n: _judge(npc.compile(bundle, "nft", {"node": n}).text) for n in nodes}

    def node(endpoint: Endpoint) -> str | None:
        return endpoint.pod.node_name if endpoint.pod is not None else None

    def allows(src: Endpoint, dst: Endpoint, packet: Packet) -> bool:
        hops = {n for n in (node(src), node(dst)) if n is not None}
        return all(_allows(rulesets[n], packet) for n in hops)

    return allows


@pytest.mark.parametrize("seed", range(60))
def test_every_flow_matches_the_reference_semantics(seed: int) -> None:
    rng = random.Random(seed)
    ipv6 = seed % 2 == 1
    snapshot = random_cluster(rng, namespaces=3, pods=8, ipv6=ipv6, host_network=True)
    policies = random_policies(rng, snapshot, count=rng.randint(1, 7), ipv6=ipv6)
    bundle, text = _compile(policies, snapshot)
    checked, wrong = wrong_flows(bundle, _whole(text))
    assert not wrong, f"{len(wrong)} of {checked} flows differ:\n" + "\n".join(wrong[:30])


@pytest.mark.parametrize("seed", range(20))
def test_per_node_rulesets_together_match_the_reference_semantics(seed: int) -> None:
    rng = random.Random(500 + seed)
    ipv6 = seed % 2 == 1
    snapshot = random_cluster(rng, namespaces=3, pods=8, ipv6=ipv6, host_network=True)
    policies = random_policies(rng, snapshot, count=rng.randint(1, 7), ipv6=ipv6)
    bundle, _ = _compile(policies, snapshot)
    checked, wrong = wrong_flows(bundle, _per_node(bundle))
    assert not wrong, f"{len(wrong)} of {checked} flows differ:\n" + "\n".join(wrong[:30])


@pytest.mark.parametrize("case", GOLDEN_CASES, ids=[c.name for c in GOLDEN_CASES])
def test_golden_cases_match_the_reference_semantics(case: Path) -> None:
    """Every golden case with a snapshot, as one ruleset and split per node."""
    bundle = npc.load(npc.read_sources([str(case / "input.yaml"), str(case / "cluster.yaml")]))
    checked, wrong = wrong_flows(bundle, _whole(npc.compile(bundle, "nft").text))
    assert not wrong, f"{len(wrong)} of {checked} flows differ:\n" + "\n".join(wrong[:30])
    checked, wrong = wrong_flows(bundle, _per_node(bundle))
    assert not wrong, f"per node, {len(wrong)} of {checked} flows differ:\n" + "\n".join(wrong[:30])


def test_the_judge_sees_denials() -> None:
    """Guard against a judge that allows everything: a default-deny cluster."""
    rng = random.Random(1)
    snapshot = random_cluster(rng, namespaces=1, pods=3)
    deny = ir.PolicySet((ir.Policy("ns0", "deny", ir.EVERYTHING, ingress=(), egress=()),))
    _, text = _compile(deny, snapshot)
    judge = _judge(text)
    a, b = (p.ips[0] for p in snapshot.pods[:2])
    assert not _allows(judge, packet(a, b, "TCP", 80))
    assert not _allows(judge, packet(netaddr.IPAddress("192.0.2.1"), b, "ICMP"))
    assert _allows(
        judge, packet(netaddr.IPAddress("192.0.2.1"), netaddr.IPAddress("192.0.2.2"), "UDP", 53)
    )


def test_pods_without_a_node_are_enforced_on_every_node() -> None:
    """A pod whose snapshot entry names no node (``spec.nodeName`` missing) could run on any
    node: with ``--node`` its policies are enforced on every node (enforcing a pod's policy
    on a node it does not run on changes no verdict), and a warning says so. Before, such a
    pod was in no node's ruleset: isolated by a deny-all policy, it accepted everything."""
    snapshot = Snapshot(
        (Namespace("a"),),
        (
            Pod("a", "placed", ips=(netaddr.IPAddress("10.0.0.2"),), node_name="n0"),
            Pod("a", "unplaced", ips=(netaddr.IPAddress("10.0.0.3"),)),
        ),
    )
    deny = ir.PolicySet((ir.Policy("a", "deny", ir.EVERYTHING, ingress=(), egress=()),))
    bundle, _ = _compile(deny, snapshot)
    outside = netaddr.IPAddress("192.0.2.1")
    unplaced = netaddr.IPAddress("10.0.0.3")
    artifact = npc.compile(bundle, "nft", {"node": "n0"})
    judge = _judge(artifact.text)
    assert not _allows(judge, packet(outside, unplaced, "TCP", 80))
    assert not _allows(judge, packet(unplaced, outside, "TCP", 80))
    warnings = [d for d in artifact.diagnostics if "a/unplaced" in d.message]
    assert len(warnings) == 1 and warnings[0].severity is Severity.WARNING
    assert "every node" in warnings[0].message
