"""Attaching the groups: PodNetworkings that give every pod exactly its two groups.

Terway decides a pod's groups once, when the pod is created: its webhook takes the first
PodNetworking (in no defined order) whose ``podSelector`` and ``namespaceSelector`` match the
pod's and its namespace's labels, and the pod's trunk ENI joins that PodNetworking's
``securityGroupIDs`` (``matchOnePodNetworking`` in Terway's ``pkg/controller/webhook``). So
the PodNetworkings npc emits must match disjoint sets of pods, each exactly the pods a pair
of groups was built for.

Which groups a pod needs depends on which isolating policies select it (policies only select
pods of their own namespace) and, for ingress, on its named ports. Per namespace, pods that
the same isolating policies select get one PodNetworking whose selectors say exactly that:
the namespace by its ``kubernetes.io/metadata.name`` label; the pods by every requirement of
the selecting policies' podSelectors, and the negation of each podSelector that does not
select them. A podSelector that does not select them but has several requirements left
(after those the selecting policies already imply) negates to a disjunction, which one
label selector cannot say; pods that share policies but not named-port numbers cannot be told
apart by labels at all. Those pods are attached by a label npc derives instead
(:data:`LABEL`): one value per pair of groups, set by the ``kubectl label`` commands of the
output, and excluded from the namespace's other PodNetworkings. Pods of namespaces with no
isolating policy share one PodNetworking that matches every other namespace.

A ClusterNetworkPolicy whose ``subject`` matches a namespace adds its ``subject`` pod
selector to that namespace's selectors, as a podSelector does: its pods get groups of their
own (the tiers), and the same algebra tells them apart.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from npc import ir, tiers
from npc.backends.alibaba.plan import Plan
from npc.backends.grants import Grants
from npc.resolve import bit_indices
from npc.snapshot import METADATA_NAME_LABEL

__all__ = ["LABEL", "Attachment", "LabelChange", "Networking", "attach"]

#: The label npc sets on pods it cannot attach by their own labels.
LABEL = "npc/security-groups"
API_VERSION = "network.alibabacloud.com/v1beta1"


@dataclass(frozen=True, slots=True)
class Networking:
    """One PodNetworking: its name, selectors and the groups (ingress ones, then egress)."""

    name: str
    pod_selector: tuple[ir.Requirement, ...]
    namespace_selector: tuple[ir.Requirement, ...]
    groups: tuple[str, ...]

    def to_object(self) -> dict[str, Any]:
        """The PodNetworking object (``vSwitchOptions`` left to Terway's defaults from
        ``eni-config``, which its webhook fills in)."""
        return {
            "apiVersion": API_VERSION,
            "kind": "PodNetworking",
            "metadata": {"name": self.name, "labels": {"app.kubernetes.io/managed-by": "npc"}},
            "spec": {
                "allocationType": {"type": "Elastic"},
                "eniOptions": {"eniType": "Trunk"},
                "securityGroupIDs": list(self.groups),
                "selector": {
                    "podSelector": selector_object(self.pod_selector),
                    "namespaceSelector": selector_object(self.namespace_selector),
                },
            },
        }


@dataclass(frozen=True, slots=True)
class LabelChange:
    """Set ``LABEL=value`` on a pod, or remove it (``value`` None)."""

    namespace: str
    pod: str
    value: str | None

    def to_object(self) -> dict[str, Any]:
        return {"namespace": self.namespace, "pod": self.pod, "key": LABEL, "value": self.value}

    def command(self) -> str:
        change = f"{LABEL}-" if self.value is None else f"{LABEL}={self.value}"
        return f"kubectl label pod -n {self.namespace} {self.pod} {change} --overwrite"


@dataclass(frozen=True, slots=True)
class Attachment:
    networkings: tuple[Networking, ...]
    labels: tuple[LabelChange, ...]


def selector_object(requirements: Iterable[ir.Requirement]) -> dict[str, Any]:
    """A metav1 LabelSelector: single-valued ``In`` terms of distinct keys as matchLabels,
    the rest as matchExpressions (in canonical order)."""
    terms = sorted(set(requirements))
    keys = [r.key for r in terms]
    labels = {
        r.key: r.values[0]
        for r in terms
        if r.operator is ir.Operator.IN and len(r.values) == 1 and keys.count(r.key) == 1
    }
    exprs = [
        {
            "key": r.key,
            "operator": str(r.operator),
            **({"values": list(r.values)} if r.values else {}),
        }
        for r in terms
        if r.key not in labels
    ]
    out: dict[str, Any] = {}
    if labels:
        out["matchLabels"] = labels
    if exprs:
        out["matchExpressions"] = exprs
    return out


# -- selector algebra -----------------------------------------------------------------------


def _negate(r: ir.Requirement) -> ir.Requirement:
    op = {
        ir.Operator.IN: ir.Operator.NOT_IN,
        ir.Operator.NOT_IN: ir.Operator.IN,
        ir.Operator.EXISTS: ir.Operator.DOES_NOT_EXIST,
        ir.Operator.DOES_NOT_EXIST: ir.Operator.EXISTS,
    }[r.operator]
    return ir.Requirement(r.key, op, r.values)


def _implies(p: ir.Requirement, r: ir.Requirement) -> bool:
    """Every label set ``p`` matches, ``r`` matches."""
    if p == r:
        return True
    if p.key != r.key:
        return False
    op, rop = p.operator, r.operator
    if op is ir.Operator.IN:
        if rop is ir.Operator.IN:
            return set(p.values) <= set(r.values)
        if rop is ir.Operator.NOT_IN:
            return not set(p.values) & set(r.values)
        return rop is ir.Operator.EXISTS
    if op is ir.Operator.DOES_NOT_EXIST:
        return rop is ir.Operator.NOT_IN
    if op is ir.Operator.NOT_IN and rop is ir.Operator.NOT_IN:
        return set(r.values) <= set(p.values)
    return False


def _contradicts(p: ir.Requirement, r: ir.Requirement) -> bool:
    """No label set matches both."""
    return p.key == r.key and _implies(p, _negate(r))


def _class_selector(
    matched: Iterable[ir.LabelSelector], unmatched: Iterable[ir.LabelSelector]
) -> tuple[ir.Requirement, ...] | None:
    """Requirements matching exactly the pods ``matched`` all select and ``unmatched`` none
    selects; None when one label selector cannot say it."""
    positive = {r for sel in matched for r in sel.requirements}
    terms = set(positive)
    for sel in unmatched:
        if any(_contradicts(p, r) for p in positive for r in sel.requirements):
            continue  # it never selects these pods
        left = [r for r in sel.requirements if not any(_implies(p, r) for p in positive)]
        if len(left) != 1:
            return None  # a disjunction (or, with none left, no pod could be in the class)
        terms.add(_negate(left[0]))
    return tuple(sorted(terms))


# -- attachment -----------------------------------------------------------------------------


def _digest(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:10]


def attach(plan: Plan, grants: Grants, cluster: tiers.ClusterPolicySet = tiers.EMPTY) -> Attachment:
    """PodNetworkings (and label changes) that give every selectable pod its groups."""
    resolver = grants.resolver
    pods = resolver.pods
    isolating = [p for p in grants.policies if p.ingress is not None or p.egress is not None]
    by_namespace: dict[str, list[ir.LabelSelector]] = {}
    for policy in isolating:
        by_namespace.setdefault(policy.namespace, []).append(policy.pod_selector)
    for cnp in cluster:
        if not cnp.ingress and not cnp.egress:
            continue
        for namespace in resolver.namespaces_matching(cnp.subject.namespaces):
            by_namespace.setdefault(namespace, []).append(cnp.subject.pods)
    networkings: list[Networking] = []
    labels: list[LabelChange] = []
    labelled: set[tuple[str, str]] = set()
    rest: list[int] = []
    for namespace in sorted({p.namespace for p in pods}):
        scope = resolver.namespace_bits(namespace) & resolver.selectable
        selecting = by_namespace.get(namespace)
        if not selecting:
            rest.extend(bit_indices(scope))
            continue
        found = list(_namespace(plan, grants, namespace, selecting, scope))
        uses_label = any(label for _, _, _, label in found)
        ns_term = (ir.Requirement(METADATA_NAME_LABEL, ir.Operator.IN, (namespace,)),)
        for selector, groups, members, label in found:
            names = tuple(pods[i].name for i in members)
            if label:
                value = _digest(namespace, groups)
                terms: tuple[ir.Requirement, ...] = (
                    ir.Requirement(LABEL, ir.Operator.IN, (value,)),
                )
                for idx, name in zip(members, names, strict=True):
                    labelled.add((namespace, name))
                    if pods[idx].labels.get(LABEL) != value:
                        labels.append(LabelChange(namespace, name, value))
            else:
                assert selector is not None
                terms = selector
                if uses_label:
                    terms = (*terms, ir.Requirement(LABEL, ir.Operator.DOES_NOT_EXIST))
            networkings.append(
                Networking(
                    f"npc-{namespace}-{_digest(namespace, groups, terms)}",
                    terms,
                    ns_term,
                    groups,
                )
            )
    if rest:
        first = rest[0]
        groups = (*plan.ingress_of[first], *plan.egress_of[first])
        assert all((*plan.ingress_of[i], *plan.egress_of[i]) == groups for i in rest)
        listed = tuple(sorted(by_namespace))
        ns_terms = (
            (ir.Requirement(METADATA_NAME_LABEL, ir.Operator.NOT_IN, listed),) if listed else ()
        )
        networkings.append(Networking("npc-unisolated", (), ns_terms, groups))
    for pod in pods:
        if LABEL in pod.labels and (pod.namespace, pod.name) not in labelled:
            labels.append(LabelChange(pod.namespace, pod.name, None))
    labels.sort(key=lambda c: (c.namespace, c.pod))
    return Attachment(tuple(networkings), tuple(labels))


def _namespace(
    plan: Plan, grants: Grants, namespace: str, selecting: list[ir.LabelSelector], scope: int
) -> Iterator[tuple[tuple[ir.Requirement, ...] | None, tuple[str, ...], list[int], bool]]:
    """Per class of pods (the same of the namespace's ``selecting`` pod selectors select
    them): (selector or None, groups, members, attached by label?), one entry per pair of
    groups."""
    resolver = grants.resolver
    selectors = sorted(set(selecting), key=str)
    bits = [resolver.label_bits(s) & scope for s in selectors]
    classes: dict[tuple[bool, ...], list[int]] = {}
    for idx in bit_indices(scope):
        vector = tuple(bool(b >> idx & 1) for b in bits)
        classes.setdefault(vector, []).append(idx)
    for vector in sorted(classes):
        members = classes[vector]
        pairs: dict[tuple[str, ...], list[int]] = {}
        for idx in members:
            pairs.setdefault((*plan.ingress_of[idx], *plan.egress_of[idx]), []).append(idx)
        selector = _class_selector(
            (s for s, hit in zip(selectors, vector, strict=True) if hit),
            (s for s, hit in zip(selectors, vector, strict=True) if not hit),
        )
        if selector is not None and len(pairs) > 1:
            split = _split_by_label(grants, pairs)
            if split is not None:
                for groups in sorted(pairs):
                    yield (*selector, split[groups]), groups, pairs[groups], False
                continue
        by_label = selector is None or len(pairs) > 1
        for groups in sorted(pairs):
            yield selector, groups, pairs[groups], by_label


def _split_by_label(
    grants: Grants, pairs: dict[tuple[str, ...], list[int]]
) -> dict[tuple[str, ...], ir.Requirement] | None:
    """Pods that the same policies select but that need different groups (their named ports
    differ) are told apart by a label of their own when one does it: a key every pod has,
    whose values never cross from one set of groups to another (``app``, typically). Each
    set then gets ``key In (its values)``; a pod with another value matches none of them."""
    pods = grants.resolver.pods
    members = [i for group in pairs.values() for i in group]
    keys = set.intersection(*(set(pods[i].labels) for i in members))
    for key in sorted(keys - {LABEL}):
        values = {g: {pods[i].labels[key] for i in idxs} for g, idxs in pairs.items()}
        seen: set[str] = set()
        for found in values.values():
            if found & seen:
                break
            seen |= found
        else:
            return {
                g: ir.Requirement(key, ir.Operator.IN, tuple(sorted(v))) for g, v in values.items()
            }
    return None
