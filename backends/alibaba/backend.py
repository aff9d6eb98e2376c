"""The ``alibaba`` target: ECS security groups for pods on Terway trunk ENIs.

On ACK with Terway in trunk-ENI mode a pod can have its own ENI, and the ``PodNetworking``
objects decide which security groups that ENI joins, so NetworkPolicy can be enforced by the
cloud, outside the node. This backend turns policies and a cluster snapshot into advanced
(``enterprise``) security groups, their rules in the API's own words (the ``Permissions.N``
of ``AuthorizeSecurityGroup`` / ``AuthorizeSecurityGroupEgress``, batched 100 per request),
and the PodNetworkings that attach them: :mod:`npc.backends.alibaba.plan` decides the groups
and rules, :mod:`npc.backends.alibaba.attach` the attachment,
:mod:`npc.backends.alibaba.document` the output as data, which
:mod:`npc.backends.alibaba.jsontext` writes as JSON (one permission per line).
``--format aliyun-cli`` prints the same as ``aliyun ecs`` and ``kubectl`` commands
(:mod:`npc.backends.alibaba.cli`).

What ECS cannot do is refused (SCTP, unless ``--unsupported=deny`` drops those allow
entries) or said: pod security groups do not filter traffic between pods of one node, nor
between a pod and its own node (ACK's documented limitation), which the spec always allows
for the latter and npc reports as a warning for the former.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from npc import ir, tiers
from npc.backends.alibaba import counts
from npc.backends.alibaba.attach import LABEL, attach
from npc.backends.alibaba.cli import render
from npc.backends.alibaba.document import document
from npc.backends.alibaba.jsontext import dumps
from npc.backends.alibaba.plan import Group, Plan, build
from npc.backends.alibaba.tiers import cluster_sctp
from npc.backends.base import Backend, BackendOptions, Counts, Emitted
from npc.backends.grants import Grants
from npc.capabilities import NETWORK_POLICY, Capability, feature_uses
from npc.errors import (
    Code,
    Diagnostic,
    Path,
    Severity,
    UnsupportedError,
    ValidationError,
    format_path,
)
from npc.snapshot import Snapshot

__all__ = ["AlibabaBackend", "AlibabaOptions"]

FORMATS = ("json", "aliyun-cli")
UNSUPPORTED = ("error", "deny")
#: ``same_node``: refuse pods an isolating policy selects that share a node with other pods
#: (default), or trust another enforcer with that traffic (a warning then).
SAME_NODE = ("error", "trust")
_REGION = re.compile(r"^[a-z]{2,}(-[a-z0-9]+)+$")


@dataclass(frozen=True, slots=True)
class AlibabaOptions(BackendOptions):
    """``region``: the ECS region (``RegionId``); ``format``: ``json`` (data) or
    ``aliyun-cli`` (a shell script); ``unsupported``: ``error`` (refuse SCTP) or ``deny``
    (drop SCTP allow entries, with a warning: stricter, never looser); ``same_node``:
    ``error`` (refuse isolated pods that share a node with other pods: ECS does not filter
    their traffic) or ``trust`` (another enforcer, such as Terway's policy agent, covers it;
    a warning)."""

    region: str = "cn-hangzhou"
    format: str = "json"
    unsupported: str = "error"
    same_node: str = "error"

    def __post_init__(self) -> None:
        problems = []
        if not _REGION.match(self.region):
            problems.append(("region", self.region, "a region ID such as cn-hangzhou"))
        if self.format not in FORMATS:
            problems.append(("format", self.format, " or ".join(FORMATS)))
        if self.unsupported not in UNSUPPORTED:
            problems.append(("unsupported", self.unsupported, " or ".join(UNSUPPORTED)))
        if self.same_node not in SAME_NODE:
            problems.append(("same_node", self.same_node, " or ".join(SAME_NODE)))
        if problems:
            raise ValidationError(
                [
                    Diagnostic(
                        Code.INVALID_VALUE,
                        Severity.ERROR,
                        f"--{name} {value!r}: expected {expected}",
                    )
                    for name, value, expected in problems
                ]
            )


class AlibabaBackend(Backend):
    """Security groups, their rules and PodNetworkings, as JSON or ``aliyun`` commands."""

    name: ClassVar[str] = "alibaba"
    description: ClassVar[str] = (
        "Alibaba Cloud ECS security groups for pods on Terway trunk ENIs, with PodNetworkings"
    )
    #: Every NetworkPolicy feature but SCTP; SCTP is listed because :meth:`emit` checks it
    #: itself, where ``--unsupported=deny`` can leave it out instead of refusing. And
    #: ClusterNetworkPolicy, as priorities and drop rules (:mod:`npc.backends.alibaba.tiers`).
    capabilities: ClassVar[frozenset[Capability]] = NETWORK_POLICY | {
        Capability.CLUSTER_NETWORK_POLICY
    }
    needs_snapshot: ClassVar[bool] = True
    suffix: ClassVar[str] = "alibaba.json"
    options_type: ClassVar[type[BackendOptions]] = AlibabaOptions

    def optimizes(self, options: BackendOptions) -> bool:
        """No: the plan merges every group's rules into a minimal CIDR cover itself, and SCTP
        uses are reported at the field paths the user wrote."""
        return False

    def count(self, emitted: Emitted) -> Counts:
        """Security groups and their permissions (:mod:`.counts`)."""
        return counts.count(emitted)

    def emit(
        self, policies: ir.PolicySet, snapshot: Snapshot | None, options: BackendOptions
    ) -> Emitted:
        return self.emit_tiered(policies, tiers.EMPTY, snapshot, options)

    def emit_tiered(
        self,
        policies: ir.PolicySet,
        cluster_policies: tiers.ClusterPolicySet,
        snapshot: Snapshot | None,
        options: BackendOptions,
    ) -> Emitted:
        """NetworkPolicies, and ClusterNetworkPolicies as priorities and drop rules in the
        groups of the pods they apply to (:mod:`npc.backends.alibaba.tiers`)."""
        opts = self.check_options(options, AlibabaOptions)
        assert snapshot is not None
        deny = opts.unsupported == "deny"
        own = [*_own_label(policies), *_own_label_cluster(cluster_policies)]
        diagnostics = _sctp(policies, deny=deny)
        diagnostics.extend(cluster_sctp(cluster_policies, snapshot, deny=deny))
        errors = [d for d in diagnostics if d.severity is Severity.ERROR]
        if own or errors:
            raise UnsupportedError([*own, *errors])
        grants = Grants(policies, snapshot)
        plan = build(grants, drop_sctp=deny, cluster=cluster_policies)
        attachment = attach(plan, grants, cluster_policies)
        diagnostics.extend(grants.diagnostics)
        shared = _same_node(plan, grants, trust=opts.same_node == "trust")
        if shared and shared[0].severity is Severity.ERROR:
            raise UnsupportedError(shared)
        diagnostics.extend(shared)
        if opts.format == "aliyun-cli":
            text = render(document(plan, attachment, grants, opts.region))
        else:  # one permission per line, each written once (npc.backends.alibaba.jsontext)
            text = dumps(document(plan, attachment, grants, opts.region, compact=True), "\n")
        return Emitted(text, tuple(diagnostics))


def _names_sctp(policies: ir.PolicySet) -> bool:
    """Whether a rule names SCTP ports: most inputs do not, and then :func:`_sctp` need not
    walk every feature of every policy (``feature_uses``: 5,000 policies, 45,000 uses)."""
    return any(
        entry.protocol is ir.Protocol.SCTP
        for policy in policies
        for rules in (policy.ingress, policy.egress)
        if rules
        for rule in rules
        if not isinstance(rule.ports, ir.AnyPort)
        for entry in rule.ports.entries
    )


def _sctp(policies: ir.PolicySet, *, deny: bool) -> list[Diagnostic]:
    """Every use of SCTP ports: errors, or with ``deny`` warnings that they are left out."""
    if not _names_sctp(policies):
        return []
    seen = set()
    out = []
    for use in feature_uses(policies):
        if use.capability is not Capability.SCTP or (use.policy.key, use.path) in seen:
            continue
        seen.add((use.policy.key, use.path))
        if deny:
            message, hint = "its SCTP ports are left out (--unsupported=deny): denied", None
        else:
            message = "nothing was emitted"
            hint = (
                "ECS rules name TCP, UDP, ICMP or all protocols; --unsupported=deny leaves the "
                "SCTP ports out instead (that traffic is then denied)"
            )
        out.append(
            Diagnostic(
                Code.UNSUPPORTED,
                Severity.WARNING if deny else Severity.ERROR,
                f"NetworkPolicy {use.policy.key}: target alibaba cannot express SCTP; {message}",
                format_path(use.path),
                hint=hint,
                origin=use.policy.origin.child(use.path) if use.policy.origin is not None else None,
            )
        )
    return out


def _own_label(policies: ir.PolicySet) -> list[Diagnostic]:
    """Errors for pod selectors on :data:`LABEL`: npc sets and removes that label to attach
    pods, so such a selector would pick other pods once the label commands ran than the ones
    the groups were planned for (a policy selecting labelled pods would isolate pods whose
    groups stay open)."""
    out = []
    for policy in policies:
        found: list[Path] = []
        if any(r.key == LABEL for r in policy.pod_selector.requirements):
            found.append(("spec", "podSelector"))
        for direction in ir.DIRECTIONS:
            for index, rule in enumerate(policy.rules(direction) or ()):
                if isinstance(rule.peers, ir.AnyPeer):
                    continue
                for i, peer in enumerate(rule.peers):
                    if isinstance(peer, ir.PodPeer) and any(
                        r.key == LABEL for r in peer.pods.requirements
                    ):
                        root = _rule_path(policy, direction, index, rule)
                        found.append((*root, ir.Direction(direction).peer_field, i, "podSelector"))
        for path in found:
            out.append(
                Diagnostic(
                    Code.UNSUPPORTED,
                    Severity.ERROR,
                    f"NetworkPolicy {policy.key}: target alibaba cannot express a selector on "
                    f"{LABEL}, the label npc sets on pods to attach their security groups",
                    format_path(path),
                    hint=f"select on another label: npc adds and removes {LABEL} itself, "
                    "so this selector would pick other pods once its label commands ran",
                    origin=policy.origin.child(path) if policy.origin is not None else None,
                )
            )
    return out


def _own_label_cluster(policies: tiers.ClusterPolicySet) -> list[Diagnostic]:
    """The same refusal for ClusterNetworkPolicy subjects and pod peers on :data:`LABEL`."""
    out = []
    for policy in policies:
        found: list[Path] = []
        if any(r.key == LABEL for r in policy.subject.pods.requirements):
            found.append(("spec", "subject", "pods", "podSelector"))
        for direction in ir.DIRECTIONS:
            for index, rule in enumerate(policy.rules(direction)):
                for i, peer in enumerate(rule.peers):
                    if isinstance(peer, ir.PodPeer) and any(
                        r.key == LABEL for r in peer.pods.requirements
                    ):
                        field = ir.Direction(direction).peer_field
                        found.append(("spec", str(direction), index, field, i, "pods"))
        for path in found:
            out.append(
                Diagnostic(
                    Code.UNSUPPORTED,
                    Severity.ERROR,
                    f"ClusterNetworkPolicy {policy.name}: target alibaba cannot express a "
                    f"selector on {LABEL}, the label npc sets on pods to attach their security "
                    "groups",
                    format_path(path),
                    hint=f"select on another label: npc adds and removes {LABEL} itself",
                    origin=policy.origin.child(path) if policy.origin is not None else None,
                )
            )
    return out


def _rule_path(policy: ir.Policy, direction: str, index: int, rule: ir.Rule) -> Path:
    """The rule's field path in its NetworkPolicy (its origin when known, else its index)."""
    if rule.origin is not None and policy.origin is not None:
        root = policy.origin.path
        if rule.origin.path[: len(root)] == root:
            return rule.origin.path[len(root) :]
    return ("spec", str(direction), index)


def _same_node(plan: Plan, grants: Grants, *, trust: bool) -> list[Diagnostic]:
    """Where pods an isolating policy selects share a node with other pods, ECS does not
    filter their traffic (pod security groups skip same-node pod-to-pod traffic), so the
    groups would let through what the policies deny: an error naming the first such policy,
    or with ``trust`` (another enforcer covers that traffic) one warning."""
    isolated = {g.name: g for g in plan.groups if not g.open}
    by_node: dict[str, list[int]] = {}
    for idx, pod in enumerate(grants.resolver.pods):
        if idx in plan.ingress_of and pod.node_name:
            by_node.setdefault(pod.node_name, []).append(idx)
    nodes: list[str] = []
    first: Group | None = None
    for node in sorted(by_node):
        members = by_node[node]
        if len(members) < 2:
            continue
        groups = [
            isolated[name]
            for i in members
            for name in (*plan.ingress_of[i], *plan.egress_of[i])
            if name in isolated
        ]
        if groups:
            nodes.append(node)
            if first is None:
                first = min(groups, key=lambda g: g.name)
    if first is None:
        return []
    shown = ", ".join(nodes[:5]) + (f" and {len(nodes) - 5} more" if len(nodes) > 5 else "")
    isolating = [p.key for p in first.policies] or list(first.cluster)
    policy = first.policies[0] if first.policies else None
    origin = policy.origin.child(("spec", "podSelector")) if policy and policy.origin else None
    what = f"pods isolated by {', '.join(isolating)} share " + (
        f"node {shown} with other pods" if len(nodes) == 1 else f"nodes with other pods ({shown})"
    )
    why = "Terway does not apply pod security groups to traffic between pods of one node"
    if trust:
        return [
            Diagnostic(
                Code.NOT_ENFORCEABLE,
                Severity.WARNING,
                f"{what}: {why}; there another enforcer must apply the policies "
                "(--same-node=trust)",
            )
        ]
    return [
        Diagnostic(
            Code.NOT_ENFORCEABLE,
            Severity.ERROR,
            f"target alibaba: {what}: {why}, so these groups would allow there what the "
            "policies deny; nothing was emitted",
            "spec.podSelector" if policy else "spec.subject",
            hint="spread the pods apart (anti-affinity), or, when another enforcer applies "
            "NetworkPolicy between pods of one node as well (Terway's policy agent), pass "
            "--same-node=trust",
            origin=origin,
        )
    ]
