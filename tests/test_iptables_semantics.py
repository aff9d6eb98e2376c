"""The iptables ruleset means what the spec says, flow by flow, over many random clusters.

The emitted rules and ipsets are read back by the iptables judge (``npc.rulesets.iptables``,
independent of the emitter and checked against the kernel) and every flow between pods,
hostNetwork pods and outside addresses, on every interesting port and ICMP, is compared with the
reference semantics, with ipsets and with ``--sets none``. (The kernel tests load the same text
into the kernel, on fewer cases.)
"""

from __future__ import annotations

import random
from pathlib import Path

import netaddr
import pytest

import npc
from npc import ir
from npc.flows import Endpoint
from npc.rulesets import iptables
from npc.rulesets.base import Packet
from npc.rulesets.iptables.evaluate import IptablesJudge
from tests.flow_check import Verdict, packet, wrong_flows
from tests.synth import cluster_yaml, policy_yaml, random_cluster, random_policies

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
# Those with ClusterNetworkPolicies too (cnp-*, conformance-*): the tier chains.
GOLDEN_CASES = sorted(p for p in GOLDEN.iterdir() if (p / "cluster.yaml").exists())


def _bundle(policies: ir.PolicySet, snapshot: npc.snapshot.Snapshot) -> npc.Bundle:
    return npc.load(
        [
            npc.Source("policies.yaml", policy_yaml(policies)),
            npc.Source("cluster.yaml", cluster_yaml(snapshot)),
        ]
    )


class _Text:
    def __init__(self, name: str, text: str) -> None:
        self.name, self.text = name, text


def _judge(artifact: npc.Artifact) -> IptablesJudge:
    files = dict(artifact.files)
    return iptables.read([_Text("out.ipset", files[".ipset"]), _Text("out", files[""])])


def _whole(bundle: npc.Bundle, sets: str) -> Verdict:
    judge = _judge(npc.compile(bundle, "iptables", {"sets": sets}))
    return lambda _src, _dst, first: judge.decide_packet(first).allowed


def _per_node(bundle: npc.Bundle, sets: str) -> Verdict:
    """Each node's ``--node`` ruleset: a flow passes the node of its source pod and the node
    of its destination pod (once when they are the same)."""
    assert bundle.snapshot is not None
    nodes = sorted({p.node_name for p in bundle.snapshot.pods if p.node_name})
    judges = {
        n: _judge(npc.compile(bundle, "iptables", {"node": n, "sets": sets})) for n in nodes
    }

    def node(endpoint: Endpoint) -> str | None:
        return endpoint.pod.node_name if endpoint.pod is not None else None

    def allows(src: Endpoint, dst: Endpoint, first: Packet) -> bool:
        hops = {n for n in (node(src), node(dst)) if n is not None}
        return all(judges[n].decide_packet(first).allowed for n in hops)

    return allows


@pytest.mark.parametrize("sets", ["ipset", "none"])
@pytest.mark.parametrize("seed", range(30))
def test_every_flow_matches_the_reference_semantics(seed: int, sets: str) -> None:
    rng = random.Random(seed)
    ipv6 = seed % 2 == 1
    snapshot = random_cluster(rng, namespaces=3, pods=8, ipv6=ipv6, host_network=True)
    policies = random_policies(rng, snapshot, count=rng.randint(1, 7), ipv6=ipv6)
    bundle = _bundle(policies, snapshot)
    checked, wrong = wrong_flows(bundle, _whole(bundle, sets))
    assert not wrong, f"{len(wrong)} of {checked} flows differ:\n" + "\n".join(wrong[:30])


@pytest.mark.parametrize("seed", range(12))
def test_per_node_rulesets_together_match_the_reference_semantics(seed: int) -> None:
    rng = random.Random(500 + seed)
    ipv6 = seed % 2 == 1
    snapshot = random_cluster(rng, namespaces=3, pods=8, ipv6=ipv6, host_network=True)
    policies = random_policies(rng, snapshot, count=rng.randint(1, 7), ipv6=ipv6)
    bundle = _bundle(policies, snapshot)
    checked, wrong = wrong_flows(bundle, _per_node(bundle, "ipset"))
    assert not wrong, f"{len(wrong)} of {checked} flows differ:\n" + "\n".join(wrong[:30])


@pytest.mark.parametrize("case", GOLDEN_CASES, ids=[c.name for c in GOLDEN_CASES])
def test_golden_cases_match_the_reference_semantics(case: Path) -> None:
    """Every golden case with a snapshot: one ruleset, without sets, and split per node."""
    bundle = npc.load(npc.read_sources([str(case / "input.yaml"), str(case / "cluster.yaml")]))
    for name, verdict in (
        ("ipset", _whole(bundle, "ipset")),
        ("--sets none", _whole(bundle, "none")),
        ("per node", _per_node(bundle, "ipset")),
    ):
        checked, wrong = wrong_flows(bundle, verdict)
        assert not wrong, f"{name}: {len(wrong)} of {checked} flows differ:\n" + "\n".join(
            wrong[:30]
        )


def test_the_judge_sees_denials() -> None:
    """Guard against a judge that allows everything: a default-deny cluster."""
    rng = random.Random(1)
    snapshot = random_cluster(rng, namespaces=1, pods=3)
    deny = ir.PolicySet((ir.Policy("ns0", "deny", ir.EVERYTHING, ingress=(), egress=()),))
    judge = _judge(npc.compile(_bundle(deny, snapshot), "iptables"))
    a, b = (p.ips[0] for p in snapshot.pods[:2])
    assert not judge.decide_packet(packet(a, b, "TCP", 80)).allowed
    assert not judge.decide_packet(packet(netaddr.IPAddress("192.0.2.1"), b, "ICMP")).allowed
    assert judge.decide_packet(
        packet(netaddr.IPAddress("192.0.2.1"), netaddr.IPAddress("192.0.2.2"), "UDP", 53)
    ).allowed
