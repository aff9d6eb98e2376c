"""From a validated ``NetworkPolicy`` to the IR, applying the API server's defaults.

Defaulting (``SetDefaults_NetworkPolicy``, ``SetDefaults_NetworkPolicyPort``):

* policyTypes empty or absent: ``[Ingress]``, plus ``Egress`` when egress rules exist;
* a port entry without protocol is TCP;
* the namespace defaults to ``default``, as kubectl does without ``-n``.

Only objects that validated cleanly are lowered; nothing here reports problems.
"""

from __future__ import annotations

from npc import ir
from npc.frontend.k8s import api, names
from npc.frontend.k8s.validation import DEFAULT_NAMESPACE
from npc.frontend.source import ObjectRef

__all__ = ["Blocks", "effective_policy_types", "lower_label_selector", "lower_network_policy"]


def effective_policy_types(spec: api.NetworkPolicySpec) -> tuple[str, ...]:
    """policyTypes after defaulting."""
    if spec.policy_types:
        return spec.policy_types
    if spec.egress:
        return ("Ingress", "Egress")
    return ("Ingress",)


def lower_label_selector(selector: api.LabelSelector | None) -> ir.LabelSelector:
    """A validated selector as IR; absent means the empty selector (everything)."""
    if selector is None:
        return ir.EVERYTHING
    return ir.LabelSelector(
        tuple((selector.match_labels or {}).items()),
        tuple(
            ir.Requirement(r.key, ir.Operator(r.operator), tuple(r.values or ()))
            for r in selector.match_expressions or ()
        ),
    )


#: ipBlocks already lowered, by ``(cidr, excepts)`` as written: teams copy the same blocks
#: ("the internet but the pod network") into every namespace, and parsing and subtracting
#: CIDRs costs more than the rest of a policy. The peers are immutable, so sharing is safe.
Blocks = dict[tuple[str, tuple[str, ...]], ir.AddressPeer]


def _block(block: api.IPBlock) -> ir.AddressPeer:
    cidr = names.parse_cidr(block.cidr)
    assert cidr is not None, "lowering an ipBlock that did not validate"
    excepts = []
    for text in block.except_ or ():
        parsed = names.parse_cidr(text)
        assert parsed is not None, "lowering an except that did not validate"
        excepts.append(parsed.network)
    return ir.AddressPeer(
        ir.AddressSet.from_block(cidr.network, excepts), cidr.network, tuple(excepts)
    )


def _peer(peer: api.NetworkPolicyPeer, blocks: Blocks) -> ir.Peer:
    if peer.ip_block is not None:
        key = (peer.ip_block.cidr, tuple(peer.ip_block.except_ or ()))
        found = blocks.get(key)
        if found is None:
            found = blocks[key] = _block(peer.ip_block)
        return found
    pods = lower_label_selector(peer.pod_selector)
    if peer.namespace_selector is None:
        return ir.PodPeer(ir.SAME_NAMESPACE, pods)
    return ir.PodPeer(lower_label_selector(peer.namespace_selector), pods)


def _ports(ports: tuple[api.NetworkPolicyPort, ...] | None) -> ir.Ports:
    if not ports:
        return ir.ANY_PORT
    entries = []
    for port in ports:
        protocol = ir.Protocol(port.protocol or "TCP")
        if port.port is None:
            entries.append(ir.ProtocolPorts(protocol, (ir.ALL_PORTS,)))
        elif isinstance(port.port, str):
            entries.append(ir.ProtocolPorts(protocol, (), (port.port,)))
        else:
            end = port.end_port if port.end_port is not None else port.port
            entries.append(ir.ProtocolPorts(protocol, (ir.PortRange(port.port, end),)))
    return ir.PortSet(tuple(entries))


def _peers(peers: tuple[api.NetworkPolicyPeer, ...] | None, blocks: Blocks) -> ir.Peers:
    if not peers:
        return ir.ANY_PEER
    return tuple(_peer(p, blocks) for p in peers)


def lower_network_policy(
    np: api.NetworkPolicy, ref: ObjectRef, blocks: Blocks | None = None
) -> ir.Policy:
    """The IR of one validated NetworkPolicy. ``blocks``: ipBlocks lowered so far, shared
    by the policies of one load (see :data:`Blocks`)."""
    blocks = {} if blocks is None else blocks
    meta = np.metadata or api.ObjectMeta()
    spec = np.spec or api.NetworkPolicySpec()
    types = effective_policy_types(spec)
    ingress = None
    egress = None
    if "Ingress" in types:
        ingress = tuple(
            ir.Rule(_peers(r.from_, blocks), _ports(r.ports), ref.origin(("spec", "ingress", i)))
            for i, r in enumerate(spec.ingress or ())
        )
    if "Egress" in types:
        egress = tuple(
            ir.Rule(_peers(r.to, blocks), _ports(r.ports), ref.origin(("spec", "egress", i)))
            for i, r in enumerate(spec.egress or ())
        )
    ignored = tuple(
        d
        for d, rules in ((ir.Direction.INGRESS, spec.ingress), (ir.Direction.EGRESS, spec.egress))
        if rules and d.policy_type not in types
    )
    return ir.Policy(
        ignored=ignored,
        namespace=meta.namespace or DEFAULT_NAMESPACE,
        name=meta.name or "",
        pod_selector=lower_label_selector(spec.pod_selector),
        ingress=ingress,
        egress=egress,
        origin=ref.origin(),
    )
