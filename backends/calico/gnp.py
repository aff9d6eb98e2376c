"""The cluster-wide form: one ``projectcalico.org/v3`` GlobalNetworkPolicy per NetworkPolicy.

A GlobalNetworkPolicy has no namespace, so the namespace is spelled out:

* ``spec.selector`` is ``projectcalico.org/orchestrator == 'k8s' && projectcalico.org/
  namespace == '<ns>'`` and then the podSelector's terms;
* a peer with only a podSelector gets the same namespace term in its ``selector`` (a GNP
  rule selector otherwise matches pods of every namespace); namespaceSelector peers use the
  rule's ``namespaceSelector`` over namespace labels (``{}`` is ``all()``);
* ipBlocks are ``nets``/``notNets``; ports are written as Calico does (``"a:b"`` ranges,
  named ports as strings); rules are Allow, ``types`` follow policyTypes, ``order: 1000`` in
  tier ``default`` (the order Calico gives converted NetworkPolicies).

Calico's limits are met by splitting, never by dropping: more than 50 ports become several
rules, more than 256 nets several rules (an ipBlock with more than 256 excepts is written as
the CIDRs it allows, since ``notNets`` cannot be split), more than 1,024 rules in a
direction several policies selecting the same pods. Rules only ever allow, so a union of
rules or policies means the same as one.

Names are ``<namespace>.<name>`` (namespaces hold no dots, so this is unique), split parts
``<namespace>.<name>.part-<n>``; a name that is too long (over 253 characters), not a valid
DNS subdomain, or claimed twice becomes a truncated stem plus a hash of the source.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from npc import ir
from npc.backends.calico.common import (
    API_VERSION,
    MAX_NETS,
    MAX_PORTS,
    MAX_RULES,
    ORCHESTRATOR_TERM,
    Problems,
    as_written,
    check_length,
    chunks,
    namespace_selector_text,
    pod_selector_terms,
    protocol_entries,
    rule_path,
)
from npc.errors import BackendError, Path

__all__ = ["MAX_NAME", "global_policies", "gnp_names"]

MAX_NAME = 253
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
MANAGED_BY = MappingProxyType({"app.kubernetes.io/managed-by": "npc"})
SOURCE_ANNOTATION = "npc/source"
PART_ANNOTATION = "npc/part"


def _namespace_term(namespace: str) -> str:
    return f"projectcalico.org/namespace == '{namespace}'"


def _address_entities(peer: ir.AddressPeer) -> list[dict[str, Any]]:
    excepts = list(dict.fromkeys(str(e) for e in peer.excepts))
    if as_written(peer) and len(excepts) <= MAX_NETS:
        entity: dict[str, Any] = {"nets": [str(peer.cidr)]}
        if excepts:
            entity["notNets"] = excepts
        return [entity]
    # notNets are a conjunction and cannot be spread over rules: write what the block allows.
    cidrs = [str(c) for c in peer.addresses.cidrs]
    return [{"nets": list(part)} for part in chunks(cidrs, MAX_NETS) if part]


def _peer_entities(
    policy: ir.Policy, peer: ir.Peer, path: Path, problems: Problems
) -> list[dict[str, Any]]:
    if isinstance(peer, ir.AddressPeer):
        return _address_entities(peer)
    terms = [ORCHESTRATOR_TERM]
    if isinstance(peer.namespaces, ir.SameNamespace):
        terms.append(_namespace_term(policy.namespace))
    terms += pod_selector_terms(peer.pods, policy, (*path, "podSelector"), problems)
    entity = {
        "selector": check_length(" && ".join(terms), policy, (*path, "podSelector"), problems)
    }
    if isinstance(peer.namespaces, ir.LabelSelector):
        ns_path = (*path, "namespaceSelector")
        text = namespace_selector_text(peer.namespaces, policy, ns_path, problems)
        entity["namespaceSelector"] = check_length(text, policy, ns_path, problems)
    return [entity]


def _rules(policy: ir.Policy, direction: str, problems: Problems) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    peer_field = ir.Direction(direction).peer_field
    for index, rule in enumerate(policy.rules(direction) or ()):
        path = rule_path(policy, direction, index, rule)
        if isinstance(rule.peers, ir.AnyPeer):
            entities: list[dict[str, Any]] = [{}]
        else:
            entities = [
                e
                for i, p in enumerate(rule.peers)
                for e in _peer_entities(policy, p, (*path, peer_field, i), problems)
            ]
        for protocol, ports in protocol_entries(rule.ports):
            for port_chunk in chunks(ports, MAX_PORTS):
                port_part = {"ports": list(port_chunk)} if port_chunk else {}
                for entity in entities:
                    item: dict[str, Any] = {"action": "Allow"}
                    if protocol is not None:
                        item["protocol"] = protocol
                    if direction == "ingress":
                        if entity:
                            item["source"] = entity
                        if port_part:
                            item["destination"] = port_part
                    elif entity or port_part:
                        item["destination"] = {**entity, **port_part}
                    out.append(item)
    return out


@dataclass(frozen=True, slots=True)
class _Part:
    policy: ir.Policy
    index: int
    count: int
    spec: dict[str, Any]


def _parts(policy: ir.Policy, problems: Problems) -> list[_Part]:
    directions = [
        (d, t, _rules(policy, d, problems))
        for d, t in (("ingress", "Ingress"), ("egress", "Egress"))
        if policy.rules(d) is not None
    ]
    if not directions:
        return []  # isolates nothing: no effect (the API server never stores this)
    terms = [ORCHESTRATOR_TERM, _namespace_term(policy.namespace)]
    terms += pod_selector_terms(policy.pod_selector, policy, ("spec", "podSelector"), problems)
    selector = check_length(" && ".join(terms), policy, ("spec", "podSelector"), problems)
    split = {d: list(chunks(rules, MAX_RULES)) for d, _, rules in directions}
    count = max(len(s) for s in split.values())
    parts = []
    for k in range(count):
        # Every part isolates only in the directions it carries rules for; the first part
        # carries each isolated direction, so an empty direction still isolates.
        types = [t for d, t, _ in directions if k < len(split[d])]
        spec: dict[str, Any] = {"tier": "default", "order": 1000, "selector": selector}
        spec["types"] = types
        for d, _, _ in directions:
            if k < len(split[d]) and split[d][k]:
                spec[d] = list(split[d][k])
        parts.append(_Part(policy, k, count, spec))
    return parts


def _hashed(stem: str, identity: str) -> str:
    digest = hashlib.sha256(identity.encode()).hexdigest()[:10]
    labels = [s.strip("-") for s in re.sub(r"[^a-z0-9.-]+", "-", stem.lower()).split(".")]
    clean = ".".join(s for s in labels if s)[: MAX_NAME - len(digest) - 1].rstrip(".-")
    return f"{clean}-{digest}" if clean else f"npc-{digest}"


def gnp_names(keys: list[tuple[str, str, int]]) -> list[str]:
    """Names for (namespace, name, part) triples: ``<ns>.<name>[.part-<n>]``, hashed when
    invalid, too long or not unique. Deterministic, and independent of input order."""
    wanted = [f"{ns}.{name}" + (f".part-{k + 1}" if k else "") for ns, name, k in keys]
    claims = Counter(wanted)
    names = []
    for (ns, name, k), want in zip(keys, wanted, strict=True):
        ok = len(want) <= MAX_NAME and _DNS_SUBDOMAIN.fullmatch(want) and claims[want] == 1
        names.append(want if ok else _hashed(want, f"{ns}/{name}#{k}"))
    clashes = [n for n, c in Counter(names).items() if c > 1]
    if clashes:  # pragma: no cover - needs a SHA-256 prefix collision
        raise BackendError(f"calico: GlobalNetworkPolicy names collide: {', '.join(clashes)}")
    return names


def global_policies(policies: ir.PolicySet) -> list[dict[str, Any]]:
    """GlobalNetworkPolicy objects for ``policies``; raises listing every problem."""
    problems = Problems()
    parts = [part for policy in policies for part in _parts(policy, problems)]
    problems.raise_if_any()
    names = gnp_names([(p.policy.namespace, p.policy.name, p.index) for p in parts])
    docs = []
    for part, name in zip(parts, names, strict=True):
        annotations = {SOURCE_ANNOTATION: part.policy.key}
        if part.count > 1:
            annotations[PART_ANNOTATION] = f"{part.index + 1}/{part.count}"
        docs.append(
            {
                "apiVersion": API_VERSION,
                "kind": "GlobalNetworkPolicy",
                "metadata": {"name": name, "labels": dict(MANAGED_BY), "annotations": annotations},
                "spec": part.spec,
            }
        )
    return docs
