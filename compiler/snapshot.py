"""The cluster snapshot: namespaces, pods, services and nodes, as npc needs them.

Built by the frontend from ``kubectl get ns,pods -A -o yaml`` (or any input form), consumed by
the reference semantics and by backends that must resolve selectors to addresses. Only pods
that take part in networking are kept: those with an IP and not in phase Succeeded/Failed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from operator import attrgetter
from types import MappingProxyType

import netaddr

from npc.ir import Origin, Protocol

__all__ = [
    "CALICO_IPIP_TUNNEL",
    "CALICO_VXLAN_TUNNEL",
    "FLANNEL_BACKEND",
    "FLANNEL_PUBLIC_IP",
    "METADATA_NAME_LABEL",
    "NODE_ANNOTATIONS",
    "ContainerPort",
    "Namespace",
    "Node",
    "Pod",
    "Service",
    "ServicePort",
    "Snapshot",
    "frozen_labels",
]

#: The label the API server puts on every namespace, holding its name.
METADATA_NAME_LABEL = "kubernetes.io/metadata.name"

_EMPTY: Mapping[str, str] = MappingProxyType({})


def frozen_labels(labels: Mapping[str, str] | None) -> Mapping[str, str]:
    """A read-only copy of a label map, keys sorted (so printing is deterministic)."""
    if not labels:
        return _EMPTY
    return MappingProxyType(dict(sorted(labels.items())))


@dataclass(frozen=True, slots=True)
class Namespace:
    """A namespace and its labels (what namespaceSelectors match)."""

    name: str
    labels: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    origin: Origin | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class ContainerPort:
    """A declared container port; ``name`` is what named ports in policies refer to."""

    port: int
    protocol: Protocol = Protocol.TCP
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Pod:
    """A pod as policies see it: labels, addresses, node, declared ports. A hostNetwork pod
    has its node's addresses and is never selected by a policy."""

    namespace: str
    name: str
    labels: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    ips: tuple[netaddr.IPAddress, ...] = ()
    host_network: bool = False
    node_name: str | None = None
    ports: tuple[ContainerPort, ...] = ()
    origin: Origin | None = field(default=None, compare=False)

    @property
    def key(self) -> str:
        """``namespace/name``."""
        return f"{self.namespace}/{self.name}"

    def named_port_numbers(self, name: str, protocol: Protocol) -> tuple[int, ...]:
        """Every number this pod gives the container-port name ``name`` with ``protocol``,
        sorted. Names are unique only within a container (the API server accepts one name
        in two containers, with a warning), so a named port can stand for several numbers
        on one pod, and a policy naming it admits each of them."""
        return tuple(
            sorted({p.port for p in self.ports if p.name == name and p.protocol is protocol})
        )

    def port_names(self, port: int, protocol: Protocol) -> tuple[str, ...]:
        """Names this pod gives to ``port``/``protocol`` (what a named port can match)."""
        return tuple(
            p.name for p in self.ports if p.name and p.port == port and p.protocol is protocol
        )

    def ip(self, version: int) -> netaddr.IPAddress | None:
        """The first address of a family (4 or 6)."""
        for a in self.ips:
            if a.version == version:
                return a
        return None


@dataclass(frozen=True, slots=True)
class ServicePort:
    """One port of a Service; ``target_port`` is a number or a container port name."""

    port: int
    protocol: Protocol = Protocol.TCP
    name: str | None = None
    target_port: int | str | None = None
    node_port: int | None = None


@dataclass(frozen=True, slots=True)
class Service:
    """A Service: its selector, cluster IPs, ports and traffic policies. Policies apply to
    pod addresses, after kube-proxy's translation; the Service decides which source address
    a client outside the cluster has by then (:mod:`npc.analysis.services`)."""

    namespace: str
    name: str
    type: str = "ClusterIP"
    selector: Mapping[str, str] | None = None
    cluster_ips: tuple[netaddr.IPAddress, ...] = ()
    ports: tuple[ServicePort, ...] = ()
    external_traffic_policy: str | None = None
    origin: Origin | None = field(default=None, compare=False)
    internal_traffic_policy: str | None = None
    load_balancer_source_ranges: tuple[netaddr.IPNetwork, ...] = ()
    external_ips: tuple[netaddr.IPAddress, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def external(self) -> bool:
        """Reachable from outside the cluster through every node: NodePort or LoadBalancer."""
        return self.type in ("NodePort", "LoadBalancer")

    @property
    def keeps_client_address(self) -> bool:
        """``externalTrafficPolicy: Local``: external traffic is not source-NATed (the API
        server defaults the field to ``Cluster`` for NodePort and LoadBalancer Services)."""
        return self.external_traffic_policy == "Local"

    def endpoints(self, snapshot: Snapshot) -> tuple[Pod, ...]:
        """The pods the selector picks in the Service's namespace (all pods of the snapshot
        are taken as ready: it keeps only running pods with an address). No pod without a
        selector, or an empty one: such a Service's endpoints are managed by hand."""
        if not self.selector:
            return ()
        wanted = self.selector.items()
        return tuple(
            p for p in snapshot.pods_in(self.namespace) if wanted <= p.labels.items()
        )

    def target_port(self, port: ServicePort, pod: Pod) -> int | None:
        """The container port ``port`` forwards to on ``pod``: ``targetPort`` as a number,
        or the pod's container port of that name (None when the pod has none); an absent
        targetPort is the port itself."""
        target = port.target_port
        if target is None:
            return port.port
        if isinstance(target, int):
            return target
        if target.isdigit():
            return int(target)
        numbers = pod.named_port_numbers(target, port.protocol)
        return numbers[0] if numbers else None


#: Node annotations where CNIs record the address a node uses on the pod network.
CALICO_IPIP_TUNNEL = "projectcalico.org/IPv4IPIPTunnelAddr"
CALICO_VXLAN_TUNNEL = "projectcalico.org/IPv4VXLANTunnelAddr"
FLANNEL_PUBLIC_IP = "flannel.alpha.coreos.com/public-ip"
FLANNEL_BACKEND = "flannel.alpha.coreos.com/backend-type"
#: The annotations a snapshot keeps (the rest of a Node's annotations are noise).
NODE_ANNOTATIONS = frozenset(
    {CALICO_IPIP_TUNNEL, CALICO_VXLAN_TUNNEL, FLANNEL_PUBLIC_IP, FLANNEL_BACKEND}
)


@dataclass(frozen=True, slots=True)
class Node:
    """A node: labels, addresses (``(type, address)`` pairs, as in ``status.addresses``) and
    pod CIDRs."""

    name: str
    labels: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    addresses: tuple[tuple[str, netaddr.IPAddress], ...] = ()
    pod_cidrs: tuple[netaddr.IPNetwork, ...] = ()
    origin: Origin | None = field(default=None, compare=False)
    annotations: Mapping[str, str] = field(default_factory=lambda: _EMPTY)

    def address(self, kind: str) -> netaddr.IPAddress | None:
        """The first address of a ``status.addresses`` type (``InternalIP``, ``ExternalIP``)."""
        for t, a in self.addresses:
            if t == kind:
                return a
        return None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Objects sorted by (namespace, name); indexes are derived, not compared."""

    namespaces: tuple[Namespace, ...] = ()
    pods: tuple[Pod, ...] = ()
    services: tuple[Service, ...] = ()
    nodes: tuple[Node, ...] = ()
    _ns: Mapping[str, Namespace] = field(init=False, compare=False, repr=False)
    _pods_by_ns: Mapping[str, tuple[Pod, ...]] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        by_name, by_key = attrgetter("name"), attrgetter("namespace", "name")
        object.__setattr__(self, "namespaces", tuple(sorted(self.namespaces, key=by_name)))
        object.__setattr__(self, "pods", tuple(sorted(self.pods, key=by_key)))
        object.__setattr__(self, "services", tuple(sorted(self.services, key=by_key)))
        object.__setattr__(self, "nodes", tuple(sorted(self.nodes, key=by_name)))
        object.__setattr__(self, "_ns", MappingProxyType({n.name: n for n in self.namespaces}))
        by_ns: dict[str, list[Pod]] = {}
        for p in self.pods:
            by_ns.setdefault(p.namespace, []).append(p)
        object.__setattr__(
            self, "_pods_by_ns", MappingProxyType({k: tuple(v) for k, v in by_ns.items()})
        )

    def namespace(self, name: str) -> Namespace | None:
        return self._ns.get(name)

    def namespace_labels(self, name: str) -> Mapping[str, str]:
        ns = self._ns.get(name)
        return ns.labels if ns is not None else MappingProxyType({METADATA_NAME_LABEL: name})

    def pods_in(self, namespace: str) -> tuple[Pod, ...]:
        return self._pods_by_ns.get(namespace, ())

    def pod(self, key: str) -> Pod | None:
        namespace, _, name = key.partition("/")
        for p in self.pods_in(namespace):
            if p.name == name:
                return p
        return None

    def __iter__(self) -> Iterator[Pod]:
        return iter(self.pods)
