"""Checks on how a policy is written: they need no snapshot, and every load runs them.

* Rules of a direction ``policyTypes`` leaves out are ignored by every implementation
  (W601; the Kubernetes API reference: ``policyTypes`` lists the directions the policy
  applies to). Path: ``spec.ingress`` / ``spec.egress``.
* A ``from``/``to`` list holding a namespaceSelector-only peer and a podSelector-only peer
  (golden/seed003-my-app-ns; kubernetes/kubernetes#50451): two list items are ORed, so this
  admits every pod of the selected namespaces plus the selected pods of the policy's own
  namespace, where one item with both selectors (an AND: those pods, in those namespaces)
  was usually meant (W602). A ``podSelector: {}`` item is not counted: ANDed with a
  namespaceSelector it would add nothing, so its author meant the OR. Path: the list.
"""

from __future__ import annotations

from collections.abc import Iterator

from npc import ir
from npc.analysis.lint.finding import Finding
from npc.errors import Code

__all__ = ["check_policy"]


def _ignored(policy: ir.Policy) -> Iterator[Finding]:
    for direction in policy.ignored:
        field = direction.value
        yield Finding.at(
            Code.IGNORED_RULES,
            policy,
            ("spec", field),
            f"these {field} rules are ignored: policyTypes does not include "
            f"{direction.policy_type}",
            f"add {direction.policy_type} to policyTypes, or remove the rules",
        )


def _kind(peer: ir.Peer) -> str | None:
    if not isinstance(peer, ir.PodPeer):
        return None
    if isinstance(peer.namespaces, ir.SameNamespace):
        return None if peer.pods.is_everything else "podSelector"
    return "namespaceSelector" if peer.pods.is_everything else None


def _and_or(policy: ir.Policy) -> Iterator[Finding]:
    for direction in (ir.Direction.INGRESS, ir.Direction.EGRESS):
        field = direction.peer_field
        for index, rule in enumerate(policy.rules(direction) or ()):
            if not isinstance(rule.peers, tuple):
                continue
            kinds = [_kind(p) for p in rule.peers]
            if "namespaceSelector" not in kinds or "podSelector" not in kinds:
                continue
            ns = kinds.index("namespaceSelector")
            pod = kinds.index("podSelector")
            later = max(ns, pod)
            yield Finding.at(
                Code.AND_OR_CONFUSION,
                policy,
                ("spec", direction.value, index, field),
                f"{field}[{ns}] (namespaceSelector) and {field}[{pod}] (podSelector) are two "
                f"peers, ORed: this admits every pod of the selected namespaces, and the "
                f"selected pods of the policy's own namespace",
                f"if you meant only the selected pods inside the selected namespaces, make them "
                f"one peer: remove the '-' before `{kinds[later]}` in {field}[{later}]",
            )


def check_policy(policy: ir.Policy) -> Iterator[Finding]:
    """The written-form findings of one policy."""
    yield from _ignored(policy)
    yield from _and_or(policy)
