"""The ClusterNetworkPolicy shapes (``policy.networking.k8s.io/v1alpha2``), field for field
as ``apis/v1alpha2/clusternetworkpolicy_types.go`` of kubernetes-sigs/network-policy-api
v0.2.0 declares them (the experimental channel: ``nodes`` and ``domainNames`` included), for
strict decoding. Their OpenAPI and CEL rules are checked in
:mod:`npc.frontend.k8s.cnp_validation`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar

from npc.frontend.decode import json_field
from npc.frontend.k8s.api import LabelSelector, ObjectMeta

__all__ = [
    "CNP_API_VERSION",
    "ClusterNetworkPolicy",
    "ClusterNetworkPolicyEgressPeer",
    "ClusterNetworkPolicyEgressRule",
    "ClusterNetworkPolicyIngressPeer",
    "ClusterNetworkPolicyIngressRule",
    "ClusterNetworkPolicyProtocol",
    "ClusterNetworkPolicySpec",
    "ClusterNetworkPolicySubject",
    "NamespacedPod",
    "Port",
    "PortRange",
    "ProtocolPort",
]

CNP_API_VERSION = "policy.networking.k8s.io/v1alpha2"

_NP_HINT = "`{key}` is a NetworkPolicy field; a ClusterNetworkPolicy rule has "


@dataclass(frozen=True, slots=True)
class NamespacedPod:
    namespace_selector: LabelSelector | None = json_field("namespaceSelector")
    pod_selector: LabelSelector | None = json_field("podSelector")


@dataclass(frozen=True, slots=True)
class ClusterNetworkPolicySubject:
    namespaces: LabelSelector | None = None
    pods: NamespacedPod | None = None

    __npc_hints__: ClassVar[Mapping[str, str]] = MappingProxyType(
        {
            "podSelector": "write `pods: {{namespaceSelector: {{}}, podSelector: {{...}}}}`",
            "namespaceSelector": "write `namespaces: {{...}}` (a label selector)",
        }
    )


@dataclass(frozen=True, slots=True)
class PortRange:
    start: int | None = None
    end: int | None = None


@dataclass(frozen=True, slots=True)
class Port:
    number: int | None = None
    range: PortRange | None = None


@dataclass(frozen=True, slots=True)
class ProtocolPort:
    """``tcp``, ``udp`` or ``sctp``: the destination port to match."""

    destination_port: Port | None = json_field("destinationPort")

    __npc_hints__: ClassVar[Mapping[str, str]] = MappingProxyType(
        {"port": "write `destinationPort: {{number: 80}}`"}
    )


@dataclass(frozen=True, slots=True)
class ClusterNetworkPolicyProtocol:
    tcp: ProtocolPort | None = None
    udp: ProtocolPort | None = None
    sctp: ProtocolPort | None = None
    destination_named_port: str | None = json_field("destinationNamedPort")

    __npc_hints__: ClassVar[Mapping[str, str]] = MappingProxyType(
        {
            "port": "write `tcp: {{destinationPort: {{number: 80}}}}`",
            "protocol": "write the protocol as the key: `tcp: {{destinationPort: {{number: 80}}}}`",
        }
    )


@dataclass(frozen=True, slots=True)
class ClusterNetworkPolicyIngressPeer:
    namespaces: LabelSelector | None = None
    pods: NamespacedPod | None = None

    __npc_hints__: ClassVar[Mapping[str, str]] = MappingProxyType(
        {
            "networks": "`networks` peers are for egress rules only",
            "nodes": "`nodes` peers are for egress rules only",
            "domainNames": "`domainNames` peers are for egress rules only",
            "ipBlock": "ingress rules of a ClusterNetworkPolicy have no address peers",
            "podSelector": "write `pods: {{namespaceSelector: {{}}, podSelector: {{...}}}}`",
            "namespaceSelector": "write `namespaces: {{...}}` (a label selector)",
        }
    )


@dataclass(frozen=True, slots=True)
class ClusterNetworkPolicyEgressPeer:
    namespaces: LabelSelector | None = None
    pods: NamespacedPod | None = None
    nodes: LabelSelector | None = None
    networks: tuple[str, ...] | None = None
    domain_names: tuple[str, ...] | None = json_field("domainNames")

    __npc_hints__: ClassVar[Mapping[str, str]] = MappingProxyType(
        {
            "ipBlock": "write `networks: [10.0.0.0/8]` (CIDRs)",
            "podSelector": "write `pods: {{namespaceSelector: {{}}, podSelector: {{...}}}}`",
            "namespaceSelector": "write `namespaces: {{...}}` (a label selector)",
        }
    )


_RULE_HINTS = MappingProxyType(
    {
        "ports": _NP_HINT + "`protocols: [{{tcp: {{destinationPort: {{number: 80}}}}}}]`",
    }
)


@dataclass(frozen=True, slots=True)
class ClusterNetworkPolicyIngressRule:
    name: str | None = None
    action: str | None = None
    from_: tuple[ClusterNetworkPolicyIngressPeer, ...] | None = json_field("from")
    protocols: tuple[ClusterNetworkPolicyProtocol, ...] | None = None

    __npc_hints__: ClassVar[Mapping[str, str]] = MappingProxyType(
        {**_RULE_HINTS, "to": "ingress rules take `from:`; `to:` is for egress rules"}
    )


@dataclass(frozen=True, slots=True)
class ClusterNetworkPolicyEgressRule:
    name: str | None = None
    action: str | None = None
    to: tuple[ClusterNetworkPolicyEgressPeer, ...] | None = None
    protocols: tuple[ClusterNetworkPolicyProtocol, ...] | None = None

    __npc_hints__: ClassVar[Mapping[str, str]] = MappingProxyType(
        {**_RULE_HINTS, "from": "egress rules take `to:`; `from:` is for ingress rules"}
    )


@dataclass(frozen=True, slots=True)
class ClusterNetworkPolicySpec:
    tier: str | None = None
    priority: int | None = None
    subject: ClusterNetworkPolicySubject | None = None
    ingress: tuple[ClusterNetworkPolicyIngressRule, ...] | None = None
    egress: tuple[ClusterNetworkPolicyEgressRule, ...] | None = None

    __npc_hints__: ClassVar[Mapping[str, str]] = MappingProxyType(
        {
            "podSelector": "a ClusterNetworkPolicy selects pods with `subject:`",
            "policyTypes": "a ClusterNetworkPolicy has no policyTypes: a direction without "
            "rules is not affected",
        }
    )


@dataclass(frozen=True, slots=True)
class ClusterNetworkPolicy:
    api_version: str | None = json_field("apiVersion")
    kind: str | None = None
    metadata: ObjectMeta | None = None
    spec: ClusterNetworkPolicySpec | None = None
    # Written by the implementation (conditions); carries no policy.
    status: Any = None
