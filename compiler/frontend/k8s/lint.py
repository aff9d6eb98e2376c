"""Warnings about valid policies that probably do not mean what their author meant.

These are classic mistakes, seen in published NetworkPolicy tutorials and CNI issue trackers:

* rules in a direction the policy does not isolate (``egress:`` rules with ``policyTypes:
  [Ingress]``) are silently ignored by every implementation;
* a ``namespaceSelector`` item next to a ``podSelector`` item is an OR of two peers, where the
  author very often meant one peer with both selectors (an AND): one dash too many.
"""

from __future__ import annotations

from npc.errors import Code, Path, Severity
from npc.frontend.decode import Decoder
from npc.frontend.k8s.api import NetworkPolicy, NetworkPolicyPeer

__all__ = ["lint_network_policy"]


def _kind(peer: NetworkPolicyPeer) -> str | None:
    if peer.ip_block is not None:
        return None
    if peer.namespace_selector is not None and peer.pod_selector is None:
        return "namespaceSelector"
    if peer.pod_selector is not None and peer.namespace_selector is None:
        return "podSelector"
    return None


def _and_or(peers: tuple[NetworkPolicyPeer, ...], path: Path, out: Decoder) -> None:
    for i in range(1, len(peers)):
        before, here = _kind(peers[i - 1]), _kind(peers[i])
        if before and here and before != here:
            field = path[-1]
            out.problem(
                Code.AND_OR_CONFUSION,
                f"{field}[{i - 1}] ({before}) and {field}[{i}] ({here}) are two peers, ORed: "
                f"this admits every pod of the selected namespaces, and the selected pods of "
                f"the policy's own namespace",
                (*path, i),
                f"if you meant only the selected pods inside the selected namespaces, make them "
                f"one peer: remove the '-' before `{here}`",
                severity=Severity.WARNING,
            )


def lint_network_policy(np: NetworkPolicy, out: Decoder) -> None:
    """Add lint warnings for one validated NetworkPolicy to ``out``."""
    spec = np.spec
    if spec is None:
        return
    types = spec.policy_types or ()
    if types and spec.ingress and "Ingress" not in types:
        out.problem(
            Code.IGNORED_RULES,
            "these ingress rules are ignored: policyTypes does not include Ingress",
            ("spec", "ingress"),
            "add Ingress to policyTypes, or remove the rules",
            severity=Severity.WARNING,
        )
    if types and spec.egress and "Egress" not in types:
        out.problem(
            Code.IGNORED_RULES,
            "these egress rules are ignored: policyTypes does not include Egress",
            ("spec", "egress"),
            "add Egress to policyTypes, or remove the rules",
            severity=Severity.WARNING,
        )
    for i, ingress_rule in enumerate(spec.ingress or ()):
        _and_or(ingress_rule.from_ or (), ("spec", "ingress", i, "from"), out)
    for i, egress_rule in enumerate(spec.egress or ()):
        _and_or(egress_rule.to or (), ("spec", "egress", i, "to"), out)
