"""From a validated ``NetworkPolicy`` to the IR, applying the API server's defaults.

Defaulting (``SetDefaults_NetworkPolicy``, ``SetDefaults_NetworkPolicyPort``):

* policyTypes empty or absent: ``[Ingress]``, plus ``Egress`` when egress rules exist;
* a port entry without protocol is TCP;
* the namespace defaults to ``default``, as kubectl does without ``-n``.

Only objects that validated cleanly are lowered; nothing here reports problems.
"""

from __future__ import annotations

from typing import Any

from npc import ir
from npc.errors import Origin
from npc.frontend.k8s import api, names
from npc.frontend.k8s.validation import DEFAULT_NAMESPACE
from npc.frontend.source import ObjectRef

__all__ = ["Memo", "effective_policy_types", "lower_label_selector", "lower_network_policy"]


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

_SelectorKey = tuple[tuple[tuple[str, str], ...], tuple[api.LabelSelectorRequirement, ...]] | None
_PeerKey = tuple[Any, ...]


class Memo:
    """What the policies of one load have lowered so far, by its API form as written.

    Policies repeat the same selectors, peers, ipBlocks and port lists thousands of times
    (every namespace gets its copy of "allow DNS"); the IR is immutable, so equal inputs
    share one lowered value. Keys hold only strings, integers, None and tuples of them, so
    equal keys mean equal input: the result is what lowering it again would build."""

    __slots__ = ("blocks", "peers", "ports", "selectors")

    def __init__(self) -> None:
        self.blocks: Blocks = {}
        self.selectors: dict[_SelectorKey, ir.LabelSelector] = {}
        self.peers: dict[tuple[_PeerKey, ...], ir.Peers] = {}
        self.ports: dict[
            tuple[api.NetworkPolicyPort, ...], tuple[ir.Ports, tuple[ir.WrittenPort, ...]]
        ] = {}


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


def _selector_key(selector: api.LabelSelector | None) -> _SelectorKey:
    if selector is None:
        return None
    return (tuple((selector.match_labels or {}).items()), selector.match_expressions or ())


def _selector(
    selector: api.LabelSelector | None, key: _SelectorKey, memo: Memo
) -> ir.LabelSelector:
    found = memo.selectors.get(key)
    if found is None:
        found = memo.selectors[key] = lower_label_selector(selector)
    return found


def _peer_key(peer: api.NetworkPolicyPeer) -> _PeerKey:
    if peer.ip_block is not None:
        return ("ipBlock", peer.ip_block.cidr, tuple(peer.ip_block.except_ or ()))
    if peer.namespace_selector is None:
        return ("pods", _selector_key(peer.pod_selector))
    return ("namespaces", _selector_key(peer.namespace_selector), _selector_key(peer.pod_selector))


def _peer(peer: api.NetworkPolicyPeer, key: _PeerKey, memo: Memo) -> ir.Peer:
    if peer.ip_block is not None:
        block_key = (key[1], key[2])
        found = memo.blocks.get(block_key)
        if found is None:
            found = memo.blocks[block_key] = _block(peer.ip_block)
        return found
    pods = _selector(peer.pod_selector, key[-1], memo)
    if peer.namespace_selector is None:
        return ir.PodPeer(ir.SAME_NAMESPACE, pods)
    return ir.PodPeer(_selector(peer.namespace_selector, key[1], memo), pods)


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


def _written(ports: tuple[api.NetworkPolicyPort, ...] | None) -> tuple[ir.WrittenPort, ...]:
    return tuple(
        ir.WrittenPort(ir.Protocol(p.protocol or "TCP"), p.port, p.end_port) for p in ports or ()
    )


def _rule(
    peers: tuple[api.NetworkPolicyPeer, ...] | None,
    ports: tuple[api.NetworkPolicyPort, ...] | None,
    origin: Origin,
    memo: Memo,
) -> ir.Rule:
    key = ports or ()
    lowered = memo.ports.get(key)
    if lowered is None:
        lowered = memo.ports[key] = (_ports(ports), _written(ports))
    return ir.Rule(_peers(peers, memo), lowered[0], origin, lowered[1])


def _peers(peers: tuple[api.NetworkPolicyPeer, ...] | None, memo: Memo) -> ir.Peers:
    if not peers:
        return ir.ANY_PEER
    keys = tuple(_peer_key(p) for p in peers)
    found = memo.peers.get(keys)
    if found is None:
        found = memo.peers[keys] = tuple(
            _peer(p, k, memo) for p, k in zip(peers, keys, strict=True)
        )
    return found


def lower_network_policy(
    np: api.NetworkPolicy, ref: ObjectRef, memo: Memo | None = None
) -> ir.Policy:
    """The IR of one validated NetworkPolicy. ``memo``: what the policies of one load have
    lowered so far (see :class:`Memo`)."""
    lowered = Memo() if memo is None else memo
    meta = np.metadata or api.ObjectMeta()
    spec = np.spec or api.NetworkPolicySpec()
    types = effective_policy_types(spec)
    written_ingress = tuple(
        _rule(r.from_, r.ports, ref.origin(("spec", "ingress", i)), lowered)
        for i, r in enumerate(spec.ingress or ())
    )
    written_egress = tuple(
        _rule(r.to, r.ports, ref.origin(("spec", "egress", i)), lowered)
        for i, r in enumerate(spec.egress or ())
    )
    ingress = written_ingress if "Ingress" in types else None
    egress = written_egress if "Egress" in types else None
    ignored = tuple(
        d
        for d, rules in ((ir.Direction.INGRESS, spec.ingress), (ir.Direction.EGRESS, spec.egress))
        if rules and d.policy_type not in types
    )
    return ir.Policy(
        ignored=ignored,
        namespace=meta.namespace or DEFAULT_NAMESPACE,
        name=meta.name or "",
        pod_selector=_selector(spec.pod_selector, _selector_key(spec.pod_selector), lowered),
        ingress=ingress,
        egress=egress,
        origin=ref.origin(),
        ignored_ingress=() if ingress is not None else written_ingress,
        ignored_egress=() if egress is not None else written_egress,
    )
