"""Probe every pair of hosts in a lab; compare with the reference semantics and `npc reach`."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import netaddr

from npc import ir, tiers
from npc.analysis.semantics import Semantics
from npc.flows import Endpoint, Flow
from npc.snapshot import Snapshot
from tests.kernel import probe
from tests.kernel.netns import NPC, Host, HostSpec, Lab, run

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
    cluster_policies: tiers.ClusterPolicySet = tiers.EMPTY,
) -> tuple[list[probe.Probe], list[bool]]:
    """Every (source, destination, family, protocol, port) with what the spec says."""
    semantics = Semantics(policies, snapshot, cluster_policies)
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
    dump: Callable[[str], str] | None = None,
    cluster_policies: tiers.ClusterPolicySet = tiers.EMPTY,
) -> tuple[int, int]:
    """Probe everything; fail with a readable list of every disagreement (and each node's
    ruleset: ``dump(node)``, by default ``nft list ruleset``). Returns how many probes ran
    and how many of them the spec allows."""
    probes, expected = probes_and_expectations(lab, policies, snapshot, ports, cluster_policies)
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
        show = dump or (lambda node: lab.nft(node, "list", "ruleset"))
        rulesets = "\n".join(f"--- ruleset on {node}:\n{show(node)}" for node in sorted(lab.nodes))
        shown = "\n".join(wrong[:40])
        more = f"\n  ... and {len(wrong) - 40} more" if len(wrong) > 40 else ""
        raise AssertionError(
            f"{len(wrong)} of {len(probes)} probes disagree with the spec:\n{shown}{more}\n"
            f"{rulesets}"
        )
    return len(probes), sum(expected)


def assert_agrees_with_reach(
    lab: Lab, files: Sequence[str], ports: Sequence[tuple[ir.Protocol, int]]
) -> None:
    """Probe every pair of pods and compare with ``npc reach -o json`` (the real command):
    a pair is reachable when some address family the two pods share lets it through."""
    args = [a for f in files for a in ("-f", f)]
    args += [f"--port={port}/{proto.value}" for proto, port in ports]
    done = run(str(NPC), "reach", *args, "-o", "json")
    matrix = json.loads(done.stdout)
    reach = {
        (src, dst, item["protocol"], item["port"]): bool(want)
        for item in matrix["probes"]
        for src, row in item["allowed"].items()
        for dst, want in row.items()
    }
    pods = [lab.hosts[key] for key in matrix["pods"] if key in lab.hosts]
    probes: list[probe.Probe] = []
    keys: list[tuple[str, str, str, int]] = []
    for src in pods:
        for dst in pods:
            for version in (4, 6):
                a, b = src.ip(version), dst.ip(version)
                if src.key == dst.key or a is None or b is None:
                    continue
                for proto, port in ports:
                    probes.append(
                        probe.Probe(src.netns, str(a), dst.netns, str(b), proto.value, port)
                    )
                    keys.append((src.key, dst.key, proto.value, port))
    got: dict[tuple[str, str, str, int], bool] = {}
    for key, passed in zip(keys, probe.run(probes, [reach[k] for k in keys]), strict=True):
        got[key] = got.get(key, False) or passed
    wrong = [
        f"  {src} -> {dst} {proto}/{port}: kernel {passed}, reach {reach[src, dst, proto, port]}"
        for (src, dst, proto, port), passed in sorted(got.items())
        if passed != reach[src, dst, proto, port]
    ]
    assert got, "no pair of pods was probed"
    assert not wrong, f"{len(wrong)} pairs disagree with npc reach:\n" + "\n".join(wrong)
