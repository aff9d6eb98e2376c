"""ClusterNetworkPolicy validation: every OpenAPI and CEL rule of the v0.2.0 CRD
(``config/crd/experimental/policy.networking.k8s.io_clusternetworkpolicies.yaml`` in
kubernetes-sigs/network-policy-api), reported like NetworkPolicy's.

The CRD's rules, as checked here: ``spec``, ``tier``, ``priority`` and ``subject`` are
required; ``tier`` is ``Admin`` or ``Baseline``; ``priority`` is 0..1000; ``subject``, each
peer, each protocol and each ``destinationPort`` set exactly one field; ``pods`` needs a
``podSelector``; at most 25 ingress and 25 egress rules; a rule needs ``action`` (``Accept``,
``Deny``, ``Pass``) and 1..25 peers, its ``name`` at most 100 characters, ``protocols`` 1..25
entries; ``tcp``/``udp``/``sctp`` need ``destinationPort``; port numbers are 1..65535 and a
range has ``start < end`` (CEL); ``networks`` are 1..25 distinct CIDRs (``isCIDR``, at most 43
characters); ``domainNames`` 1..25 distinct names of the CRD's pattern; an egress rule with a
``networks``, ``nodes`` or ``domainNames`` peer may not use ``destinationNamedPort`` (CEL).
Label selectors are checked as for NetworkPolicy (stricter than the CRD's schema, which only
checks types: an implementation cannot evaluate an invalid selector either).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from npc.errors import Code, Path, Severity
from npc.frontend.decode import Decoder, did_you_mean
from npc.frontend.k8s import names
from npc.frontend.k8s.api import LabelSelector, ObjectMeta
from npc.frontend.k8s.cnp_api import (
    ClusterNetworkPolicy,
    ClusterNetworkPolicyEgressPeer,
    ClusterNetworkPolicyEgressRule,
    ClusterNetworkPolicyIngressPeer,
    ClusterNetworkPolicyIngressRule,
    ClusterNetworkPolicyProtocol,
    NamespacedPod,
    Port,
)
from npc.frontend.k8s.validation import validate_label_selector, validate_object_meta

__all__ = ["ACTIONS", "MAX_ITEMS", "TIERS", "validate_cluster_network_policy"]

TIERS = ("Admin", "Baseline")
ACTIONS = ("Accept", "Deny", "Pass")
MAX_ITEMS = 25
_MAX_RULE_NAME = 100
_MAX_CIDR = 43
# The CRD's DomainName pattern (its `A-z` ranges included, as written upstream).
_DOMAIN = re.compile(
    r"^(\*\.)?([a-zA-z0-9]([-a-zA-Z0-9_]*[a-zA-Z0-9])?\.)+[a-zA-z0-9]([-a-zA-Z0-9_]*[a-zA-Z0-9])?\.?$"
)


def validate_cluster_network_policy(cnp: ClusterNetworkPolicy, out: Decoder) -> None:
    """All CRD checks of one ClusterNetworkPolicy; problems go to ``out``."""
    meta = cnp.metadata or ObjectMeta()
    validate_object_meta(meta, ("metadata",), out, namespaced=False)
    if meta.namespace:
        out.problem(
            Code.DEFAULTED,
            "ClusterNetworkPolicy is cluster-scoped; the namespace is ignored",
            ("metadata", "namespace"),
            "remove `namespace:`",
            severity=Severity.WARNING,
        )
    spec = cnp.spec
    if spec is None:
        out.problem(Code.REQUIRED, "spec is required", ("spec",))
        return
    path: Path = ("spec",)
    if spec.tier is None:
        out.problem(
            Code.REQUIRED, "tier is required", (*path, "tier"), "`tier: Admin` or `tier: Baseline`"
        )
    else:
        _enum(spec.tier, TIERS, (*path, "tier"), out)
    if spec.priority is None:
        out.problem(
            Code.REQUIRED,
            "priority is required",
            (*path, "priority"),
            "a number from 0 (evaluated first) to 1000",
        )
    elif not 0 <= spec.priority <= 1000:
        out.problem(
            Code.INVALID_VALUE,
            f"{spec.priority}: must be between 0 and 1000, inclusive",
            (*path, "priority"),
        )
    if spec.subject is None:
        out.problem(
            Code.REQUIRED,
            "subject is required",
            (*path, "subject"),
            "`subject: {namespaces: {}}` selects every pod",
        )
    else:
        s_path: Path = (*path, "subject")
        _exactly_one(
            (("namespaces", spec.subject.namespaces), ("pods", spec.subject.pods)), s_path, out
        )
        if spec.subject.namespaces is not None:
            validate_label_selector(spec.subject.namespaces, (*s_path, "namespaces"), out)
        if spec.subject.pods is not None:
            _namespaced_pod(spec.subject.pods, (*s_path, "pods"), out)
    for direction, rules in (("ingress", spec.ingress), ("egress", spec.egress)):
        if rules is not None and len(rules) > MAX_ITEMS:
            out.problem(
                Code.INVALID_VALUE,
                f"must have at most {MAX_ITEMS} rules, has {len(rules)}",
                (*path, direction),
            )
    for i, ingress in enumerate(spec.ingress or ()):
        _ingress_rule(ingress, (*path, "ingress", i), out)
    for i, egress in enumerate(spec.egress or ()):
        _egress_rule(egress, (*path, "egress", i), out)


def _enum(value: str, allowed: Sequence[str], path: Path, out: Decoder) -> None:
    if value in allowed:
        return
    guess = did_you_mean(value, allowed)
    out.problem(
        Code.INVALID_VALUE,
        f'unsupported value "{value}": supported values: ' + ", ".join(f'"{a}"' for a in allowed),
        path,
        f'did you mean "{guess}"?' if guess else None,
    )


def _exactly_one(fields: Sequence[tuple[str, object]], path: Path, out: Decoder) -> None:
    """The CRD's ``minProperties: 1`` and ``maxProperties: 1``."""
    present = [name for name, value in fields if value is not None]
    choices = ", ".join(f"`{name}`" for name, _ in fields)
    if not present:
        if any(p.code is Code.UNKNOWN_FIELD and p.path[:-1] == path for p in out.problems):
            return  # a field npc does not know is there, and reported
        out.problem(Code.REQUIRED, f"must set exactly one of {choices}", path)
    elif len(present) > 1:
        out.problem(
            Code.INVALID_VALUE,
            f"must set exactly one of {choices}, sets {len(present)}",
            (*path, present[1]),
            "items of a list are ORed: put each in its own list item"
            if path[-2:-1] in (("from",), ("to",), ("protocols",))
            else None,
            at_key=True,
        )


def _count(items: Sequence[object] | None, path: Path, what: str, out: Decoder) -> None:
    """``minItems: 1`` and ``maxItems: 25``."""
    if items is None:
        return
    if not items:
        out.problem(Code.REQUIRED, f"must have at least one {what}", path)
    elif len(items) > MAX_ITEMS:
        out.problem(
            Code.INVALID_VALUE, f"must have at most {MAX_ITEMS} {what}s, has {len(items)}", path
        )


def _rule_common(
    name: str | None,
    action: str | None,
    peers: Sequence[object] | None,
    peer_field: str,
    protocols: Sequence[ClusterNetworkPolicyProtocol] | None,
    path: Path,
    out: Decoder,
) -> None:
    if name is not None and len(name) > _MAX_RULE_NAME:
        out.problem(
            Code.INVALID_VALUE,
            f"must be at most {_MAX_RULE_NAME} characters, has {len(name)}",
            (*path, "name"),
        )
    if action is None:
        out.problem(
            Code.REQUIRED,
            "action is required",
            (*path, "action"),
            "`action: Accept`, `Deny` or `Pass`",
        )
    else:
        hint = None
        if action == "Allow":
            hint = "ClusterNetworkPolicy says `Accept` (v1alpha1 AdminNetworkPolicy said Allow)"
        if action in ACTIONS:
            pass
        elif hint is not None:
            out.problem(
                Code.INVALID_VALUE,
                f'unsupported value "{action}": supported values: "Accept", "Deny", "Pass"',
                (*path, "action"),
                hint,
            )
        else:
            _enum(action, ACTIONS, (*path, "action"), out)
    if peers is None:
        out.problem(
            Code.REQUIRED,
            f"{peer_field} is required",
            (*path, peer_field),
            "a ClusterNetworkPolicy rule names its peers; `namespaces: {}` matches every pod",
        )
    else:
        _count(peers, (*path, peer_field), "peer", out)
    _count(protocols, (*path, "protocols"), "protocol", out)
    for i, protocol in enumerate(protocols or ()):
        _protocol(protocol, (*path, "protocols", i), out)


def _ingress_rule(rule: ClusterNetworkPolicyIngressRule, path: Path, out: Decoder) -> None:
    _rule_common(rule.name, rule.action, rule.from_, "from", rule.protocols, path, out)
    for i, peer in enumerate(rule.from_ or ()):
        _ingress_peer(peer, (*path, "from", i), out)


def _egress_rule(rule: ClusterNetworkPolicyEgressRule, path: Path, out: Decoder) -> None:
    _rule_common(rule.name, rule.action, rule.to, "to", rule.protocols, path, out)
    for i, peer in enumerate(rule.to or ()):
        _egress_peer(peer, (*path, "to", i), out)
    # CEL: no named ports with peers that have none.
    addressed = [
        i
        for i, peer in enumerate(rule.to or ())
        if peer.networks is not None or peer.nodes is not None or peer.domain_names is not None
    ]
    named = [i for i, p in enumerate(rule.protocols or ()) if p.destination_named_port is not None]
    if addressed and named:
        out.problem(
            Code.INVALID_PORT,
            "networks/nodes/domainNames peer cannot be set with namedPorts since there are no "
            "namedPorts for networks/nodes/domainNames",
            (*path, "protocols", named[0], "destinationNamedPort"),
            f"peer {addressed[0]} of `to` has no named ports: move it into a rule of its own "
            f"with numeric ports",
        )


def _namespaced_pod(pods: NamespacedPod, path: Path, out: Decoder) -> None:
    if pods.namespace_selector is not None:
        validate_label_selector(pods.namespace_selector, (*path, "namespaceSelector"), out)
    if pods.pod_selector is None:
        out.problem(
            Code.REQUIRED,
            "podSelector is required",
            (*path, "podSelector"),
            "`podSelector: {}` selects every pod of the namespaces",
        )
    else:
        validate_label_selector(pods.pod_selector, (*path, "podSelector"), out)


def _selector_peer(
    namespaces: LabelSelector | None, pods: NamespacedPod | None, path: Path, out: Decoder
) -> None:
    if namespaces is not None:
        validate_label_selector(namespaces, (*path, "namespaces"), out)
    if pods is not None:
        _namespaced_pod(pods, (*path, "pods"), out)


def _ingress_peer(peer: ClusterNetworkPolicyIngressPeer, path: Path, out: Decoder) -> None:
    _exactly_one((("namespaces", peer.namespaces), ("pods", peer.pods)), path, out)
    _selector_peer(peer.namespaces, peer.pods, path, out)


def _egress_peer(peer: ClusterNetworkPolicyEgressPeer, path: Path, out: Decoder) -> None:
    _exactly_one(
        (
            ("namespaces", peer.namespaces),
            ("pods", peer.pods),
            ("nodes", peer.nodes),
            ("networks", peer.networks),
            ("domainNames", peer.domain_names),
        ),
        path,
        out,
    )
    _selector_peer(peer.namespaces, peer.pods, path, out)
    if peer.nodes is not None:
        validate_label_selector(peer.nodes, (*path, "nodes"), out)
    if peer.networks is not None:
        n_path: Path = (*path, "networks")
        _count(peer.networks, n_path, "CIDR", out)
        _distinct(peer.networks, n_path, out)
        for i, text in enumerate(peer.networks):
            _network(text, (*n_path, i), out)
    if peer.domain_names is not None:
        d_path: Path = (*path, "domainNames")
        _count(peer.domain_names, d_path, "domain name", out)
        _distinct(peer.domain_names, d_path, out)
        for i, text in enumerate(peer.domain_names):
            if not _DOMAIN.match(text):
                out.problem(
                    Code.INVALID_VALUE,
                    f'"{text}": not a domain name (`*.` may only prefix whole labels)',
                    (*d_path, i),
                    "e.g. `kubernetes.io` or `*.kubernetes.io`",
                )


def _distinct(items: Sequence[str], path: Path, out: Decoder) -> None:
    """``x-kubernetes-list-type: set``: no value twice."""
    seen: set[str] = set()
    for i, item in enumerate(items):
        if item in seen:
            out.problem(
                Code.INVALID_VALUE,
                f'duplicate value "{item}"',
                (*path, i),
                "remove the repeated item",
            )
        seen.add(item)


def _network(text: str, path: Path, out: Decoder) -> None:
    if len(text) > _MAX_CIDR:
        out.problem(
            Code.INVALID_CIDR, f"must be at most {_MAX_CIDR} characters, has {len(text)}", path
        )
        return
    parsed = names.parse_cidr(text)
    if parsed is None:
        hint = "a CIDR is an address and a prefix length, e.g. 10.0.0.0/8 or fd00::/64"
        if "/" not in text and names.parse_ip(text)[0] is not None:
            ip = names.parse_ip(text)[0]
            hint = (
                f"add a prefix length: {text}/{32 if ip is not None and ip.version == 4 else 128}"
            )
        out.problem(Code.INVALID_CIDR, f'"{text}": Invalid CIDR format provided', path, hint)
        return
    for warning in parsed.warnings:
        out.problem(Code.CIDR_HOST_BITS, f'"{text}" {warning}', path, severity=Severity.WARNING)


def _protocol(protocol: ClusterNetworkPolicyProtocol, path: Path, out: Decoder) -> None:
    _exactly_one(
        (
            ("tcp", protocol.tcp),
            ("udp", protocol.udp),
            ("sctp", protocol.sctp),
            ("destinationNamedPort", protocol.destination_named_port),
        ),
        path,
        out,
    )
    for key, entry in (("tcp", protocol.tcp), ("udp", protocol.udp), ("sctp", protocol.sctp)):
        if entry is None:
            continue
        if entry.destination_port is None:
            out.problem(
                Code.REQUIRED,
                "destinationPort is required",
                (*path, key, "destinationPort"),
                "to match every port of the protocol, write `destinationPort: {range: {start: "
                "1, end: 65535}}`",
            )
        else:
            _port(entry.destination_port, (*path, key, "destinationPort"), out)
    named = protocol.destination_named_port
    if named is not None and (msgs := names.is_valid_port_name(named)):
        # Stricter than the CRD (a plain string there): no container port has such a name.
        out.problem(
            Code.INVALID_PORT,
            f'invalid port name "{named}": {"; ".join(msgs)}',
            (*path, "destinationNamedPort"),
        )


def _port(port: Port, path: Path, out: Decoder) -> None:
    _exactly_one((("number", port.number), ("range", port.range)), path, out)
    if port.number is not None:
        _port_number(port.number, (*path, "number"), out)
    if port.range is not None:
        r_path: Path = (*path, "range")
        for key, value in (("start", port.range.start), ("end", port.range.end)):
            if value is None:
                out.problem(Code.REQUIRED, f"{key} is required", (*r_path, key))
            else:
                _port_number(value, (*r_path, key), out)
        start, end = port.range.start, port.range.end
        if start is not None and end is not None and not start < end:
            out.problem(
                Code.INVALID_PORT,
                "Start port must be less than End port",
                r_path,
                f"for the single port {start}, write `number: {start}`" if start == end else None,
            )


def _port_number(value: int, path: Path, out: Decoder) -> None:
    if not 1 <= value <= 65535:
        out.problem(Code.INVALID_PORT, f"{value}: must be between 1 and 65535, inclusive", path)
