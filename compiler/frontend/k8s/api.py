"""The Kubernetes API shapes npc reads, as frozen dataclasses with their JSON names.

``NetworkPolicy`` and its parts mirror ``k8s.io/api/networking/v1`` field for field (strict
decoding rejects anything else). The snapshot kinds (Namespace, Pod, Service, Node) list only
the fields npc uses and are decoded leniently: ``kubectl get -o yaml`` prints many more.

Optional pointers in Go are ``X | None`` here, because nil and empty differ in meaning
(``podSelector: {}`` selects every pod; an absent one in a peer selects none by itself).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar

from npc.frontend.decode import json_field

__all__ = [
    "IPBlock",
    "LabelSelector",
    "LabelSelectorRequirement",
    "Namespace",
    "NetworkPolicy",
    "NetworkPolicyEgressRule",
    "NetworkPolicyIngressRule",
    "NetworkPolicyPeer",
    "NetworkPolicyPort",
    "NetworkPolicySpec",
    "Node",
    "NodeMeta",
    "ObjectMeta",
    "Pod",
    "Service",
    "SnapshotMeta",
]

_PEER_HINT = (
    "peers go in a list under `from:` (ingress) or `to:` (egress), e.g. `- from: [{{{key}: ...}}]`"
)
_RULE_HINT = "`{key}` belongs inside a rule: a list item under `ingress:` or `egress:`"


@dataclass(frozen=True, slots=True)
class ObjectMeta:
    name: str | None = None
    generate_name: str | None = json_field("generateName")
    namespace: str | None = None
    self_link: str | None = json_field("selfLink")
    uid: str | None = None
    resource_version: str | None = json_field("resourceVersion")
    generation: int | None = None
    creation_timestamp: str | None = json_field("creationTimestamp")
    deletion_timestamp: str | None = json_field("deletionTimestamp")
    deletion_grace_period_seconds: int | None = json_field("deletionGracePeriodSeconds")
    labels: Mapping[str, str] | None = None
    annotations: Mapping[str, str] | None = None
    owner_references: Any = json_field("ownerReferences")
    finalizers: tuple[str, ...] | None = None
    managed_fields: Any = json_field("managedFields")


@dataclass(frozen=True, slots=True)
class LabelSelectorRequirement:
    key: str = ""
    operator: str = ""
    values: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class LabelSelector:
    match_labels: Mapping[str, str] | None = json_field("matchLabels")
    match_expressions: tuple[LabelSelectorRequirement, ...] | None = json_field("matchExpressions")

    __npc_hints__: ClassVar[Mapping[str, str]] = MappingProxyType(
        {"*": "labels go under `matchLabels:`, e.g. `matchLabels: {{{key}: ...}}`"}
    )


@dataclass(frozen=True, slots=True)
class IPBlock:
    cidr: str = ""
    except_: tuple[str, ...] | None = json_field("except")


@dataclass(frozen=True, slots=True)
class NetworkPolicyPeer:
    pod_selector: LabelSelector | None = json_field("podSelector")
    namespace_selector: LabelSelector | None = json_field("namespaceSelector")
    ip_block: IPBlock | None = json_field("ipBlock")

    __npc_hints__: ClassVar[Mapping[str, str]] = MappingProxyType(
        {
            "ports": "`ports` belongs to the rule, beside `from:`/`to:`, not inside a peer",
            "cidr": "`cidr` goes inside `ipBlock:`",
            "except": "`except` goes inside `ipBlock:`",
            "matchLabels": "`matchLabels` goes inside `podSelector:` or `namespaceSelector:`",
        }
    )


@dataclass(frozen=True, slots=True)
class NetworkPolicyPort:
    protocol: str | None = None
    port: int | str | None = None
    end_port: int | None = json_field("endPort")


_RULE_HINTS = MappingProxyType(
    {
        "podSelector": _PEER_HINT,
        "namespaceSelector": _PEER_HINT,
        "ipBlock": _PEER_HINT,
        "port": "ports go in a list: `ports: [{{port: 80, protocol: TCP}}]`",
        "protocol": "protocols go on each port: `ports: [{{port: 80, protocol: TCP}}]`",
    }
)


@dataclass(frozen=True, slots=True)
class NetworkPolicyIngressRule:
    ports: tuple[NetworkPolicyPort, ...] | None = None
    from_: tuple[NetworkPolicyPeer, ...] | None = json_field("from")

    __npc_hints__: ClassVar[Mapping[str, str]] = MappingProxyType(
        {**_RULE_HINTS, "to": "ingress rules take `from:`; `to:` is for egress rules"}
    )


@dataclass(frozen=True, slots=True)
class NetworkPolicyEgressRule:
    ports: tuple[NetworkPolicyPort, ...] | None = None
    to: tuple[NetworkPolicyPeer, ...] | None = None

    __npc_hints__: ClassVar[Mapping[str, str]] = MappingProxyType(
        {**_RULE_HINTS, "from": "egress rules take `to:`; `from:` is for ingress rules"}
    )


@dataclass(frozen=True, slots=True)
class NetworkPolicySpec:
    pod_selector: LabelSelector | None = json_field("podSelector")
    ingress: tuple[NetworkPolicyIngressRule, ...] | None = None
    egress: tuple[NetworkPolicyEgressRule, ...] | None = None
    policy_types: tuple[str, ...] | None = json_field("policyTypes")

    __npc_hints__: ClassVar[Mapping[str, str]] = MappingProxyType(
        {
            "from": _RULE_HINT,
            "to": _RULE_HINT,
            "ports": _RULE_HINT,
            "namespace": "`namespace` belongs in `metadata:`",
            "name": "`name` belongs in `metadata:`",
        }
    )


@dataclass(frozen=True, slots=True)
class NetworkPolicy:
    api_version: str | None = json_field("apiVersion")
    kind: str | None = None
    metadata: ObjectMeta | None = None
    spec: NetworkPolicySpec | None = None
    # Clusters from 1.24 to 1.27 served (and `kubectl get -o yaml` prints) `status: {}`; the
    # field was removed in 1.28. It carries no policy, so it is read and ignored.
    status: Any = None

    __npc_hints__: ClassVar[Mapping[str, str]] = MappingProxyType(
        {
            "podSelector": "`podSelector` belongs in `spec:`",
            "ingress": "`ingress` belongs in `spec:`",
            "egress": "`egress` belongs in `spec:`",
            "policyTypes": "`policyTypes` belongs in `spec:`",
            "name": "`name` belongs in `metadata:`",
            "namespace": "`namespace` belongs in `metadata:`",
        }
    )


# -- snapshot kinds (lenient) --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SnapshotMeta:
    """The metadata npc reads from snapshot objects (the rest is noise: managedFields,
    annotations, owner references; skipping it keeps big snapshots fast)."""

    name: str | None = None
    namespace: str | None = None
    labels: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class Namespace:
    api_version: str | None = json_field("apiVersion")
    kind: str | None = None
    metadata: SnapshotMeta | None = None


@dataclass(frozen=True, slots=True)
class ContainerPort:
    name: str | None = None
    container_port: int | None = json_field("containerPort")
    protocol: str | None = None
    host_port: int | None = json_field("hostPort")


@dataclass(frozen=True, slots=True)
class Container:
    name: str | None = None
    ports: tuple[ContainerPort, ...] | None = None
    restart_policy: str | None = json_field("restartPolicy")


@dataclass(frozen=True, slots=True)
class PodSpec:
    containers: tuple[Container, ...] | None = None
    init_containers: tuple[Container, ...] | None = json_field("initContainers")
    host_network: bool | None = json_field("hostNetwork")
    node_name: str | None = json_field("nodeName")


@dataclass(frozen=True, slots=True)
class PodIP:
    ip: str | None = None


@dataclass(frozen=True, slots=True)
class PodStatus:
    phase: str | None = None
    pod_ip: str | None = json_field("podIP")
    pod_ips: tuple[PodIP, ...] | None = json_field("podIPs")
    host_ip: str | None = json_field("hostIP")


@dataclass(frozen=True, slots=True)
class Pod:
    api_version: str | None = json_field("apiVersion")
    kind: str | None = None
    metadata: SnapshotMeta | None = None
    spec: PodSpec | None = None
    status: PodStatus | None = None


@dataclass(frozen=True, slots=True)
class ServicePort:
    name: str | None = None
    protocol: str | None = None
    port: int | None = None
    target_port: int | str | None = json_field("targetPort")
    node_port: int | None = json_field("nodePort")


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    type: str | None = None
    selector: Mapping[str, str] | None = None
    ports: tuple[ServicePort, ...] | None = None
    cluster_ip: str | None = json_field("clusterIP")
    cluster_ips: tuple[str, ...] | None = json_field("clusterIPs")
    external_ips: tuple[str, ...] | None = json_field("externalIPs")
    external_traffic_policy: str | None = json_field("externalTrafficPolicy")
    internal_traffic_policy: str | None = json_field("internalTrafficPolicy")
    load_balancer_source_ranges: tuple[str, ...] | None = json_field("loadBalancerSourceRanges")


@dataclass(frozen=True, slots=True)
class Service:
    api_version: str | None = json_field("apiVersion")
    kind: str | None = None
    metadata: SnapshotMeta | None = None
    spec: ServiceSpec | None = None


@dataclass(frozen=True, slots=True)
class NodeMeta(SnapshotMeta):
    """A Node's metadata: also its annotations, where CNIs record tunnel addresses."""

    annotations: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class NodeAddress:
    type: str | None = None
    address: str | None = None


@dataclass(frozen=True, slots=True)
class NodeSpec:
    pod_cidr: str | None = json_field("podCIDR")
    pod_cidrs: tuple[str, ...] | None = json_field("podCIDRs")


@dataclass(frozen=True, slots=True)
class NodeStatus:
    addresses: tuple[NodeAddress, ...] | None = None


@dataclass(frozen=True, slots=True)
class Node:
    api_version: str | None = json_field("apiVersion")
    kind: str | None = None
    metadata: NodeMeta | None = None
    spec: NodeSpec | None = None
    status: NodeStatus | None = None
