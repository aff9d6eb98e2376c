"""The cluster snapshot: namespaces, pods, services and nodes, as npc needs them.

Built by the frontend from ``kubectl get ns,pods -A -o yaml`` (or any input form), consumed by
the reference semantics and by backends that must resolve selectors to addresses. Only pods
that take part in networking are kept: those with an IP and not in phase Succeeded/Failed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import netaddr

from npc.ir import Origin, Protocol

__all__ = [
    "METADATA_NAME_LABEL",
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
    """A Service: its selector, cluster IPs and ports. Validated and kept, but no verdict
    depends on it: policies apply to pod addresses, after kube-proxy's translation."""

    namespace: str
    name: str
    type: str = "ClusterIP"
    selector: Mapping[str, str] | None = None
    cluster_ips: tuple[netaddr.IPAddress, ...] = ()
    ports: tuple[ServicePort, ...] = ()
    external_traffic_policy: str | None = None
    origin: Origin | None = field(default=None, compare=False)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class Node:
    """A node: labels, addresses (``(type, address)`` pairs, as in ``status.addresses``) and
    pod CIDRs."""

    name: str
    labels: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    addresses: tuple[tuple[str, netaddr.IPAddress], ...] = ()
    pod_cidrs: tuple[netaddr.IPNetwork, ...] = ()
    origin: Origin | None = field(default=None, compare=False)


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
        object.__setattr__(self, "namespaces", tuple(sorted(self.namespaces, key=lambda n: n.name)))
        object.__setattr__(
            self, "pods", tuple(sorted(self.pods, key=lambda p: (p.namespace, p.name)))
        )
        object.__setattr__(
            self, "services", tuple(sorted(self.services, key=lambda s: (s.namespace, s.name)))
        )
        object.__setattr__(self, "nodes", tuple(sorted(self.nodes, key=lambda n: n.name)))
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
