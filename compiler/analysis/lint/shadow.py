"""Rules and policies that allow nothing more than what is already allowed.

* W611: a rule whose every peer and port another rule of the same policy and direction also
  allows (of two identical rules, the later one is reported). Path: the rule.
* W612: a policy that adds nothing to other policies of its namespace selecting (at least)
  the same pods: in every direction it isolates, another policy with a looser podSelector
  isolates that direction too, and covers each of its rules. Policies without any rule
  (default-deny policies) are never reported: they are a safety net for pods created later.
  Of two identical policies, the later one (by namespace and name) is reported. Path:
  ``metadata.name``.

Coverage is decided on the selectors as written, without a snapshot, so it holds for every
cluster: a selector covers another when its terms are a subset of the other's; a
namespaceSelector ``{}`` covers the policy's own namespace; an ipBlock covers the addresses it
contains; ports cover by protocol, range and name.
"""

from __future__ import annotations

from collections.abc import Iterator

from npc import ir
from npc.analysis.lint.finding import Finding
from npc.errors import Code, format_path

__all__ = ["check", "peer_covers", "ports_cover", "rule_covers", "selector_covers"]


def selector_covers(wide: ir.LabelSelector, narrow: ir.LabelSelector) -> bool:
    """Whether ``wide`` matches everything ``narrow`` does (its terms are a subset)."""
    return set(wide.requirements) <= set(narrow.requirements)


def _namespaces_cover(wide: ir.NamespaceScope, narrow: ir.NamespaceScope) -> bool:
    if isinstance(wide, ir.SameNamespace):
        return isinstance(narrow, ir.SameNamespace)
    if isinstance(narrow, ir.SameNamespace):
        return wide.is_everything
    return selector_covers(wide, narrow)


def peer_covers(wide: ir.Peer, narrow: ir.Peer) -> bool:
    """Whether peer ``wide`` matches everything ``narrow`` does (both of one namespace)."""
    if isinstance(wide, ir.AddressPeer):
        return isinstance(narrow, ir.AddressPeer) and narrow.addresses.issubset(wide.addresses)
    if isinstance(narrow, ir.AddressPeer):
        return False
    return _namespaces_cover(wide.namespaces, narrow.namespaces) and selector_covers(
        wide.pods, narrow.pods
    )


def _peers_cover(wide: ir.Peers, narrow: ir.Peers) -> bool:
    if isinstance(wide, ir.AnyPeer):
        return True
    if isinstance(narrow, ir.AnyPeer):
        return False
    return all(any(peer_covers(w, n) for w in wide) for n in narrow)


def _entry_covers(wide: ir.ProtocolPorts, narrow: ir.ProtocolPorts) -> bool:
    if wide.all_ports:
        return True
    for r in narrow.ranges:
        if not any(w.start <= r.start and r.end <= w.end for w in wide.ranges):
            return False
    return set(narrow.named) <= set(wide.named)


def ports_cover(wide: ir.Ports, narrow: ir.Ports) -> bool:
    """Whether ``wide`` admits every protocol and port ``narrow`` does."""
    if isinstance(wide, ir.AnyPort):
        return True
    if isinstance(narrow, ir.AnyPort):
        return False
    for entry in narrow.entries:
        other = wide.get(entry.protocol)
        if other is None or not _entry_covers(other, entry):
            return False
    return True


def rule_covers(wide: ir.Rule, narrow: ir.Rule) -> bool:
    """Whether ``wide`` allows everything ``narrow`` allows (both of one namespace)."""
    return _peers_cover(wide.peers, narrow.peers) and ports_cover(wide.ports, narrow.ports)


def _shadowed(policy: ir.Policy) -> Iterator[Finding]:
    for direction in (ir.Direction.INGRESS, ir.Direction.EGRESS):
        rules = policy.rules(direction) or ()
        for i, rule in enumerate(rules):
            for j, other in enumerate(rules):
                if i == j or not rule_covers(other, rule):
                    continue
                if j > i and rule_covers(rule, other):
                    continue  # identical: the later one is reported
                where = format_path(("spec", direction.value, j))
                yield Finding.at(
                    Code.SHADOWED_RULE,
                    policy,
                    ("spec", direction.value, i),
                    f"allows nothing that {where} does not already allow",
                    f"remove it, or merge it into {where}",
                )
                break


def _covered_by(policy: ir.Policy, other: ir.Policy) -> bool:
    if other.namespace != policy.namespace or not selector_covers(
        other.pod_selector, policy.pod_selector
    ):
        return False
    for direction in (ir.Direction.INGRESS, ir.Direction.EGRESS):
        mine = policy.rules(direction)
        if mine is None:
            continue
        theirs = other.rules(direction)
        if theirs is None:
            return False
        if not all(any(rule_covers(t, r) for t in theirs) for r in mine):
            return False
    return True


def _redundant(policies: ir.PolicySet) -> Iterator[Finding]:
    by_namespace: dict[str, list[ir.Policy]] = {}
    for policy in policies:
        by_namespace.setdefault(policy.namespace, []).append(policy)
    for listed in by_namespace.values():
        yield from _redundant_in(listed)


def _redundant_in(listed: list[ir.Policy]) -> Iterator[Finding]:
    for index, policy in enumerate(listed):
        if not (policy.ingress or policy.egress):
            continue
        for j, other in enumerate(listed):
            if j == index or not _covered_by(policy, other):
                continue
            if j > index and _covered_by(other, policy):
                continue  # identical: the later one is reported
            yield Finding.at(
                Code.REDUNDANT_POLICY,
                policy,
                ("metadata", "name"),
                f"adds nothing: {other.key} selects every pod this policy selects, isolates "
                "them the same way, and allows everything this policy allows",
                f"remove it, or narrow {other.key}",
            )
            break


def check(policies: ir.PolicySet) -> Iterator[Finding]:
    """W611 and W612."""
    for policy in policies:
        yield from _shadowed(policy)
    yield from _redundant(policies)
