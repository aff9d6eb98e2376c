"""From a validated ClusterNetworkPolicy to the IR of :mod:`npc.tiers`.

* ``subject.namespaces: S`` is every pod of the namespaces S selects; ``subject.pods`` is
  ``podSelector`` within ``namespaceSelector`` (absent: every namespace).
* Peers ``namespaces`` and ``pods`` become :class:`npc.ir.PodPeer` (a namespace selector,
  never "same namespace"), each CIDR of ``networks`` an :class:`npc.ir.AddressPeer`, ``nodes``
  a :class:`npc.tiers.NodesPeer`, ``domainNames`` a :class:`npc.tiers.DomainNamesPeer`.
* ``protocols`` absent is every protocol and port; ``destinationNamedPort: n`` matches the
  destination pod's container port named n of whichever protocol the connection uses (so it
  becomes the name under TCP, UDP and SCTP).
"""

from __future__ import annotations

from npc import ir, tiers
from npc.frontend.k8s import api, cnp_api, names
from npc.frontend.lower import lower_label_selector
from npc.frontend.source import ObjectRef

__all__ = ["lower_cluster_network_policy"]


def _namespaced(pods: cnp_api.NamespacedPod) -> ir.PodPeer:
    return ir.PodPeer(
        lower_label_selector(pods.namespace_selector), lower_label_selector(pods.pod_selector)
    )


def _selector_peers(
    namespaces: object, pods: cnp_api.NamespacedPod | None
) -> list[tiers.ClusterPeer]:
    out: list[tiers.ClusterPeer] = []
    if isinstance(namespaces, api.LabelSelector):
        out.append(ir.PodPeer(lower_label_selector(namespaces), ir.EVERYTHING))
    if pods is not None:
        out.append(_namespaced(pods))
    return out


def _ingress_peer(peer: cnp_api.ClusterNetworkPolicyIngressPeer) -> list[tiers.ClusterPeer]:
    return _selector_peers(peer.namespaces, peer.pods) or [tiers.UnknownPeer()]


def _egress_peer(peer: cnp_api.ClusterNetworkPolicyEgressPeer) -> list[tiers.ClusterPeer]:
    out = _selector_peers(peer.namespaces, peer.pods)
    if peer.nodes is not None:
        out.append(tiers.NodesPeer(lower_label_selector(peer.nodes)))
    for text in peer.networks or ():
        parsed = names.parse_cidr(text)
        assert parsed is not None, "lowering a network that did not validate"
        out.append(ir.AddressPeer(ir.AddressSet((parsed.network,)), parsed.network))
    if peer.domain_names is not None:
        out.append(tiers.DomainNamesPeer(tuple(peer.domain_names)))
    return out or [tiers.UnknownPeer()]


def _ports(protocols: tuple[cnp_api.ClusterNetworkPolicyProtocol, ...] | None) -> ir.Ports:
    if not protocols:
        return ir.ANY_PORT
    entries: list[ir.ProtocolPorts] = []
    for protocol in protocols:
        if protocol.destination_named_port is not None:
            name = (protocol.destination_named_port,)
            entries.extend(ir.ProtocolPorts(p, (), name) for p in ir.Protocol)
        for proto, entry in (
            (ir.Protocol.TCP, protocol.tcp),
            (ir.Protocol.UDP, protocol.udp),
            (ir.Protocol.SCTP, protocol.sctp),
        ):
            if entry is None or entry.destination_port is None:
                continue
            port = entry.destination_port
            if port.number is not None:
                entries.append(ir.ProtocolPorts(proto, (ir.PortRange(port.number, port.number),)))
            elif port.range is not None:
                start, end = port.range.start, port.range.end
                assert start is not None and end is not None, "lowering an invalid range"
                entries.append(ir.ProtocolPorts(proto, (ir.PortRange(start, end),)))
    return ir.PortSet(tuple(entries))


def lower_cluster_network_policy(
    cnp: cnp_api.ClusterNetworkPolicy, ref: ObjectRef
) -> tiers.ClusterPolicy:
    """The IR of one validated ClusterNetworkPolicy."""
    meta = cnp.metadata or api.ObjectMeta()
    spec = cnp.spec or cnp_api.ClusterNetworkPolicySpec()
    subject = spec.subject or cnp_api.ClusterNetworkPolicySubject()
    if subject.pods is not None:
        pods = _namespaced(subject.pods)
        assert isinstance(pods.namespaces, ir.LabelSelector)
        subj = tiers.Subject(pods.namespaces, pods.pods)
    else:
        subj = tiers.Subject(lower_label_selector(subject.namespaces), ir.EVERYTHING)
    ingress = tuple(
        tiers.ClusterRule(
            tiers.Action(r.action or ""),
            tuple(p for peer in r.from_ or () for p in _ingress_peer(peer)),
            _ports(r.protocols),
            r.name or "",
            ref.origin(("spec", "ingress", i)),
        )
        for i, r in enumerate(spec.ingress or ())
    )
    egress = tuple(
        tiers.ClusterRule(
            tiers.Action(r.action or ""),
            tuple(p for peer in r.to or () for p in _egress_peer(peer)),
            _ports(r.protocols),
            r.name or "",
            ref.origin(("spec", "egress", i)),
        )
        for i, r in enumerate(spec.egress or ())
    )
    return tiers.ClusterPolicy(
        name=meta.name or "",
        tier=tiers.Tier(spec.tier or ""),
        priority=spec.priority or 0,
        subject=subj,
        ingress=ingress,
        egress=egress,
        origin=ref.origin(),
    )
