"""ipBlocks that do not match what their author expects.

* W607 (golden/seed004-*, kube-router#744, antrea#280): an ipBlock admitting clients outside the
  cluster to pods behind a NodePort or LoadBalancer Service with ``externalTrafficPolicy:
  Cluster``. Nodes source-NAT such clients to an address of their own before the pod's
  policy sees them (:mod:`npc.analysis.services`), so the block never matches them. Reported
  only when the rule does not already admit the addresses of every node that forwards to
  the pod (then the clients get in, through those addresses) and when some node forwards
  from elsewhere (a pod's own node is always admitted). Path: the ipBlock.
* W610: an ipBlock holding pod addresses. The spec says ipBlocks are meant for addresses
  outside the cluster and leaves what happens to pod traffic to the plugin: Calico and
  kube-router match it, Cilium and Terway's eBPF datapath never do
  (:data:`npc.analysis.cni.CNIS`). A block covering a whole address family (``0.0.0.0/0``,
  "everything") is not reported. With ``--cni``, the plugin's known behaviour decides: none
  when it matches pods, W613 when it ignores them. Path: the ipBlock.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator

import netaddr

from npc import ir
from npc.analysis.cni import Cni, Feature, Forwarding, forwarded_source
from npc.analysis.lint.finding import Finding
from npc.analysis.services import service_nodes
from npc.errors import Code, Path
from npc.snapshot import Pod, Service, Snapshot
from npc.wording import plural

__all__ = ["check"]


def _host_set(addresses: set[netaddr.IPAddress]) -> ir.AddressSet:
    return ir.AddressSet(
        tuple(netaddr.IPNetwork(f"{a}/{32 if a.version == 4 else 128}") for a in addresses)
    )


def _ports_match(rule: ir.Rule, pod: Pod, targets: list[tuple[ir.Protocol, int]]) -> bool:
    if isinstance(rule.ports, ir.AnyPort):
        return True
    ports = rule.ports
    return any(ports.matches(proto, n, pod.port_names(n, proto)) for proto, n in targets)


def _forwarders(
    pod: Pod, snapshot: Snapshot, forwarding: Forwarding
) -> tuple[set[netaddr.IPAddress], bool]:
    """Addresses other nodes forward ``pod``'s Service clients from (and whether some node
    gives none the snapshot knows)."""
    found: set[netaddr.IPAddress] = set()
    unknown = False
    for node in service_nodes(snapshot):
        if node.name == pod.node_name:
            continue
        address, _ = forwarded_source(node, forwarding)
        if address is None:
            unknown = True
        else:
            found.add(address)
    return found, unknown


def _snat(policies: ir.PolicySet, snapshot: Snapshot, forwarding: Forwarding) -> Iterator[Finding]:
    own = {a for node in snapshot.nodes for _, a in node.addresses}
    pod_ips = {a for p in snapshot.pods for a in p.ips}
    reported: set[tuple[str, int, int]] = set()
    services = [s for s in snapshot.services if s.external and not s.keeps_client_address]
    for service in services:
        for pod in service.endpoints(snapshot):
            if pod.host_network:
                continue
            sources, unknown = _forwarders(pod, snapshot, forwarding)
            if not sources and not unknown:
                continue
            targets = [(p.protocol, t) for p in service.ports if (t := service.target_port(p, pod))]
            not_clients = _host_set(own | pod_ips | sources)
            for policy in policies:
                if (
                    policy.ingress is None
                    or policy.namespace != pod.namespace
                    or not policy.pod_selector.matches(pod.labels)
                ):
                    continue
                for i, rule in enumerate(policy.ingress):
                    if not isinstance(rule.peers, tuple) or not _ports_match(rule, pod, targets):
                        continue
                    blocks = [p for p in rule.peers if isinstance(p, ir.AddressPeer)]
                    admitted = not unknown and all(
                        any(b.addresses.contains(s) for b in blocks) for s in sources
                    )
                    if admitted:
                        continue
                    for j, peer in enumerate(rule.peers):
                        key = (policy.key, i, j)
                        if (
                            not isinstance(peer, ir.AddressPeer)
                            or key in reported
                            or not peer.addresses.difference(not_clients)
                        ):
                            continue
                        reported.add(key)
                        yield _snat_finding(policy, i, j, peer, service, pod, sources)


def _snat_finding(
    policy: ir.Policy,
    rule: int,
    index: int,
    peer: ir.AddressPeer,
    service: Service,
    pod: Pod,
    sources: set[netaddr.IPAddress],
) -> Finding:
    shown = sorted(sources, key=lambda a: (a.version, int(a)))
    nodes = ", ".join(str(a) for a in shown[:4]) + (", ..." if len(shown) > 4 else "")
    via = f" ({nodes})" if shown else ""
    block = peer.cidr if peer.cidr is not None else peer.addresses
    policy_name = service.external_traffic_policy or "Cluster"
    return Finding.at(
        Code.SNAT_HIDES_CLIENT,
        policy,
        ("spec", "ingress", rule, "from", index, "ipBlock"),
        f"clients of {service.type} Service {service.key} (externalTrafficPolicy: "
        f"{policy_name}) reach {pod.key} source-NATed to a node's address{via}, never from "
        f"{block}: this ipBlock does not admit them",
        "set `externalTrafficPolicy: Local` on the Service (the client's address is kept; only "
        "nodes with a ready endpoint answer), or admit the nodes' addresses, which admits "
        "everything those nodes forward: every client of every NodePort, and pods reaching "
        "the Service through them",
    )


class _PodAddresses:
    """Pods by address, sorted, so a block finds the pods inside it by bisection."""

    def __init__(self, pods: Iterable[Pod]) -> None:
        entries = sorted(
            ((a.version, int(a), p.key) for p in pods if not p.host_network for a in p.ips),
        )
        self._keys = [(v, n) for v, n, _ in entries]
        self._pods = [k for _, _, k in entries]
        self._found: dict[ir.AddressSet, list[str]] = {}

    def inside(self, addresses: ir.AddressSet) -> list[str]:
        found = self._found.get(addresses)
        if found is None:
            keys: set[str] = set()
            for cidr in addresses.cidrs:
                lo = bisect.bisect_left(self._keys, (cidr.version, cidr.first))
                hi = bisect.bisect_right(self._keys, (cidr.version, cidr.last))
                keys.update(self._pods[lo:hi])
            found = self._found[addresses] = sorted(keys)
        return found


def _everything(peer: ir.AddressPeer) -> bool:
    return peer.cidr is not None and peer.cidr.prefixlen == 0 and not peer.excepts


def _pod_blocks(policies: ir.PolicySet, snapshot: Snapshot, cni: Cni | None) -> Iterator[Finding]:
    fact = cni.fact(Feature.IPBLOCK_PODS) if cni is not None else None
    if fact is not None and fact.enforced:
        return
    pods = _PodAddresses(snapshot.pods)
    for policy in policies:
        for direction in (ir.Direction.INGRESS, ir.Direction.EGRESS):
            for i, rule in enumerate(policy.rules(direction) or ()):
                if not isinstance(rule.peers, tuple):
                    continue
                for j, peer in enumerate(rule.peers):
                    if not isinstance(peer, ir.AddressPeer) or _everything(peer):
                        continue
                    inside = pods.inside(peer.addresses)
                    if not inside:
                        continue
                    path: Path = ("spec", direction.value, i, direction.peer_field, j, "ipBlock")
                    names = ", ".join(inside[:3])
                    more = f" and {len(inside) - 3} more" if len(inside) > 3 else ""
                    what = f"holds the addresses of {plural(len(inside), 'pod')} ({names}{more})"
                    if cni is not None and fact is not None and fact.enforced is False:
                        yield Finding.at(
                            Code.CNI_IGNORES,
                            policy,
                            path,
                            f"{what}; {cni.name} never matches pod addresses by ipBlock "
                            f"({fact.version}; {fact.source})",
                            "select those pods with podSelector/namespaceSelector",
                        )
                    else:
                        yield Finding.at(
                            Code.IPBLOCK_HOLDS_PODS,
                            policy,
                            path,
                            f"{what}: whether an ipBlock matches pod traffic is left to the "
                            "network plugin (Calico and kube-router match it, Cilium does not)",
                            "select pods with podSelector/namespaceSelector; keep ipBlocks for "
                            "addresses outside the cluster (or name the plugin with --cni)",
                        )


def check(policies: ir.PolicySet, snapshot: Snapshot, cni: Cni | None) -> Iterator[Finding]:
    """W607 and W610 (or W613) over the snapshot."""
    forwarding = cni.forwarding if cni is not None else Forwarding.AUTO
    yield from _snat(policies, snapshot, forwarding)
    yield from _pod_blocks(policies, snapshot, cni)
