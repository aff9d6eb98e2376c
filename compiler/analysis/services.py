"""A client outside the cluster reaching pods through a NodePort or LoadBalancer Service.

Policies see packets after kube-proxy has translated them, so the source address a policy
matches depends on the Service (Kubernetes, "Using Source IP",
https://kubernetes.io/docs/tutorials/services/source-ip/; tests/data/seed004):

* ``externalTrafficPolicy: Cluster`` (the default): every node answers on the node port and
  load-balances over every endpoint. The packet is source-NATed to the node's address: for
  an endpoint on another node, the address the node has on the pod network
  (:func:`npc.analysis.cni.forwarded_source`: a tunnel address or the InternalIP, as the CNI
  chooses); for an endpoint on the node itself, the node's own address, which the spec always
  admits ("traffic to and from the node where a Pod is running is always allowed").
* ``externalTrafficPolicy: Local``: the client's address is kept, and only nodes with a
  ready endpoint answer (the others fail the load balancer's health check), delivering to
  their own endpoints.
* ``loadBalancerSourceRanges`` (LoadBalancer only) drop clients outside the ranges first.
* ``internalTrafficPolicy`` concerns clients inside the cluster only; it is read, not used here.

Every pod of the snapshot that the selector picks counts as a ready endpoint (the snapshot
keeps only running pods with an address). Each path (entry node, endpoint) is then decided by
the reference semantics, as :func:`npc.analysis.explain.explain_flow` explains it, with the
ClusterNetworkPolicy tiers when the input has them (their ingress peers are pods, so they
match a client outside the cluster, or the node it is forwarded from, only through a peer npc
does not know, which fails closed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import netaddr

from npc import ir, tiers
from npc.analysis.cni import Forwarding, forwarded_source, own_address
from npc.analysis.explain import FlowExplanation, Locator, explain_flow
from npc.flows import Probe
from npc.snapshot import Node, Pod, Service, ServicePort, Snapshot

__all__ = ["ServicePath", "ServiceReach", "reach_service", "service_nodes"]


@dataclass(frozen=True, slots=True)
class ServicePath:
    """One way in: the client reaches ``node`` and kube-proxy sends it to ``pod``."""

    node: str
    pod: Pod
    target_port: int | None
    source: str | None
    why: str
    explanation: FlowExplanation | None = None
    #: Delivered by the pod's own node from its own address: always admitted (semantics
    #: rule 8), even when the snapshot does not give that address.
    own_node: bool = False

    @property
    def allowed(self) -> bool:
        if self.explanation is not None:
            return self.explanation.allowed
        return self.own_node and self.target_port is not None

    def line(self) -> str:
        where = f" (on {self.pod.node_name})" if self.pod.node_name else ""
        verdict = "allowed" if self.allowed else "denied" if self.source else "unknown"
        port = "no such port" if self.target_port is None else f"port {self.target_port}"
        seen = f"the policy sees {self.source}" if self.source else "address unknown"
        return f"via {self.node} to {self.pod.key}{where} {port}: {verdict} ({seen}: {self.why})"

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "pod": self.pod.key,
            "podNode": self.pod.node_name,
            "targetPort": self.target_port,
            "source": self.source,
            "why": self.why,
            "allowed": self.allowed,
        }


@dataclass(frozen=True, slots=True)
class ServiceReach:
    """Every path from ``client`` through one port of a Service; allowed when every path
    is (the load balancer may pick any)."""

    client: str
    service: Service
    port: ServicePort
    forwarding: Forwarding
    paths: tuple[ServicePath, ...] = ()
    refused: str | None = None

    @property
    def allowed(self) -> bool:
        return self.refused is None and bool(self.paths) and all(p.allowed for p in self.paths)

    def _how(self) -> str:
        policy = self.service.external_traffic_policy or "Cluster"
        if self.service.keeps_client_address:
            return (
                "externalTrafficPolicy: Local: the client's address is kept; only nodes with an "
                "endpoint answer"
            )
        return (
            f"externalTrafficPolicy: {policy}: every node answers and source-NATs the client to "
            f"an address of its own (node addresses: {self.forwarding.value})"
        )

    def headline(self) -> str:
        port = f"{self.port.port}/{self.port.protocol}"
        if self.port.node_port:
            port += f" (nodePort {self.port.node_port})"
        head = f"{self.client} -> svc/{self.service.key} {port}: "
        if self.refused is not None:
            return head + f"DENIED ({self.refused})"
        good = sum(p.allowed for p in self.paths)
        unknown = sum(p.source is None and not p.allowed for p in self.paths)
        if unknown and good + unknown == len(self.paths):
            return head + (
                f"UNKNOWN on {unknown} of {len(self.paths)} paths (the snapshot lacks the "
                "nodes' addresses: add `kubectl get nodes -o yaml`)"
            )
        if self.allowed:
            return head + f"ALLOWED through every path ({len(self.paths)})"
        return head + f"DENIED through {len(self.paths) - good} of {len(self.paths)} paths"

    def text(self, *, detail: bool = False) -> str:
        """The verdict, how the Service forwards, and one line per path (with ``detail``,
        each path's full explanation)."""
        lines = [self.headline()]
        if self.refused is None:
            lines.append(f"  {self._how()}")
        for path in self.paths:
            lines.append(f"  {path.line()}")
            if detail and path.explanation is not None:
                lines.extend(f"    {t}" if t else "" for t in path.explanation.text().splitlines())
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict[str, Any]:
        return {
            "client": self.client,
            "service": self.service.key,
            "type": self.service.type,
            "port": self.port.port,
            "protocol": str(self.port.protocol),
            "nodePort": self.port.node_port,
            "externalTrafficPolicy": self.service.external_traffic_policy or "Cluster",
            "nodeAddresses": self.forwarding.value,
            "allowed": self.allowed,
            "refused": self.refused,
            "paths": [p.to_json() for p in self.paths],
        }


def service_nodes(snapshot: Snapshot) -> tuple[Node, ...]:
    """The snapshot's nodes; without Node objects, those its pods name (without addresses)."""
    if snapshot.nodes:
        return snapshot.nodes
    names = sorted({p.node_name for p in snapshot.pods if p.node_name})
    return tuple(Node(n) for n in names)


def _source(
    node: Node, pod: Pod, service: Service, client: netaddr.IPAddress, forwarding: Forwarding
) -> tuple[netaddr.IPAddress | None, str]:
    if service.keeps_client_address:
        return client, "externalTrafficPolicy Local keeps the client's address"
    if pod.node_name == node.name:
        address, why = own_address(node)
        if address is None:
            why = f"{node.name}'s own address (not in the snapshot)"
        return address, f"source NAT to {why}, which the spec always admits to its own pods"
    address, why = forwarded_source(node, forwarding)
    if address is None:
        return None, f"{why}: add the Node objects (`kubectl get nodes -o yaml`)"
    return address, f"source NAT to {why}, forwarding to another node"


def reach_service(
    policies: ir.PolicySet,
    snapshot: Snapshot,
    client: netaddr.IPAddress,
    service: Service,
    port: ServicePort,
    forwarding: Forwarding = Forwarding.AUTO,
    locate: Locator | None = None,
    cluster_policies: tiers.ClusterPolicySet = tiers.EMPTY,
) -> ServiceReach:
    """Every path from ``client`` (outside the cluster) through ``port`` of ``service``;
    with ``cluster_policies``, each path is decided with the Admin and Baseline tiers too."""
    if not service.external:
        return ServiceReach(
            str(client),
            service,
            port,
            forwarding,
            refused=f"a {service.type} Service is not reachable from outside the cluster",
        )
    ranges = service.load_balancer_source_ranges
    if service.type == "LoadBalancer" and ranges and not any(client in r for r in ranges):
        return ServiceReach(
            str(client),
            service,
            port,
            forwarding,
            refused="its loadBalancerSourceRanges do not include the client",
        )
    endpoints = service.endpoints(snapshot)
    if not endpoints:
        return ServiceReach(
            str(client), service, port, forwarding, refused="the Service has no endpoint"
        )
    paths = []
    for node in service_nodes(snapshot):
        for pod in endpoints:
            if service.keeps_client_address and pod.node_name != node.name:
                continue
            target = service.target_port(port, pod)
            address, why = _source(node, pod, service, client, forwarding)
            explanation = None
            if target is not None and address is not None and pod.ip(address.version):
                probe = Probe(target, port.protocol)
                if locate is None:
                    explanation = explain_flow(
                        policies,
                        snapshot,
                        str(address),
                        pod,
                        probe,
                        cluster_policies=cluster_policies,
                    )
                else:
                    explanation = explain_flow(
                        policies, snapshot, str(address), pod, probe, locate, cluster_policies
                    )
            paths.append(
                ServicePath(
                    node.name,
                    pod,
                    target,
                    None if address is None else str(address),
                    why,
                    explanation,
                    own_node=not service.keeps_client_address and pod.node_name == node.name,
                )
            )
    if not paths:
        return ServiceReach(
            str(client),
            service,
            port,
            forwarding,
            refused="no node of the snapshot runs an endpoint (externalTrafficPolicy Local)",
        )
    return ServiceReach(str(client), service, port, forwarding, tuple(paths))
