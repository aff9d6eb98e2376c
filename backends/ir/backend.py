"""The ``ir`` target: the canonical IR as YAML.

Shows what npc understood, after API-server defaulting and (unless ``--no-optimize``) the
optimizer: which directions each policy isolates, every peer with selectors in kubectl syntax
and ipBlocks as the exact CIDR list they allow, every port per protocol. Handy for reviewing a
policy change and for frontend golden tests.
"""

from __future__ import annotations

from typing import Any, ClassVar

import yaml

from npc import ir, kubeyaml, tiers
from npc.backends.base import Backend, BackendOptions, Counts, Emitted
from npc.backends.ir import counts
from npc.capabilities import NETWORK_POLICY, Capability
from npc.snapshot import Snapshot
from npc.tiers import ClusterPolicySet

__all__ = ["IrBackend", "describe_ports", "describe_selector"]


def describe_selector(selector: ir.LabelSelector) -> str:
    """kubectl syntax, ``all`` for the empty selector."""
    return str(selector) or "all"


def describe_ports(ports: ir.Ports) -> list[str]:
    """``TCP/80``, ``TCP/8000-8080``, ``TCP/http``, ``UDP/all``; ``[all]`` for any port."""
    if isinstance(ports, ir.AnyPort):
        return ["all"]
    out: list[str] = []
    for entry in ports.entries:
        if entry.all_ports:
            out.append(f"{entry.protocol}/all")
            continue
        out.extend(f"{entry.protocol}/{r}" for r in entry.ranges)
        out.extend(f"{entry.protocol}/{n}" for n in entry.named)
    return out


def _peer(peer: ir.Peer) -> dict[str, Any]:
    if isinstance(peer, ir.AddressPeer):
        return {"addresses": [str(c) for c in peer.addresses.cidrs]}
    namespaces = (
        "same"
        if isinstance(peer.namespaces, ir.SameNamespace)
        else describe_selector(peer.namespaces)
    )
    return {"namespaces": namespaces, "pods": describe_selector(peer.pods)}


def _rules(rules: tuple[ir.Rule, ...] | None) -> Any:
    if rules is None:
        return "not isolated"
    return [
        {
            "peers": "all" if isinstance(r.peers, ir.AnyPeer) else [_peer(p) for p in r.peers],
            "ports": describe_ports(r.ports),
        }
        for r in rules
    ]


def _cluster_peer(peer: tiers.ClusterPeer) -> dict[str, Any]:
    if isinstance(peer, ir.PodPeer | ir.AddressPeer):
        return _peer(peer)
    if isinstance(peer, tiers.NodesPeer):
        return {"nodes": describe_selector(peer.nodes)}
    if isinstance(peer, tiers.DomainNamesPeer):
        return {"domainNames": list(peer.names)}
    return {"unknown": "fails closed"}


def _cluster_policy(policy: tiers.ClusterPolicy) -> dict[str, Any]:
    return {
        "policy": policy.name,
        "tier": str(policy.tier),
        "priority": policy.priority,
        "subject": {
            "namespaces": describe_selector(policy.subject.namespaces),
            "pods": describe_selector(policy.subject.pods),
        },
        **{
            direction: [
                {
                    **({"name": r.name} if r.name else {}),
                    "action": str(r.action),
                    "peers": [_cluster_peer(p) for p in r.peers],
                    "ports": describe_ports(r.ports),
                }
                for r in policy.rules(direction)
            ]
            for direction in ("ingress", "egress")
        },
    }


class IrBackend(Backend):
    """The IR as YAML: what npc understood, for review, debugging and frontend golden tests.

    Expresses everything (it only describes the policies) and needs no snapshot."""

    name = "ir"
    description = "the canonical intermediate representation, as YAML (for review and debugging)"
    capabilities: ClassVar[frozenset[Capability]] = NETWORK_POLICY | {
        Capability.CLUSTER_NETWORK_POLICY
    }
    suffix = "ir.yaml"

    def count(self, emitted: Emitted) -> Counts:
        """Policies; their rules (:mod:`.counts`)."""
        return counts.count(emitted)

    def emit(
        self, policies: ir.PolicySet, snapshot: Snapshot | None, options: BackendOptions
    ) -> Emitted:
        doc = {
            "policies": [
                {
                    "policy": p.key,
                    "podSelector": describe_selector(p.pod_selector),
                    "ingress": _rules(p.ingress),
                    "egress": _rules(p.egress),
                }
                for p in policies
            ]
        }
        # yaml.safe_dump's text, faster (libyaml's emitter, nodes made without the representer)
        text = kubeyaml.safe_dump(doc, sort_keys=False, default_flow_style=False, width=100)
        return Emitted(text)

    def emit_tiered(
        self,
        policies: ir.PolicySet,
        cluster_policies: ClusterPolicySet,
        snapshot: Snapshot | None,
        options: BackendOptions,
    ) -> Emitted:
        """The NetworkPolicies, then the ClusterNetworkPolicies in evaluation order."""
        emitted = self.emit(policies, snapshot, options)
        if not cluster_policies:
            return emitted
        doc = {"clusterPolicies": [_cluster_policy(p) for p in cluster_policies]}
        text = yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, width=100)
        return Emitted(emitted.text + text, emitted.diagnostics)
