"""Deciding flows the way ECS and Terway do, from security groups, PodNetworkings and a
cluster snapshot.

An independent reading of the platform, used to check that what npc emits for the
``alibaba`` target means what the Kubernetes spec says, and later to verify groups npc did
not write. The rules, with their sources:

1. Which groups a pod's ENI joins (Terway, ``pkg/controller/webhook/mutating.go``
   ``matchOnePodNetworking``; ACK "Configure a static IP address, a separate vSwitch and a
   separate security group for each pod"): when a pod is created, Terway looks for a
   PodNetworking whose selectors match the pod's labels and its namespace's labels (both
   present selectors must match, and one must be present); the pod's trunk ENI joins that
   PodNetworking's ``securityGroupIDs``. Terway takes the first match of an unordered list,
   so a pod that several PodNetworkings match has no defined groups: the evaluator refuses
   (:class:`AttachmentError`). Terway skips PodNetworkings whose status is not Ready; the
   evaluator takes every one as Ready. A pod no PodNetworking matches, and a hostNetwork
   pod, stays on the node's shared ENI, which pod security groups do not filter. Labels the
   ruleset asks to set (:class:`~npc.rulesets.alibaba.model.LabelChange`) are applied
   first.
2. Pod security group rules do not apply to traffic between pods on the same node, nor
   between a pod and its own node (same ACK page, "Limitations"); a pod's traffic to itself
   never leaves it. A node's addresses are its Node object's and those of hostNetwork pods
   scheduled on it.
3. Outbound, the rules of every group on the source pod's ENI, inbound those on the
   destination pod's ENI, are pooled and sorted together ("Security group rules": rules of all
   the groups of an ENI are aggregated); the matching rule with the smallest ``Priority``
   (1-100) decides, and at equal priority ``drop`` wins over ``accept``
   (AuthorizeSecurityGroup: "rules with the same priority: drop takes precedence").
4. With no matching rule an advanced (enterprise) group denies, both ways ("Basic and
   advanced security groups": advanced groups deny inbound and outbound by default and
   isolate their members); only advanced groups are modelled.
5. Groups are stateful: replies of an allowed connection pass, so only the new connection's
   direction is decided; a connection passes when the source side and the destination side
   both accept it. A side with no pod ENI (an external address, a node) does not filter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import netaddr

from npc import ir
from npc.flows import Flow, node_addresses
from npc.rulesets.alibaba.model import Action, Permission, PodNetworking, Ruleset, SecurityGroup
from npc.rulesets.base import Sides
from npc.snapshot import Pod, Snapshot

__all__ = ["AttachmentError", "Decision", "EcsSemantics", "SideDecision"]


class AttachmentError(ValueError):
    """Terway cannot give a pod a defined set of groups (several PodNetworkings match it, or
    one names a group the ruleset does not hold)."""


@dataclass(frozen=True, slots=True)
class SideDecision:
    """One side of a connection: whether it passes, why, and the deciding rule (and the
    group holding it) when a rule decided."""

    direction: ir.Direction
    allowed: bool
    reason: str
    rule: Permission | None = None
    group: str | None = None


#: Both sides of a connection; it passes when both do.
Decision = Sides[SideDecision]


@dataclass(frozen=True, slots=True)
class _Eni:
    pod: Pod
    networking: PodNetworking
    groups: tuple[SecurityGroup, ...]


@dataclass(slots=True)
class EcsSemantics:
    """ECS verdicts for one ruleset over one snapshot (rules 1-5 above).

    Raises :class:`AttachmentError` on construction when some pod's groups are undefined."""

    ruleset: Ruleset
    snapshot: Snapshot
    _enis: dict[netaddr.IPAddress, _Eni | None] = field(default_factory=dict, repr=False)
    _pods: dict[netaddr.IPAddress, Pod] = field(default_factory=dict, repr=False)
    _nodes: dict[netaddr.IPAddress, str] = field(default_factory=dict, repr=False)
    _groups: dict[str, SecurityGroup] = field(default_factory=dict, repr=False)
    _by_namespace: dict[str, tuple[PodNetworking, ...]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for group in self.ruleset.groups:
            self._groups.setdefault(group.key, group)
        changes: dict[tuple[str, str], dict[str, str | None]] = {}
        for change in self.ruleset.labels:
            changes.setdefault((change.namespace, change.pod), {})[change.key] = change.value
        self._nodes = node_addresses(self.snapshot)
        for pod in self.snapshot.pods:
            if pod.host_network:
                continue
            eni = self._attach(pod, changes.get((pod.namespace, pod.name), {}))
            for address in pod.ips:
                self._pods.setdefault(address, pod)
                self._enis.setdefault(address, eni)

    # -- attachment -----------------------------------------------------------------------

    def _attach(self, pod: Pod, changes: Mapping[str, str | None]) -> _Eni | None:
        labels = dict(pod.labels)
        for key, value in changes.items():
            if value is None:
                labels.pop(key, None)
            else:
                labels[key] = value
        namespace_labels = self.snapshot.namespace_labels(pod.namespace)
        candidates = self._by_namespace.get(pod.namespace)
        if candidates is None:
            # Most PodNetworkings name one namespace: test namespace selectors once per
            # namespace, not once per pod.
            candidates = tuple(
                pn
                for pn in self.ruleset.pod_networkings
                if pn.namespace_selector is None or pn.namespace_selector.matches(namespace_labels)
            )
            self._by_namespace[pod.namespace] = candidates
        matched = [
            pn for pn in candidates if pn.matches(MappingProxyType(labels), namespace_labels)
        ]
        if not matched:
            return None
        if len(matched) > 1:
            names = ", ".join(pn.name for pn in matched)
            raise AttachmentError(
                f"pod {pod.key} matches PodNetworkings {names}: Terway would attach whichever "
                "it lists first"
            )
        networking = matched[0]
        groups = []
        for key in networking.security_groups:
            group = self._groups.get(key)
            if group is None:
                raise AttachmentError(
                    f"PodNetworking {networking.name} names security group {key!r}, which the "
                    "ruleset does not hold"
                )
            groups.append(group)
        return _Eni(pod, networking, tuple(groups))

    def groups_of(self, pod: Pod) -> tuple[SecurityGroup, ...] | None:
        """The groups ``pod``'s ENI joins; None when it stays on the node's shared ENI."""
        for address in pod.ips:
            eni = self._enis.get(address)
            if eni is not None and eni.pod.key == pod.key:
                return eni.groups
        return None

    # -- decisions ------------------------------------------------------------------------

    def decide(self, flow: Flow) -> Decision:
        """Both sides of ``flow``, each with its reason and deciding rule."""
        src = self._pods.get(flow.src.address)
        dst = self._pods.get(flow.dst.address)
        if src is not None and dst is not None:
            reason = None
            if src.key == dst.key:
                reason = "traffic of a pod to itself never leaves it"
            elif src.node_name is not None and src.node_name == dst.node_name:
                reason = (
                    f"pods on the same node ({src.node_name}): pod security groups do not apply"
                )
            if reason is not None:
                return Decision(
                    flow,
                    SideDecision(ir.Direction.EGRESS, True, reason),
                    SideDecision(ir.Direction.INGRESS, True, reason),
                )
        egress = self._side(ir.Direction.EGRESS, flow, flow.src.address, flow.dst.address)
        ingress = self._side(ir.Direction.INGRESS, flow, flow.dst.address, flow.src.address)
        return Decision(flow, egress, ingress)

    def allowed(self, flow: Flow) -> bool:
        """Whether ``flow`` passes."""
        return self.decide(flow).allowed

    def _side(
        self,
        direction: ir.Direction,
        flow: Flow,
        local: netaddr.IPAddress,
        remote: netaddr.IPAddress,
    ) -> SideDecision:
        pod = self._pods.get(local)
        if pod is None:
            return SideDecision(direction, True, f"{local} is not on a pod ENI")
        eni = self._enis.get(local)
        if eni is None:
            return SideDecision(
                direction,
                True,
                f"pod {pod.key} matches no PodNetworking: on the node's shared ENI, which pod "
                "security groups do not filter",
            )
        if pod.node_name is not None and self._nodes.get(remote) == pod.node_name:
            return SideDecision(
                direction,
                True,
                f"{remote} is pod {pod.key}'s own node: pod security groups do not apply",
            )
        best: tuple[int, int, Permission, SecurityGroup] | None = None
        for group in eni.groups:
            for rule in group.permissions:
                if rule.direction is not direction or not rule.matches(
                    flow.protocol, flow.port, remote, local
                ):
                    continue
                # Smaller priority first; at equal priority drop (0) before accept (1).
                rank = (rule.priority, 0 if rule.action is Action.DROP else 1)
                if best is None or rank < best[:2]:
                    best = (*rank, rule, group)
        if best is None:
            return SideDecision(
                direction,
                False,
                f"no rule of {', '.join(g.name for g in eni.groups)} matches: advanced groups "
                "deny by default",
            )
        rule, group = best[2], best[3]
        return SideDecision(
            direction,
            rule.action is Action.ACCEPT,
            f"{rule} in {group.name}" + (f" ({rule.description})" if rule.description else ""),
            rule,
            group.name,
        )
