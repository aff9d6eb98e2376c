"""What each CNI enforces of NetworkPolicy, and which address its nodes give forwarded traffic.

The spec leaves enforcement to the network plugin, and plugins differ. :data:`CNIS` records,
per plugin (Terway per datapath mode), whether it enforces each feature that a policy can
silently lose, the version the fact was established for, and its public source.
``enforced`` is ``None`` where no source settles it: lint then says nothing (it reports only
what is known).

The second half answers the question behind the seed004 golden cases: a node that forwards
a NodePort or LoadBalancer client to a pod on another node source-NATs the packet to one of its own
addresses, and which one depends on the pod network: Calico's IPIP or VXLAN tunnel address
(recorded in the Node annotations ``projectcalico.org/IPv4IPIPTunnelAddr`` and
``projectcalico.org/IPv4VXLANTunnelAddr``), flannel's ``flannel.1`` address (the first
address of the node's pod CIDR) in VXLAN mode or its ``public-ip`` in host-gw mode, else the
node's InternalIP (routed pod networks: Calico BGP, kube-router, Cilium native routing,
Terway's ENI addresses). Without ``--cni``, npc uses whatever the snapshot's Node annotations
say, else the InternalIP.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import netaddr

from npc.snapshot import (
    CALICO_IPIP_TUNNEL,
    CALICO_VXLAN_TUNNEL,
    FLANNEL_BACKEND,
    FLANNEL_PUBLIC_IP,
    Node,
)

__all__ = [
    "CNIS",
    "Cni",
    "Fact",
    "Feature",
    "Forwarding",
    "cni_names",
    "forwarded_source",
    "get_cni",
    "own_address",
]


class Feature(enum.Enum):
    """A part of NetworkPolicy that some plugins do not enforce."""

    POLICY = "NetworkPolicy"
    PORT_RANGES = "port ranges (endPort)"
    NAMED_PORTS = "named ports"
    SCTP = "SCTP"
    IPBLOCK_PODS = "ipBlocks matching pod addresses"
    IPV6 = "IPv6"


class Forwarding(enum.Enum):
    """How a node's address on the pod network is found (see the module docstring)."""

    AUTO = "auto"
    CALICO = "calico"
    FLANNEL = "flannel"
    INTERNAL = "internal"


@dataclass(frozen=True, slots=True)
class Fact:
    """Whether a plugin enforces a feature (None: not established), for which version,
    according to which public source."""

    feature: Feature
    enforced: bool | None
    version: str
    source: str
    note: str = ""
    #: The first release that enforces it, where older releases in use ignore it.
    since: str | None = None


@dataclass(frozen=True, slots=True)
class Cni:
    """One plugin (or one datapath mode of a plugin) and what it enforces."""

    name: str
    description: str
    facts: tuple[Fact, ...]
    forwarding: Forwarding

    def fact(self, feature: Feature) -> Fact | None:
        for f in self.facts:
            if f.feature is feature:
                return f
        return None


_CALICO_AT = "Calico at commit 87c1590 (2026-08)"
_CILIUM_AT = "Cilium 1.18 (docs.cilium.io, stable)"
_CALICO_FACTS = (
    Fact(
        Feature.POLICY,
        True,
        _CALICO_AT,
        "libcalico-go lib/backend/k8s/conversion/conversion.go (K8sNetworkPolicyToCalico)",
    ),
    Fact(
        Feature.PORT_RANGES,
        True,
        "Calico with libcalico-go#1357 (2021) and later",
        "https://github.com/projectcalico/libcalico-go/pull/1357, "
        "https://github.com/projectcalico/calico/issues/4249",
    ),
    Fact(
        Feature.NAMED_PORTS,
        True,
        _CALICO_AT,
        "conversion.go passes named ports through as strings, resolved per workload endpoint",
    ),
    Fact(
        Feature.SCTP,
        True,
        "Calico with libcalico-go#1182 (2019) and later",
        "https://github.com/projectcalico/libcalico-go/pull/1182",
        "the node kernel needs SCTP connection tracking",
    ),
    Fact(
        Feature.IPBLOCK_PODS,
        True,
        _CALICO_AT,
        "conversion.go: an ipBlock becomes `nets`/`notNets`, matched against any address",
    ),
    Fact(Feature.IPV6, True, _CALICO_AT, "Calico rules carry IPv6 `nets` (ipVersion 6)"),
)
_CILIUM_FACTS = (
    Fact(
        Feature.POLICY,
        True,
        _CILIUM_AT,
        "https://docs.cilium.io/en/stable/network/kubernetes/policy/",
    ),
    Fact(
        Feature.PORT_RANGES,
        True,
        "Cilium 1.16 and later (earlier releases silently ignore endPort)",
        "https://github.com/cilium/cilium/pull/33389, https://github.com/cilium/cilium/issues/28684",
        since="1.16",
    ),
    Fact(
        Feature.NAMED_PORTS,
        True,
        _CILIUM_AT,
        "https://github.com/cilium/cilium/issues/30003",
        "a name given different numbers by different pods has misbehaved",
    ),
    Fact(
        Feature.SCTP,
        False,
        _CILIUM_AT,
        "https://docs.cilium.io/en/stable/configuration/sctp/",
        "beta, only with `sctp.enabled=true`",
    ),
    Fact(
        Feature.IPBLOCK_PODS,
        False,
        _CILIUM_AT,
        "https://github.com/cilium/cilium/issues/9209, "
        "https://github.com/cilium/cilium/issues/35212",
        "ipBlocks apply only to traffic from or to outside the cluster",
    ),
    Fact(
        Feature.IPV6,
        True,
        _CILIUM_AT,
        "https://docs.cilium.io/en/stable/network/kubernetes/policy/",
    ),
)
_KUBE_ROUTER_AT = "kube-router at commit 7c2c277 (2026-08)"


def _no_policy(name: str, description: str, version: str, source: str) -> Cni:
    return Cni(
        name,
        f"{description}: enforces no NetworkPolicy at all",
        (Fact(Feature.POLICY, False, version, source),),
        Forwarding.FLANNEL if name == "flannel" else Forwarding.INTERNAL,
    )


#: Every plugin npc knows, by the name ``--cni`` takes.
CNIS: Mapping[str, Cni] = MappingProxyType(
    {
        c.name: c
        for c in (
            Cni(
                "antrea",
                "Antrea (Open vSwitch)",
                (
                    Fact(Feature.POLICY, True, "Antrea 1.x", "https://antrea.io/docs/"),
                    Fact(
                        Feature.PORT_RANGES,
                        True,
                        "Antrea 1.1 and later",
                        "https://github.com/antrea-io/antrea/issues/1638",
                        since="1.1",
                    ),
                    Fact(
                        Feature.SCTP,
                        True,
                        "Antrea with the OVS kernel datapath",
                        "https://github.com/antrea-io/antrea/issues/2033",
                        "not with the OVS userspace datapath",
                    ),
                    Fact(Feature.NAMED_PORTS, None, "", "not established"),
                    Fact(Feature.IPBLOCK_PODS, None, "", "not established"),
                    Fact(Feature.IPV6, None, "", "not established"),
                ),
                Forwarding.INTERNAL,
            ),
            Cni("calico", "Calico", _CALICO_FACTS, Forwarding.CALICO),
            Cni(
                "canal",
                "Canal: flannel networking, Calico policy",
                _CALICO_FACTS,
                Forwarding.FLANNEL,
            ),
            Cni("cilium", "Cilium", _CILIUM_FACTS, Forwarding.INTERNAL),
            _no_policy(
                "flannel",
                "flannel, networking only",
                "every flannel release",
                "https://github.com/flannel-io/flannel/issues/558 (flannel README: policy is "
                "left to other projects)",
            ),
            Cni(
                "kube-router",
                "kube-router's network policy controller (iptables and ipsets)",
                (
                    Fact(
                        Feature.POLICY,
                        True,
                        _KUBE_ROUTER_AT,
                        "pkg/controllers/netpol/network_policy_controller.go",
                    ),
                    Fact(
                        Feature.PORT_RANGES,
                        True,
                        "kube-router with #1080 (2021-05) and later",
                        "https://github.com/cloudnativelabs/kube-router/pull/1080",
                    ),
                    Fact(
                        Feature.NAMED_PORTS,
                        True,
                        _KUBE_ROUTER_AT,
                        "https://github.com/cloudnativelabs/kube-router/pull/1037",
                    ),
                    Fact(
                        Feature.SCTP,
                        None,
                        _KUBE_ROUTER_AT,
                        "https://github.com/cloudnativelabs/kube-router/issues/1019",
                        "SCTP support is an open feature request",
                    ),
                    Fact(
                        Feature.IPBLOCK_PODS,
                        True,
                        _KUBE_ROUTER_AT,
                        "pkg/controllers/netpol/policy.go: ipBlocks are hash:net ipsets matched "
                        "against any address",
                    ),
                    Fact(
                        Feature.IPV6,
                        True,
                        "kube-router 2.0 and later",
                        "kube-router 2.0.0 release notes (dual-stack)",
                    ),
                ),
                Forwarding.INTERNAL,
            ),
            Cni(
                "terway-veth",
                "Terway, veth datapath: policy by a patched calico-felix",
                _CALICO_FACTS,
                Forwarding.INTERNAL,
            ),
            Cni(
                "terway-ipvlan",
                "Terway, IPvlan / datapath v2 (eBPF): policy by a patched cilium-agent",
                tuple(
                    Fact(
                        Feature.IPBLOCK_PODS,
                        False,
                        "Terway 1.15.0",
                        "https://github.com/AliyunContainerService/terway/issues/904",
                        "ipBlocks holding pod addresses are denied, as in Cilium",
                    )
                    if f.feature is Feature.IPBLOCK_PODS
                    else f
                    for f in _CILIUM_FACTS
                ),
                Forwarding.INTERNAL,
            ),
            _no_policy(
                "terway-eni",
                "Terway, exclusive ENI",
                "Terway at commit 89aadf8 (2026-07)",
                "cmd/terway-cli/policy.go (runExclusiveENI: no policy agent in exclusive-ENI mode)",
            ),
        )
    }
)


def cni_names() -> tuple[str, ...]:
    """The names ``--cni`` accepts, sorted."""
    return tuple(sorted(CNIS))


def get_cni(name: str) -> Cni:
    """The plugin called ``name``; :class:`KeyError` for an unknown one."""
    return CNIS[name]


def _ip(text: str | None) -> netaddr.IPAddress | None:
    if not text:
        return None
    try:
        return netaddr.IPAddress(text.split("/")[0].strip())
    except (netaddr.AddrFormatError, ValueError):
        return None


def _calico(node: Node) -> tuple[netaddr.IPAddress, str] | None:
    for key, what in ((CALICO_IPIP_TUNNEL, "IPIP tunnel"), (CALICO_VXLAN_TUNNEL, "VXLAN tunnel")):
        address = _ip(node.annotations.get(key))
        if address is not None:
            return address, f"{node.name}'s Calico {what} address (annotation {key})"
    return None


def _flannel(node: Node) -> tuple[netaddr.IPAddress, str] | None:
    backend = node.annotations.get(FLANNEL_BACKEND, "vxlan")
    if backend == "vxlan" and node.pod_cidrs:
        cidr = node.pod_cidrs[0]
        return cidr.network, (
            f"{node.name}'s flannel.1 address (VXLAN backend: the first address of its pod "
            f"CIDR {cidr})"
        )
    address = _ip(node.annotations.get(FLANNEL_PUBLIC_IP))
    if address is not None:
        return address, f"{node.name}'s flannel public-ip (annotation {FLANNEL_PUBLIC_IP})"
    return None


def forwarded_source(node: Node, forwarding: Forwarding) -> tuple[netaddr.IPAddress | None, str]:
    """The source address ``node`` gives a client's packet it source-NATs and forwards to a
    pod on another node, and why; None (with the reason) when the snapshot does not say."""
    found: tuple[netaddr.IPAddress, str] | None = None
    if forwarding in (Forwarding.CALICO, Forwarding.AUTO):
        found = _calico(node)
    if found is None and forwarding is Forwarding.FLANNEL:
        found = _flannel(node)
    if found is None and forwarding is Forwarding.AUTO and FLANNEL_BACKEND in node.annotations:
        found = _flannel(node)
    if found is not None:
        return found
    internal = node.address("InternalIP")
    if internal is not None:
        return internal, f"{node.name}'s InternalIP (the pod network is routed, not tunnelled)"
    return None, f"the snapshot gives {node.name} no InternalIP"


def own_address(node: Node) -> tuple[netaddr.IPAddress | None, str]:
    """The source a node gives a client's packet it source-NATs to one of its own pods."""
    internal = node.address("InternalIP")
    if internal is not None:
        return internal, f"{node.name}'s own address (InternalIP)"
    for _, address in node.addresses:
        return address, f"{node.name}'s own address"
    return None, f"the snapshot gives {node.name} no address"
