"""What a ClusterNetworkPolicy does, in numbered statements (``npc explain NAME``).

The same shape as :func:`npc.analysis.explain.explain_policy` for a NetworkPolicy: statement 1
says which pods the policy applies to (its subject, rule T1 of
:mod:`npc.analysis.tier_semantics`), where its tier stands (Admin before NetworkPolicy,
Baseline after it: rule 9 of :mod:`npc.analysis.semantics`) and that the first matching rule
decides (T2); then one statement per rule, in evaluation order (ingress, then egress, each as
written), with its action, its peers (T3), its protocols (T4) and its ``file:line``. Given a
snapshot, statements also say which pods or nodes they come to.
"""

from __future__ import annotations

from npc import ir, tiers
from npc.analysis.explain import (
    Locator,
    PolicyExplanation,
    Statement,
    describe_peer,
    describe_ports,
)
from npc.analysis.tier_semantics import TierJudge
from npc.errors import Location
from npc.snapshot import Pod, Snapshot
from npc.wording import plural

__all__ = ["explain_cluster_policy"]

_EXAMPLES = 3

#: ``describe_peer`` reads its policy only for a same-namespace peer, which a
#: ClusterNetworkPolicy never has.
_NO_POLICY = ir.Policy("", "", ir.EVERYTHING)

_OUTCOME = {
    (tiers.Tier.ADMIN, tiers.Action.ACCEPT): "allowed, whatever NetworkPolicy says",
    (tiers.Tier.ADMIN, tiers.Action.DENY): "denied, whatever NetworkPolicy says",
    (tiers.Tier.ADMIN, tiers.Action.PASS): (
        "handed on to NetworkPolicy (then, for pods no NetworkPolicy isolates, to the Baseline "
        "tier)"
    ),
    (tiers.Tier.BASELINE, tiers.Action.ACCEPT): "allowed",
    (tiers.Tier.BASELINE, tiers.Action.DENY): "denied",
    (tiers.Tier.BASELINE, tiers.Action.PASS): "handed on to the default, which allows them",
}


def _nowhere(origin: ir.Origin | None) -> Location | None:
    del origin
    return None


def _pods(pods: list[Pod]) -> str:
    keys = [p.key for p in pods]
    more = f" and {len(keys) - _EXAMPLES} more" if len(keys) > _EXAMPLES else ""
    return f"{plural(len(keys), 'pod')}: {', '.join(keys[:_EXAMPLES])}{more}"


def _subject(subject: tiers.Subject) -> str:
    where = (
        "every namespace"
        if subject.namespaces.is_everything
        else f"the namespaces matching `{subject.namespaces}`"
    )
    if subject.pods.is_everything:
        return f"every pod in {where}"
    return f"the pods matching `{subject.pods}` in {where}"


class _Words:
    """Peers as noun phrases, with what they come to in the snapshot (if any)."""

    def __init__(self, policy: tiers.ClusterPolicy, snapshot: Snapshot | None) -> None:
        self.snapshot = snapshot
        self.judge = (
            TierJudge(tiers.ClusterPolicySet((policy,)), snapshot) if snapshot is not None else None
        )

    def subject(self, policy: tiers.ClusterPolicy) -> str:
        if self.judge is None or self.snapshot is None:
            return ""
        pods = [p for p in self.snapshot.pods if policy in self.judge.subject_of(p)]
        return f" In the snapshot: {_pods(pods)}." if pods else " In the snapshot no pod matches."

    def peer(self, peer: tiers.ClusterPeer, action: tiers.Action) -> str:
        if isinstance(peer, ir.PodPeer | ir.AddressPeer):
            text = describe_peer(_NO_POLICY, peer)
        elif isinstance(peer, tiers.NodesPeer):
            which = (
                "every node" if peer.nodes.is_everything else f"the nodes matching `{peer.nodes}`"
            )
            text = f"{which} (their addresses)"
        elif isinstance(peer, tiers.DomainNamesPeer):
            return (
                f"the domain names {', '.join(peer.names)} (decided by DNS at run time: npc "
                "matches no connection by them, and no target can compile them)"
            )
        else:
            matches = "nothing" if action is tiers.Action.ACCEPT else "every connection"
            return f"a peer npc does not know (it fails closed: it matches {matches})"
        return text + self._found(peer)

    def _found(self, peer: tiers.ClusterPeer) -> str:
        judge, snapshot = self.judge, self.snapshot
        if judge is None or snapshot is None:
            return ""
        if isinstance(peer, ir.PodPeer):
            pods = [p for p in snapshot.pods if judge.pod_peer_matches(peer, p)]
        elif isinstance(peer, ir.AddressPeer):
            pods = [p for p in snapshot.pods if any(peer.addresses.contains(a) for a in p.ips)]
            return f" (in the snapshot, {_pods(pods)})" if pods else ""
        else:
            assert isinstance(peer, tiers.NodesPeer)
            nodes = [n.name for n in snapshot.nodes if peer.nodes.matches(n.labels)]
            if not nodes:
                return " (no node of the snapshot matches)"
            return f" (in the snapshot, {plural(len(nodes), 'node')}: {', '.join(nodes[:3])})"
        if not pods:
            return " (no pod in the snapshot matches, so this peer matches nobody)"
        return f" (in the snapshot, {_pods(pods)})"


def _placement(policy: tiers.ClusterPolicy) -> str:
    if policy.tier is tiers.Tier.ADMIN:
        return (
            "before NetworkPolicy: an Accept or Deny is final, a Pass hands the connection on to "
            "NetworkPolicy"
        )
    return (
        "after NetworkPolicy, for the connections of pods no NetworkPolicy isolates in that "
        "direction: an Accept or Deny is final, a Pass hands the connection on to the default "
        "(allow)"
    )


def explain_cluster_policy(
    policy: tiers.ClusterPolicy, snapshot: Snapshot | None = None, locate: Locator = _nowhere
) -> PolicyExplanation:
    """Numbered statements for one ClusterNetworkPolicy (see the module docstring)."""
    words = _Words(policy, snapshot)
    body: list[Statement] = []
    for direction in (ir.Direction.INGRESS, ir.Direction.EGRESS):
        for i, rule in enumerate(policy.rules(direction)):
            peers = " or ".join(words.peer(p, rule.action) for p in rule.peers)
            flows = (
                f"connections from {peers} to them"
                if direction is ir.Direction.INGRESS
                else f"connections from them to {peers}"
            )
            name = f" ({rule.name})" if rule.name else ""
            location = locate(rule.origin)
            where = f" ({location})" if location is not None else ""
            text = (
                f"{direction}[{i}]{name}: {rule.action} {flows}, on "
                f"{describe_ports(rule.ports, direction)}: {_OUTCOME[(policy.tier, rule.action)]}"
                f"{where}."
            )
            number = len(body) + 2
            body.append(
                Statement(
                    number,
                    text,
                    direction.value,
                    f"spec.{direction}[{i}]",
                    str(location) if location is not None else None,
                )
            )
    rules = (
        f"Its rules (statement{'s' if len(body) > 1 else ''} "
        + (f"2-{len(body) + 1}" if len(body) > 1 else "2")
        + ") are taken in order, after those of policies of its tier with a lower priority "
        "value; the first that matches a connection decides it."
        if body
        else "It has no rules: it decides nothing."
    )
    first = (
        f"ClusterNetworkPolicy in the {policy.tier} tier, priority {policy.priority}: it applies "
        f"to {_subject(policy.subject)} (never to host-network pods), {_placement(policy)}. "
        f"{rules}{words.subject(policy)}"
    )
    location = locate(policy.origin)
    return PolicyExplanation(
        policy.name,
        str(location) if location is not None else None,
        (Statement(1, first, "subject"), *body),
    )
