"""Probe every pair of hosts in a lab and compare with the reference semantics."""

from __future__ import annotations

from collections.abc import Sequence

import netaddr

from npc import ir
from npc.semantics import Endpoint, Flow, Semantics
from npc.snapshot import Snapshot
from tests.kernel import probe
from tests.kernel.netns import Host, HostSpec, Lab

#: A machine outside the cluster (documentation addresses), routed through the first node.
EXTERNAL = "external"
EXTERNAL_IPS = (netaddr.IPAddress("192.0.2.10"), netaddr.IPAddress("2001:db8::10"))


def hosts_of(snapshot: Snapshot, node: str | None = None) -> list[HostSpec]:
    """A host per pod (hostNetwork pods live in their node, not in a namespace of their
    own, and are left out), on ``node`` or on the pod's own node; plus the external host."""
    specs: list[HostSpec] = []
    for pod in snapshot.pods:
        if not pod.host_network:
            specs.append((pod.key, pod.ips, node or pod.node_name or "node"))
    first = node or min(n for _, _, n in specs)
    specs.append((EXTERNAL, EXTERNAL_IPS, first))
    return specs


def _endpoint(snapshot: Snapshot, host: Host, version: int) -> Endpoint:
    pod = snapshot.pod(host.key) if host.key != EXTERNAL else None
    if pod is None:
        address = host.ip(version)
        assert address is not None
        return Endpoint.of_address(address)
    return Endpoint.of_pod(pod, version)


def probes_and_expectations(
    lab: Lab,
    policies: ir.PolicySet,
    snapshot: Snapshot,
    ports: Sequence[tuple[ir.Protocol, int]],
) -> tuple[list[probe.Probe], list[bool]]:
    """Every (source, destination, family, protocol, port) with what the spec says."""
    semantics = Semantics(policies, snapshot)
    probes: list[probe.Probe] = []
    expected: list[bool] = []
    hosts = sorted(lab.hosts.values(), key=lambda h: h.key)
    for src in hosts:
        for dst in hosts:
            if src.key == dst.key:
                continue
            for version in (4, 6):
                src_ip, dst_ip = src.ip(version), dst.ip(version)
                if src_ip is None or dst_ip is None:
                    continue
                a = _endpoint(snapshot, src, version)
                b = _endpoint(snapshot, dst, version)
                for protocol, port in ports:
                    probes.append(
                        probe.Probe(
                            src.netns, str(src_ip), dst.netns, str(dst_ip), protocol.value, port
                        )
                    )
                    expected.append(semantics.allowed(Flow(a, b, protocol, port)))
    return probes, expected


def assert_enforces_semantics(
    lab: Lab,
    policies: ir.PolicySet,
    snapshot: Snapshot,
    ports: Sequence[tuple[ir.Protocol, int]],
) -> tuple[int, int]:
    """Probe everything; fail with a readable list of every disagreement. Returns how many
    probes ran and how many of them the spec allows."""
    probes, expected = probes_and_expectations(lab, policies, snapshot, ports)
    got = probe.run(probes, expected)
    by_netns = {h.netns: h.key for h in lab.hosts.values()}
    wrong = [
        f"  {by_netns[p.src]} ({p.src_addr}) -> {by_netns[p.dst]} ({p.dst_addr}) "
        f"{p.protocol}/{p.port}: kernel {'allowed' if g else 'denied'}, "
        f"spec {'allows' if e else 'denies'}"
        for p, g, e in zip(probes, got, expected, strict=True)
        if g != e
    ]
    if wrong:
        rulesets = "\n".join(
            f"--- nft list ruleset on {node}:\n{lab.nft(node, 'list', 'ruleset')}"
            for node in sorted(lab.nodes)
        )
        shown = "\n".join(wrong[:40])
        more = f"\n  ... and {len(wrong) - 40} more" if len(wrong) > 40 else ""
        raise AssertionError(
            f"{len(wrong)} of {len(probes)} probes disagree with the spec:\n{shown}{more}\n"
            f"{rulesets}"
        )
    return len(probes), sum(expected)
