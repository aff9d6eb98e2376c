"""``npc verify`` at scale, without losing soundness.

verify asks a judge about many flows at once (:class:`npc.rulesets.base.Batched`) and once
per group of endpoints it cannot tell apart (:class:`~npc.rulesets.base.Partitioned`). Both
must be exact, so this module checks:

* every batched judge (nft, iptables) agrees with its own per-flow ``decide`` on every flow
  of random clusters (pods, outside addresses, node addresses, IPv4 and IPv6), on npc's
  output and on hand-doctored rulesets;
* grouped verify finds exactly what the ungrouped one (``exhaustive=True``: every flow asked
  one at a time) finds, on random clusters with doctored rulesets;
* doctoring that grouping could hide is caught: a set element singling out one of several
  replicas with identical labels, an IPv6-only difference, an ``except`` boundary moved.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

import npc
from npc import ir, tiers
from npc.analysis.verify import verify as verify_judge
from npc.flows import Endpoint, Flow, Probe, node_addresses
from npc.rulesets import iptables
from npc.rulesets.base import Batched, Judge
from npc.snapshot import Snapshot
from tests.synth import random_cluster, random_policies
from tests.synth_tiers import random_tier_bundle

PROBES = (Probe(53, ir.Protocol.UDP), Probe(80), Probe(443), Probe(8080))


def _judge(target: str, text: str, snap: Snapshot) -> Judge:
    return npc.api.judge(target, [npc.Source(f"r.{target}", text)], snap)


def _endpoints(snap: Snapshot) -> list[Endpoint]:
    """Every pod at each of its addresses, the nodes' addresses, a few outside ones."""
    found = [Endpoint.of_pod(p, a.version) for p in snap.pods for a in p.ips]
    found += [Endpoint.of_address(a) for a in node_addresses(snap)]
    outside = ("198.51.100.7", "10.77.9.9", "0.0.0.1", "2001:db8::7", "fd77::9:9", "::1")
    found += [Endpoint.of_address(a) for a in outside]
    return found


def _random(seed: int) -> tuple[Snapshot, ir.PolicySet]:
    rng = random.Random(seed)
    ipv6 = seed % 2 == 1
    snap = random_cluster(rng, 3, 9, ipv6=ipv6, host_network=seed % 3 == 0)
    return snap, random_policies(rng, snap, 5, ipv6=ipv6)


def _doctorings(target: str, text: str) -> Iterator[str]:
    yield text
    lines = text.splitlines(keepends=True)
    rng = random.Random(len(text))
    for _ in range(3):  # drop a rule line at random
        candidates = [
            i
            for i, line in enumerate(lines)
            if ("accept" in line or "return" in line or "-j ACCEPT" in line or "RETURN" in line)
            and "ct state" not in line
            and "ESTABLISHED" not in line
        ]
        if candidates:
            i = rng.choice(candidates)
            yield "".join(lines[:i] + lines[i + 1 :])


def _check_batched(
    judge: Judge, endpoints: list[Endpoint], probes: tuple[Probe, ...] = PROBES
) -> int:
    assert isinstance(judge, Batched)
    rows = judge.rows(endpoints)
    checked = 0
    for src in endpoints:
        for probe in probes:
            bits = rows.allowed(src, probe.protocol, probe.port)
            for k, dst in enumerate(endpoints):
                want = False
                if dst.address.version == src.address.version:
                    want = judge.decide(Flow(src, dst, probe.protocol, probe.port)).allowed
                    checked += 1
                assert bool(bits >> k & 1) == want, (src, dst, probe)
    return checked


@pytest.mark.parametrize("target", ["nft", "iptables"])
@pytest.mark.parametrize("seed", range(8))
def test_batched_judge_agrees_with_decide(target: str, seed: int) -> None:
    snap, policies = _random(seed)
    bundle = npc.Bundle(policies, snap)
    text = npc.compile(bundle, target).text
    endpoints = _endpoints(snap)
    for doctored in _doctorings(target, text):
        assert _check_batched(_judge(target, doctored, snap), endpoints) > 0


HAND_NFT = """table inet t {
	set pair {
		type ipv4_addr . ipv4_addr
		flags interval
		elements = { 10.77.0.2 . 10.77.1.0/24, 10.77.0.0/16 . 10.77.2.3 }
	}
	map to {
		type ipv4_addr : verdict
		flags interval
		elements = { 10.77.1.2 : jump c, 10.77.0.0/16 : goto d, 10.77.2.0/24 : continue }
	}
	chain c {
		ip daddr != { 10.77.1.3, 10.77.1.5 } tcp dport 80 return
		udp dport 53 accept
		drop
	}
	chain d {
		ip saddr 10.77.0.3 drop
		ip6 daddr fd77::/16 drop
	}
	chain f {
		type filter hook forward priority 0; policy accept;
		ip saddr . ip daddr @pair accept
		ip daddr vmap @to
		tcp dport 443 ip daddr 10.77.2.0-10.77.2.4 drop
	}
	chain g {
		type filter hook forward priority 10; policy drop;
		meta nfproto ipv6 accept
		ip daddr 10.77.0.0/15 th dport { 53, 80, 443 } accept
	}
}
"""


def test_batched_nft_hand_written_ruleset() -> None:
    """Concatenations of two addresses, negated anonymous sets, verdict maps with jump,
    goto and continue, ranges, and two base chains (the second's policy drop)."""
    snap, _ = _random(1)
    judge = _judge("nft", HAND_NFT, snap)
    extra = [Endpoint.of_address(f"10.77.{a}.{b}") for a in (0, 1, 2) for b in (2, 3, 4, 5)]
    assert _check_batched(judge, _endpoints(snap) + extra) > 0


HAND_NFT_BLIND = """table inet t {
	set allowed {
		type ipv4_addr
		flags interval
		elements = { 10.77.0.2, 10.77.1.0/30 }
	}
	set svc {
		type ipv4_addr . inet_proto . inet_service
		flags interval
		elements = { 10.77.0.3 . tcp . 80-90, 10.77.2.4 . udp . 53 }
	}
	map in {
		type ipv4_addr : verdict
		flags interval
		elements = { 10.77.1.2 : jump a, 10.77.1.3 : goto b, 10.77.2.0/24 : jump c,
			10.77.0.4 : accept, 10.77.1.4 : drop, 10.77.1.5 : jump a }
	}
	chain a {
		ip saddr @allowed tcp dport 80 accept
		ip saddr . meta l4proto . th dport @svc accept
		tcp dport 443 return
		drop
	}
	chain b {
		ip saddr != @allowed udp dport 53-60 drop
		jump a
	}
	chain c {
		ip saddr 10.77.0.0/16 tcp dport { 22, 80-81 } accept
		ip saddr 10.77.2.5 drop
	}
	chain f {
		type filter hook forward priority 0; policy accept;
		ip daddr vmap @in
		tcp dport 8080 drop
	}
}
"""


def test_batched_nft_map_into_chains_blind_to_the_destination() -> None:
    """A verdict map into chains that read only the source and the port (each source
    singled out by some chains' sets, not by others; probes the port sets tell apart and
    ones they do not), many candidates per element: rows take the map at once."""
    snap, _ = _random(2)
    judge = _judge("nft", HAND_NFT_BLIND, snap)
    extra = [Endpoint.of_address(f"10.77.{a}.{b}") for a in (0, 1, 2) for b in range(1, 7)]
    probes = (*PROBES, Probe(81), Probe(22), Probe(54, ir.Protocol.UDP), Probe(85), Probe(90))
    for _ in range(2):  # once more: the second pass meets what the first remembered
        assert _check_batched(judge, extra * 3 + _endpoints(snap), probes) > 0


KUBE_ROUTER = Path(__file__).resolve().parent / "data" / "iptables" / "kube-router"


@pytest.mark.parametrize("bridged", [False, True])
def test_batched_iptables_kube_router_node(bridged: bool) -> None:
    """Marks carried through jumps, ipset ``nomatch`` entries, ``-g``, physdev."""
    names = ("iptables-save.txt", "ip6tables-save.txt", "ipset-save.txt")
    texts = [npc.Source(n, (KUBE_ROUTER / n).read_text(encoding="utf-8")) for n in names]
    bundle = npc.load(
        npc.read_sources([str(KUBE_ROUTER / "policies.yaml"), str(KUBE_ROUTER / "cluster.yaml")])
    )
    assert bundle.snapshot is not None
    judge = iptables.read(texts, bundle.snapshot, bridged=bridged)
    outside = ("192.0.2.1", "192.0.2.200", "10.9.9.9", "2001:db8::1", "fc00::1", "4000::1")
    endpoints = _endpoints(bundle.snapshot) + [Endpoint.of_address(a) for a in outside]
    assert _check_batched(judge, endpoints) > 200


# -- grouped verify equals the exhaustive one --------------------------------------------


def _verify(
    bundle: npc.Bundle, target: str, text: str, *, exhaustive: bool, node: str | None = None
) -> npc.api.VerifyReport:
    assert bundle.snapshot is not None
    judge = _judge(target, text, bundle.snapshot)
    return verify_judge(
        bundle.policies,
        bundle.snapshot,
        judge,
        target=target,
        node=node,
        probes=PROBES,
        exhaustive=exhaustive,
    )


def _same(bundle: npc.Bundle, target: str, text: str, node: str | None = None) -> None:
    grouped = _verify(bundle, target, text, exhaustive=False, node=node)
    naive = _verify(bundle, target, text, exhaustive=True, node=node)
    assert grouped.differences == naive.differences
    assert (grouped.pod_flows, grouped.outside_flows) == (naive.pod_flows, naive.outside_flows)
    assert grouped.asked <= naive.asked


@pytest.mark.parametrize("target", ["nft", "iptables"])
@pytest.mark.parametrize("seed", range(6))
def test_grouped_verify_equals_exhaustive(target: str, seed: int) -> None:
    snap, policies = _random(seed)
    other = random_policies(random.Random(seed + 100), snap, 4, ipv6=seed % 2 == 1)
    bundle = npc.Bundle(policies, snap)
    # npc's output of other policies: differences everywhere, all must be found
    for text in _doctorings(target, npc.compile(npc.Bundle(other, snap), target).text):
        _same(bundle, target, text)


@pytest.mark.parametrize("seed", range(4))
def test_grouped_verify_equals_exhaustive_per_node(seed: int) -> None:
    snap, policies = _random(seed)
    bundle = npc.Bundle(policies, snap)
    nodes = sorted({p.node_name for p in snap.pods if p.node_name})
    for node in nodes[:2]:
        text = npc.compile(bundle, "nft", {"node": node}).text
        _same(bundle, "nft", text, node)
        assert _verify(bundle, "nft", text, exhaustive=False, node=node).equivalent


@pytest.mark.parametrize("target", ["nft", "iptables"])
@pytest.mark.parametrize("seed", [1, 3, 4, 9])  # seeds whose tiers decide flows
def test_grouped_verify_equals_exhaustive_with_tiers(target: str, seed: int) -> None:
    """With ClusterNetworkPolicies the pod rows are the tiered class engine's and outside
    flows the tier oracle's: a ruleset compiled without the tiers (differences wherever
    they decide) is judged the same grouped and exhaustively."""
    bundle = random_tier_bundle(seed)
    assert bundle.snapshot is not None
    text = npc.compile(dataclasses.replace(bundle, cluster_policies=tiers.EMPTY), target).text
    judge = _judge(target, text, bundle.snapshot)
    reports = [
        verify_judge(
            bundle.policies,
            bundle.snapshot,
            judge,
            target=target,
            cluster_policies=bundle.cluster_policies,
            exhaustive=exhaustive,
        )
        for exhaustive in (False, True)
    ]
    grouped, naive = reports
    assert grouped.differences  # not vacuous
    assert grouped.differences == naive.differences
    assert (grouped.pod_flows, grouped.outside_flows) == (naive.pod_flows, naive.outside_flows)


# -- doctoring that grouping could hide ----------------------------------------------------


def _replicas() -> tuple[npc.Bundle, list[str]]:
    """Four replicas with identical labels in one namespace (dual-stack), an IPv6-only pod
    beside them, a client in another namespace that the ipBlock admits by IPv4 only."""
    pods = "".join(
        f"""---
apiVersion: v1
kind: Pod
metadata: {{name: web-{i}, namespace: shop, labels: {{app: web}}}}
spec: {{nodeName: n1, containers: [{{name: c, ports: [{{containerPort: 80}}]}}]}}
status: {{podIPs: [{{ip: 10.9.0.{10 + i}}}, {{ip: "fd09::{10 + i:x}"}}]}}
"""
        for i in range(4)
    )
    cluster = (
        """apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {kubernetes.io/metadata.name: shop}}
---
apiVersion: v1
kind: Namespace
metadata: {name: ops, labels: {kubernetes.io/metadata.name: ops}}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: ops, labels: {app: client}}
spec: {nodeName: n2, containers: [{name: c}]}
status: {podIPs: [{ip: 10.9.2.5}, {ip: "fd09::2:5"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: v6only, namespace: shop, labels: {app: tool}}
spec: {nodeName: n2, containers: [{name: c}]}
status: {podIPs: [{ip: "fd09::3:7"}]}
"""
        + pods
    )
    policy = """apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress, Egress]
  ingress:
  - from:
    - podSelector: {}
    - ipBlock: {cidr: 10.9.0.0/16, except: [10.9.1.0/24]}
    ports: [{port: 80}]
"""
    bundle = npc.load([npc.Source("p.yaml", policy), npc.Source("c.yaml", cluster)])
    return bundle, [f"shop/web-{i}" for i in range(4)]


def _differences(bundle: npc.Bundle, target: str, text: str) -> set[tuple[str, str, int, bool]]:
    grouped = _verify(bundle, target, text, exhaustive=False)
    naive = _verify(bundle, target, text, exhaustive=True)
    assert grouped.differences == naive.differences
    return {(d.src, d.dst, d.port, d.ruleset) for d in grouped.differences}


def test_nft_element_singling_out_one_replica_is_caught() -> None:
    bundle, web = _replicas()
    text = npc.compile(bundle, "nft").text
    assert _differences(bundle, "nft", text) == set()
    # web-2 alone also admits the client on 443, in IPv4 only: one replica of four
    lines = text.splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if "chain forward" in line)
    rule = "\t\tip saddr 10.9.2.5 ip daddr 10.9.0.12 tcp dport 443 accept\n"
    doctored = "".join([*lines[: at + 3], rule, *lines[at + 3 :]])
    assert _differences(bundle, "nft", doctored) == {("ops/client", web[2], 443, True)}


def test_nft_ipv6_only_difference_is_caught() -> None:
    bundle, web = _replicas()
    text = npc.compile(bundle, "nft").text
    lines = text.splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if "chain forward" in line)

    def doctor(*rules: str) -> str:
        return "".join(lines[: at + 3] + [f"\t\t{r}\n" for r in rules] + lines[at + 3 :])

    # the IPv6-only pod loses web-3 (one replica of four), by the only family it has
    drop6 = "ip6 saddr fd09::3:7 ip6 daddr fd09::d tcp dport 80 drop"
    assert _differences(bundle, "nft", doctor(drop6)) == {("shop/v6only", web[3], 80, False)}
    # the client loses web-1 by IPv6, but still connects by IPv4: no pod pair differs ...
    client6 = "ip6 saddr fd09::2:5 ip6 daddr fd09::b tcp dport 80 drop"
    assert _differences(bundle, "nft", doctor(client6)) == set()
    # ... until the IPv4 path closes as well
    client4 = "ip saddr 10.9.2.5 ip daddr 10.9.0.11 tcp dport 80 drop"
    assert _differences(bundle, "nft", doctor(client6, client4)) == {
        ("ops/client", web[1], 80, False)
    }


#: Where the ipBlock's addresses after the except (10.9.1.0/24) resume, per target.
RESUME = {
    "nft": "\t\t\t10.9.2.0/23 . tcp . 80,\n",
    "iptables": "add NPC-4-6a41fc95473e6640 10.9.2.0/23\n",
}


@pytest.mark.parametrize("target", sorted(RESUME))
def test_except_shrunk_or_dropped_is_caught(target: str) -> None:
    """The except 10.9.1.0/24 shrunk to its lower half, or dropped: met at its boundary
    addresses, for every replica (outside addresses are grouped too)."""
    bundle, web = _replicas()
    text = npc.compile(bundle, target).text
    assert _differences(bundle, target, text) == set()
    resume = RESUME[target]
    assert resume in text
    upper, whole = (
        resume.replace("10.9.2.0/23", net) + resume for net in ("10.9.1.128/25", "10.9.1.0/24")
    )
    shrunk = _differences(bundle, target, text.replace(resume, upper))
    assert shrunk == {("10.9.1.255", w, 80, True) for w in web}
    dropped = _differences(bundle, target, text.replace(resume, whole))
    assert dropped == {(a, w, 80, True) for a in ("10.9.1.0", "10.9.1.255") for w in web}
