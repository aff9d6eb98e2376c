"""Every flow of a snapshot, judged by a ruleset interpreter and by the reference semantics.

Shared by the interpreter-based tests of the address-based targets (nft, iptables): the
flows between pods, hostNetwork pods and outside addresses, on every probe port and ICMP.
"""

from __future__ import annotations

from collections.abc import Callable

from npc import ir
from npc.frontend import Bundle
from npc.semantics import Endpoint, Flow, Semantics
from npc.snapshot import Pod
from tests.nft_sim import Packet
from tests.synth import probe_ports

__all__ = ["OUTSIDE", "Verdict", "endpoints", "icmp_allowed", "wrong_flows"]

OUTSIDE = ("192.0.2.1", "10.77.9.9", "2001:db8::1", "fd77::9:9")


def endpoints(pods: tuple[Pod, ...]) -> list[Endpoint]:
    """Every address of the pods, and a few outside the cluster."""
    found = [Endpoint.of_pod(p, a.version) for p in pods for a in p.ips]
    found += [Endpoint.of_address(a) for a in OUTSIDE]
    return found


def icmp_allowed(sem: Semantics, src: Endpoint, dst: Endpoint) -> bool:
    """ICMP passes a side only through a rule without ports (``ANY_PORT``)."""

    def side(pod: Pod | None, direction: str, other: Endpoint) -> bool:
        if pod is None:
            return True
        isolating = sem.isolating(pod, direction)
        return (
            not isolating
            or sem.own_node(pod, other)
            or any(
                isinstance(rule.ports, ir.AnyPort) and sem.peers_match(policy, rule.peers, other)
                for policy in isolating
                for rule in policy.rules(direction) or ()
            )
        )

    return side(src.pod, "egress", dst) and side(dst.pod, "ingress", src)


Verdict = Callable[[Endpoint, Endpoint, Packet], bool]


def wrong_flows(bundle: Bundle, allows: Verdict) -> tuple[int, list[str]]:
    """Every flow between the snapshot's pods and outside addresses, on every probe port
    and ICMP, where ``allows`` disagrees with the reference semantics.

    Flows between a pod and its own node (a hostNetwork pod there) never meet the forward
    hook: the kernel delivers them locally (input, output), so no ruleset sees them, as
    the spec says (semantics rule 8)."""
    assert bundle.snapshot is not None
    sem = Semantics(bundle.policies, bundle.snapshot)
    forwarded = allows

    def allows(src: Endpoint, dst: Endpoint, packet: Packet) -> bool:
        local = (src.pod is not None and sem.own_node(src.pod, dst)) or (
            dst.pod is not None and sem.own_node(dst.pod, src)
        )
        return local or forwarded(src, dst, packet)

    ports = probe_ports(bundle.snapshot, bundle.policies)
    everyone = endpoints(bundle.snapshot.pods)
    wrong = []
    checked = 0
    for src in everyone:
        for dst in everyone:
            if src.address.version != dst.address.version or src.name == dst.name:
                continue
            for proto, port in ports:
                want = sem.allowed(Flow(src, dst, proto, port))
                got = allows(src, dst, Packet(src.address, dst.address, proto.value, port))
                checked += 1
                if got != want:
                    wrong.append(f"{src} -> {dst} {proto}/{port}: ruleset {got}, spec {want}")
            want = icmp_allowed(sem, src, dst)
            if allows(src, dst, Packet(src.address, dst.address, "ICMP")) != want:
                wrong.append(f"{src} -> {dst} ICMP: spec {want}")
    return checked, wrong
