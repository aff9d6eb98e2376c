"""Calico's own namespaced form: ``projectcalico.org/v3`` NetworkPolicy, as libcalico-go's
converter (``K8sNetworkPolicyToCalico``) produces it from a Kubernetes NetworkPolicy.

Reproduced: name and namespace as in Kubernetes (the ``knp.default.`` prefix is gone from
current Calico), ``order: 1000``, tier ``default``, the converter's selector text, one
rule per (protocol, peer) with protocols sorted and peers in order, ``protocol`` only when
the rule has ports, ports merged into ranges, ``source``/``destination`` always present
(``{}`` for any peer), ``nets``/``notNets`` for ipBlocks, ``types`` from policyTypes. Keys
are sorted, as ``calicoctl get -o yaml`` prints them, so the two can be diffed.

Known deviations, because npc's IR keeps meaning rather than spelling:

* rules of a direction the policy does not isolate (``egress`` rules without ``Egress`` in
  policyTypes) are not in the IR; the converter keeps them (Calico then ignores them);
* ports are canonical: named ports sorted and deduplicated, always before numbers. The
  converter keeps the written order of named ports, and keeps a lone numeric port where it
  was written (its ``SimplifyPorts`` only reorders when two or more numeric ports exist).

Limits are not split here (that would no longer be the converter's form): a policy beyond
them is refused, pointing at ``--calico-scope global``.
"""

from __future__ import annotations

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
    namespace_selector_text,
    pod_selector_terms,
    protocol_entries,
    rule_path,
)
from npc.errors import Path

__all__ = ["namespaced_policies"]

_SPLIT_HINT = "the global scope (`--calico-scope global`) splits policies to fit"


def _peer(
    policy: ir.Policy, peer: ir.Peer, path: Path, problems: Problems
) -> dict[str, Any] | None:
    if isinstance(peer, ir.AddressPeer):
        if peer.cidr is None or not as_written(peer):
            if not peer.addresses:
                return None  # matches nothing
            entity: dict[str, Any] = {"nets": [str(c) for c in peer.addresses.cidrs]}
        else:
            entity = {"nets": [str(peer.cidr)]}
            if peer.excepts:
                entity["notNets"] = [str(e) for e in peer.excepts]
        for key in ("nets", "notNets"):
            if len(entity.get(key, ())) > MAX_NETS:
                problems.add(
                    policy,
                    (*path, "ipBlock"),
                    f"{len(entity[key])} {key} in one rule (Calico allows {MAX_NETS})",
                    _SPLIT_HINT,
                )
        return entity
    terms = [
        ORCHESTRATOR_TERM,
        *pod_selector_terms(peer.pods, policy, (*path, "podSelector"), problems),
    ]
    entity = {
        "selector": check_length(" && ".join(terms), policy, (*path, "podSelector"), problems)
    }
    if isinstance(peer.namespaces, ir.LabelSelector):
        text = namespace_selector_text(
            peer.namespaces, policy, (*path, "namespaceSelector"), problems
        )
        entity["namespaceSelector"] = check_length(
            text, policy, (*path, "namespaceSelector"), problems
        )
    return entity


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
                if (e := _peer(policy, p, (*path, peer_field, i), problems)) is not None
            ]
        for protocol, ports in protocol_entries(rule.ports):
            if len(ports) > MAX_PORTS:
                problems.add(
                    policy,
                    (*path, "ports"),
                    f"{len(ports)} {protocol} ports in one rule (Calico allows {MAX_PORTS})",
                    _SPLIT_HINT,
                )
            for entity in entities:
                item: dict[str, Any] = {"action": "Allow"}
                if protocol is not None:
                    item["protocol"] = protocol
                port_part = {"ports": ports} if ports else {}
                if direction == "ingress":
                    item["source"] = entity
                    item["destination"] = port_part
                else:
                    item["source"] = {}
                    item["destination"] = {**entity, **port_part}
                out.append(item)
    if len(out) > MAX_RULES:
        problems.add(
            policy,
            ("spec", direction),
            f"{len(out)} {direction} rules (Calico allows {MAX_RULES} per policy)",
            _SPLIT_HINT,
        )
    return out


def namespaced_policies(policies: ir.PolicySet) -> list[dict[str, Any]]:
    """One Calico NetworkPolicy per NetworkPolicy; raises listing every problem."""
    problems = Problems()
    docs: list[dict[str, Any]] = []
    for policy in policies:
        types = [
            t for t, r in (("Ingress", policy.ingress), ("Egress", policy.egress)) if r is not None
        ]
        if not types:
            continue  # isolates nothing: no effect (the API server never stores this)
        terms = pod_selector_terms(policy.pod_selector, policy, ("spec", "podSelector"), problems)
        selector = " && ".join([ORCHESTRATOR_TERM, *terms])
        spec: dict[str, Any] = {
            "order": 1000,
            "selector": check_length(selector, policy, ("spec", "podSelector"), problems),
            "tier": "default",
            "types": types,
        }
        for direction in ("ingress", "egress"):
            rules = _rules(policy, direction, problems)
            if rules:
                spec[direction] = rules
        docs.append(
            {
                "apiVersion": API_VERSION,
                "kind": "NetworkPolicy",
                "metadata": {"name": policy.name, "namespace": policy.namespace},
                "spec": spec,
            }
        )
    problems.raise_if_any()
    return docs
