"""Every flow of a snapshot judged by a ruleset judge and by the reference semantics.

For the judge-based tests of the address-based targets (nft, iptables): the flows of
:func:`tests.flows.flows` between pods, hostNetwork pods and outside addresses, on every
probe port, and ICMP once per pair of endpoints; and, for the verify and diff tests,
:func:`oracle_changes`: the flows of a check on which two policy sets' oracles disagree.
"""

from __future__ import annotations

from collections.abc import Callable

import netaddr

import npc
from npc import ir, tiers
from npc.analysis.semantics import Semantics
from npc.analysis.tier_semantics import TierJudge
from npc.flows import Endpoint, Flow, Probe
from npc.rulesets.base import IANA_PROTOCOLS, Packet
from npc.snapshot import Pod
from tests.flows import flows

__all__ = [
    "OUTSIDE",
    "Change",
    "Verdict",
    "icmp_allowed",
    "oracle_changes",
    "packet",
    "wrong_flows",
]

OUTSIDE = ("192.0.2.1", "10.77.9.9", "2001:db8::1", "fd77::9:9")


def packet(src: netaddr.IPAddress, dst: netaddr.IPAddress, proto: str, port: int = 0) -> Packet:
    """The first packet of a connection: ``proto`` is TCP, UDP, SCTP or ICMP (no port)."""
    if proto == "ICMP":
        return Packet.icmp(src, dst)
    return Packet(src, dst, IANA_PROTOCOLS[proto], port)


#: Whether a ruleset lets the first packet of a flow between two endpoints through.
Verdict = Callable[[Endpoint, Endpoint, Packet], bool]


def icmp_allowed(sem: Semantics, src: Endpoint, dst: Endpoint) -> bool:
    """ICMP passes a side only through a rule without ports (``ANY_PORT``), in every tier.

    For the tiers, a TCP flow to port 0 stands for ICMP: ClusterNetworkPolicy ports are 1 or
    more, so only rules without ``protocols`` match it."""
    judge = TierJudge(sem.cluster_policies, sem.snapshot) if sem.cluster_policies else None
    icmp = Flow(src, dst, ir.Protocol.TCP, 0)

    def tier(which: tiers.Tier, pod: Pod, direction: str, other: Endpoint) -> bool | None:
        if judge is None:
            return None
        decision = judge.decide(which, pod, direction, other, icmp)
        if decision is None or decision.action is tiers.Action.PASS:
            return None
        return decision.action is tiers.Action.ACCEPT

    def side(pod: Pod | None, direction: str, other: Endpoint) -> bool:
        if pod is None or sem.own_node(pod, other):
            return True
        admin = tier(tiers.Tier.ADMIN, pod, direction, other)
        if admin is not None:
            return admin
        isolating = sem.isolating(pod, direction)
        if isolating:
            return any(
                isinstance(rule.ports, ir.AnyPort) and sem.peers_match(policy, rule.peers, other)
                for policy in isolating
                for rule in policy.rules(direction) or ()
            )
        baseline = tier(tiers.Tier.BASELINE, pod, direction, other)
        return True if baseline is None else baseline

    return side(src.pod, "egress", dst) and side(dst.pod, "ingress", src)


def wrong_flows(bundle: npc.Bundle, forwarded: Verdict) -> tuple[int, list[str]]:
    """How many flows were checked, and each one where ``forwarded`` disagrees with the
    reference semantics.

    Flows between a pod and its own node (a hostNetwork pod there) never meet FORWARD: the
    kernel delivers them locally (INPUT, OUTPUT), so no ruleset there sees them, and the spec
    always allows them."""
    assert bundle.snapshot is not None
    sem = Semantics(bundle.policies, bundle.snapshot, bundle.cluster_policies)

    def allows(src: Endpoint, dst: Endpoint, packet: Packet) -> bool:
        local = (src.pod is not None and sem.own_node(src.pod, dst)) or (
            dst.pod is not None and sem.own_node(dst.pod, src)
        )
        return local or forwarded(src, dst, packet)

    wrong: list[str] = []
    checked = 0
    pairs: set[tuple[str, str]] = set()
    for flow in flows(bundle.snapshot, bundle.policies, OUTSIDE):
        src, dst, proto, port = flow.src, flow.dst, flow.protocol, flow.port
        want = sem.allowed(flow)
        got = allows(src, dst, packet(src.address, dst.address, proto.value, port))
        checked += 1
        if got != want:
            wrong.append(f"{src} -> {dst} {proto}/{port}: ruleset {got}, spec {want}")
        if (str(src), str(dst)) not in pairs:
            pairs.add((str(src), str(dst)))
            want = icmp_allowed(sem, src, dst)
            if allows(src, dst, packet(src.address, dst.address, "ICMP")) != want:
                wrong.append(f"{src} -> {dst} ICMP: spec {want}")
    return checked, wrong


#: (src, dst, protocol, port, verdict a, verdict b) of one flow.
Change = tuple[str, str, str, int, bool, bool]


def oracle_changes(
    a: npc.Bundle, b: npc.Bundle, probes: tuple[Probe, ...], outside: tuple[str, ...]
) -> set[Change]:
    """Every flow of the check (pod pairs, and pods with each outside address both ways)
    on which the oracle's verdict under ``a`` differs from that under ``b``."""
    snap = a.snapshot
    assert snap is not None
    sems = [Semantics(x.policies, snap, x.cluster_policies) for x in (a, b)]
    found: set[Change] = set()
    for p in probes:
        for s in snap.pods:
            for d in snap.pods:
                if s is d:
                    continue
                was, now = (sem.pod_allowed(s, d, p.protocol, p.port) for sem in sems)
                if was != now:
                    found.add((s.key, d.key, str(p.protocol), p.port, was, now))
        for pod in snap.pods:
            if pod.host_network:
                continue
            for address in outside:
                there = Endpoint.of_address(address)
                version = there.address.version
                if pod.ip(version) is None:
                    continue
                mine = Endpoint.of_pod(pod, version)
                for src, dst in ((there, mine), (mine, there)):
                    flow = Flow(src, dst, p.protocol, p.port)
                    was, now = (sem.allowed(flow) for sem in sems)
                    if was != now:
                        found.add((str(src), str(dst), str(p.protocol), p.port, was, now))
    return found
