"""ClusterNetworkPolicy as Calico does it (Calico 3.32): a GlobalNetworkPolicy per policy in
tier ``kube-admin`` (order 1,000) or ``kube-baseline`` (order 10,000,000), both with
``defaultAction: Pass``, around the ``default`` tier that holds NetworkPolicies.

The mapping follows libcalico-go's ``K8sClusterNetworkPolicyToCalico``
(``libcalico-go/lib/backend/k8s/conversion/clusternetworkpolicy.go``): ``order`` is the
priority; ``subject.namespaces`` / ``subject.pods`` become ``namespaceSelector`` and
``selector``; ``Accept`` is ``Allow``, ``Deny`` and ``Pass`` keep their names; each peer of a
rule becomes a rule of its own, once per protocol (``namespaces``/``pods`` as entity
selectors, ``networks`` as ``nets``); ``types`` name the directions that have rules (a
policy with none is left out: it has no effect); a rule with a peer Calico cannot convert
becomes ``action: Deny`` with no match when it denies or
passes, and is dropped when it accepts (fail closed, as upstream asks). Two deliberate
differences, same meaning: a ``destinationNamedPort`` is written once per protocol (Calico
writes it with no protocol), and a ``nodes`` peer, which Calico 3.32 does not convert, is
refused (npc never emits a rule whose meaning changes). The Tier objects are emitted too, as
Calico creates them, so the output is complete for ``calicoctl apply`` and for the judge.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from npc import ir, tiers
from npc.backends.calico.common import (
    API_VERSION,
    MAX_NETS,
    MAX_PORTS,
    ORCHESTRATOR_TERM,
    Problems,
    check_length,
    chunks,
    namespace_selector_text,
    pod_selector_terms,
    protocol_entries,
)
from npc.errors import Path

__all__ = ["TIERS", "cluster_policies"]

#: Calico's tiers for ClusterNetworkPolicy: name, order (``KubeAdminTierOrder``,
#: ``KubeBaselineTierOrder``), default action.
TIERS = MappingProxyType(
    {
        tiers.Tier.ADMIN: ("kube-admin", 1000, "Pass"),
        tiers.Tier.BASELINE: ("kube-baseline", 10_000_000, "Pass"),
    }
)
_ACTIONS = {tiers.Action.ACCEPT: "Allow", tiers.Action.DENY: "Deny", tiers.Action.PASS: "Pass"}
SOURCE_ANNOTATION = "npc/source"
RULE_NAME_ANNOTATION = "name"  # libcalico-go K8sCNPRuleNameLabel


def _selector(
    policy: tiers.ClusterPolicy,
    namespaces: ir.LabelSelector,
    pods: ir.LabelSelector,
    path: Path,
    problems: Problems,
) -> dict[str, str]:
    terms = [ORCHESTRATOR_TERM, *pod_selector_terms(pods, policy, path, problems)]
    ns = namespace_selector_text(namespaces, policy, path, problems)
    return {
        "selector": check_length(" && ".join(terms), policy, path, problems),
        "namespaceSelector": check_length(ns, policy, path, problems),
    }


def _entities(
    policy: tiers.ClusterPolicy, rule: tiers.ClusterRule, path: Path, field: str, problems: Problems
) -> list[dict[str, Any]] | None:
    """One entity per peer; None when a peer cannot be converted (fail closed)."""
    out: list[dict[str, Any]] = []
    for i, peer in enumerate(rule.peers):
        where: Path = (*path, field, i)
        if isinstance(peer, ir.PodPeer):
            assert isinstance(peer.namespaces, ir.LabelSelector)
            out.append(_selector(policy, peer.namespaces, peer.pods, where, problems))
        elif isinstance(peer, ir.AddressPeer):
            cidrs = [str(c) for c in peer.addresses.cidrs]
            out.extend({"nets": list(part)} for part in chunks(cidrs, MAX_NETS) if part)
        elif isinstance(peer, tiers.NodesPeer):
            problems.add(
                policy,
                (*where, "nodes"),
                "nodes peers (Calico 3.32 does not convert them)",
                "use `networks` with the nodes' addresses",
            )
        elif isinstance(peer, tiers.UnknownPeer):
            return None
        else:  # domainNames: refused before emitting (capabilities.check_cluster)
            raise AssertionError("domainNames reached the calico backend")
    return out


def _rules(policy: tiers.ClusterPolicy, direction: str, problems: Problems) -> list[dict[str, Any]]:
    field = ir.Direction(direction).peer_field
    side = "source" if direction == "ingress" else "destination"
    out: list[dict[str, Any]] = []
    for index, rule in enumerate(policy.rules(direction)):
        path: Path = ("spec", direction, index)
        action = _ACTIONS[rule.action]
        entities = _entities(policy, rule, path, field, problems)
        if entities is None:
            if rule.action is not tiers.Action.ACCEPT:
                out.append({"action": "Deny"})
            continue
        metadata = {"annotations": {RULE_NAME_ANNOTATION: rule.name}} if rule.name else None
        for protocol, ports in protocol_entries(rule.ports):
            for port_chunk in chunks(ports, MAX_PORTS):
                for entity in entities:
                    item: dict[str, Any] = {}
                    if metadata is not None:
                        item["metadata"] = metadata
                    item["action"] = action
                    if protocol is not None:
                        item["protocol"] = protocol
                    port_part = {"ports": list(port_chunk)} if port_chunk else {}
                    if side == "source":
                        item["source"] = entity
                        if port_part:
                            item["destination"] = port_part
                    else:
                        item["destination"] = {**entity, **port_part}
                    out.append(item)
    return out


def cluster_policies(policies: tiers.ClusterPolicySet) -> list[dict[str, Any]]:
    """The Tier objects and one GlobalNetworkPolicy per ClusterNetworkPolicy (in evaluation
    order); raises listing every problem."""
    if not policies:
        return []
    problems = Problems()
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": API_VERSION,
            "kind": "Tier",
            "metadata": {"name": name},
            "spec": {"order": order, "defaultAction": default},
        }
        for name, order, default in TIERS.values()
    ]
    for policy in policies:
        tier, _, _ = TIERS[policy.tier]
        subject = _selector(
            policy, policy.subject.namespaces, policy.subject.pods, ("spec", "subject"), problems
        )
        spec: dict[str, Any] = {
            "tier": tier,
            "order": policy.priority,
            "selector": subject["selector"],
            "namespaceSelector": subject["namespaceSelector"],
        }
        types = []
        for direction, kind in (("ingress", "Ingress"), ("egress", "Egress")):
            rules = _rules(policy, direction, problems)
            if rules:
                spec[direction] = rules
                types.append(kind)
        if not types:
            continue  # no rule in either direction: the policy has no effect
        spec["types"] = types
        docs.append(
            {
                "apiVersion": API_VERSION,
                "kind": "GlobalNetworkPolicy",
                "metadata": {
                    "name": f"{tier}.{policy.name}",
                    "annotations": {SOURCE_ANNOTATION: f"ClusterNetworkPolicy/{policy.name}"},
                },
                "spec": spec,
            }
        )
    problems.raise_if_any()
    return docs
