"""Deciding flows the way Calico does, from Calico policy objects and a cluster snapshot.

An independent reading of Calico's semantics (Felix and libcalico-go), used to check that
what npc emits for Calico means what the Kubernetes spec says (:mod:`npc.analysis.semantics`), and
later to compare other CNI outputs:

1. Workload endpoints are the snapshot's pods that are not hostNetwork; an address belongs to
   the endpoint that has it. Everything else (external addresses, nodes, hostNetwork pods) is
   not a Calico endpoint: no policy applies to it and no selector matches it.
2. An endpoint's labels are its pod's labels, plus ``projectcalico.org/namespace`` and
   ``projectcalico.org/orchestrator: k8s``, plus the labels of its namespace profile
   (namespace labels prefixed ``pcns.``, and ``pcns.projectcalico.org/name``); the pod's own
   labels win over inherited ones.
3. A policy applies to an endpoint in a direction when its ``types`` name the direction and
   it selects the endpoint: a GlobalNetworkPolicy by ``selector`` (and ``namespaceSelector``
   over ``pcns.`` labels), a namespaced NetworkPolicy by ``selector`` within its namespace.
4. Tiers run in order; within a tier, applicable policies run by ``order`` (absent: last),
   then name, and their rules in order. ``Allow``/``Deny`` decide, ``Pass`` skips to the
   next tier, ``Log`` goes on. A tier with an applicable policy but no decision applies its
   default action (``Deny``, or ``Pass``). When no tier decides, the namespace profile
   allows.
5. A rule matches when protocol, IP version and both entities match. An entity's ``nets``
   (any) / ``notNets`` (none) test the address; its selector is libcalico-go's
   ``getEndpointSelector``: ``namespaceSelector`` over ``pcns.`` labels (``all()`` = any
   namespace, ``global()`` = none), and in a namespaced policy a selector-bearing entity
   without one is confined to the policy's namespace. A selector only matches endpoints.
   Destination ports match numbers and ranges, and named ports of the destination endpoint
   (same name and protocol, same number).
6. Traffic from an endpoint to itself is not policed.
7. Traffic from an endpoint's own host (its node's addresses, hostNetwork pods there) to the
   endpoint is allowed whatever its ingress policy: Felix lets host processes reach local
   workloads (for health checks). Traffic from an endpoint to its host meets the endpoint's
   egress policy first (then ``DefaultEndpointToHostAction``, ACCEPT as Calico's Kubernetes
   manifests set it), so there Calico is stricter than the spec's "to and from the node".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import netaddr

from npc import ir
from npc.flows import Flow, node_addresses, pod_allowed_by
from npc.rulesets.base import Sides
from npc.rulesets.calico.model import (
    PROTOCOL_NUMBERS,
    CalicoObjects,
    CalicoPolicy,
    CalicoRule,
    EntityRule,
)
from npc.rulesets.calico.selector import NAMESPACE_LABEL, And, Eq, Node, namespace_selector
from npc.snapshot import Pod, Snapshot

__all__ = ["CalicoSemantics", "Decision", "SideDecision", "endpoint_labels"]

ORCHESTRATOR_LABEL = "projectcalico.org/orchestrator"
NAMESPACE_PREFIX = "pcns."
NAMESPACE_NAME_LABEL = "projectcalico.org/name"

_DIRECTIONS = {"egress": "Egress", "ingress": "Ingress"}


def endpoint_labels(pod: Pod, namespace_labels: Mapping[str, str]) -> dict[str, str]:
    """The labels Calico evaluates selectors against for ``pod``'s workload endpoint."""
    labels = {NAMESPACE_PREFIX + k: v for k, v in namespace_labels.items()}
    labels[NAMESPACE_PREFIX + NAMESPACE_NAME_LABEL] = pod.namespace
    labels.update(pod.labels)
    labels[NAMESPACE_LABEL] = pod.namespace
    labels[ORCHESTRATOR_LABEL] = "k8s"
    return labels


@dataclass(frozen=True, slots=True)
class SideDecision:
    """What one side (the source's egress or the destination's ingress) decided, and why."""

    direction: str
    allowed: bool
    reason: str
    #: The policy whose rule ``index`` (of this direction) decided, when a rule did.
    policy: CalicoPolicy | None = None
    index: int | None = None


#: Both sides of a connection; it passes when both do.
Decision = Sides[SideDecision]


@dataclass(frozen=True, slots=True)
class _Endpoint:
    pod: Pod
    labels: Mapping[str, str]


#: Per tier (in order) the policies that apply, in evaluation order.
_TierPolicies = tuple[tuple[str, tuple[CalicoPolicy, ...]], ...]


@dataclass(slots=True)
class CalicoSemantics:
    """Calico's verdicts for one set of Calico objects over one snapshot.

    Mirrors :class:`npc.analysis.semantics.Semantics` (``allowed``, ``pod_allowed``) so the two can
    be compared flow by flow."""

    objects: CalicoObjects
    snapshot: Snapshot
    _by_address: dict[netaddr.IPAddress, _Endpoint] = field(default_factory=dict, repr=False)
    _selectors: dict[tuple[EntityRule, str | None], Node | None] = field(
        default_factory=dict, repr=False
    )
    _net_ranges: dict[tuple[netaddr.IPNetwork, ...], tuple[tuple[int, int, int], ...]] = field(
        default_factory=dict, repr=False
    )
    _applying: dict[tuple[str, str, str], _TierPolicies] = field(default_factory=dict, repr=False)
    _hosts: dict[netaddr.IPAddress, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._hosts = node_addresses(self.snapshot)
        for pod in self.snapshot.pods:
            if pod.host_network:
                continue
            ep = _Endpoint(pod, endpoint_labels(pod, self.snapshot.namespace_labels(pod.namespace)))
            for address in pod.ips:
                self._by_address.setdefault(address, ep)

    def endpoint_labels(self, address: netaddr.IPAddress) -> Mapping[str, str] | None:
        """The labels of the workload endpoint with ``address`` (None: not an endpoint)."""
        ep = self._by_address.get(address)
        return None if ep is None else ep.labels

    # -- selection ------------------------------------------------------------------------

    @staticmethod
    def _selects(policy: CalicoPolicy, ep: _Endpoint) -> bool:
        if policy.namespace is not None and ep.pod.namespace != policy.namespace:
            return False
        if not policy.selector.evaluate(ep.labels):
            return False
        if policy.namespace_selector is not None:
            return namespace_selector(policy.namespace_selector).evaluate(ep.labels)
        return True

    def _tiers(self, ep: _Endpoint, direction: str) -> _TierPolicies:
        """(tier name, applicable policies in evaluation order), tiers in order."""
        key = (ep.pod.namespace, ep.pod.name, direction)
        found = self._applying.get(key)
        if found is None:
            tiers = sorted(self.objects.tiers, key=lambda t: (t.order, t.name))
            out = []
            for tier in tiers:
                pols = [
                    p
                    for p in self.objects.policies
                    if p.tier == tier.name and direction in p.types and self._selects(p, ep)
                ]
                if pols:
                    pols.sort(key=lambda p: (p.order, p.key))
                    out.append((tier.name, tuple(pols)))
            found = tuple(out)
            self._applying[key] = found
        return found

    # -- matching -------------------------------------------------------------------------

    def _entity_selector(self, entity: EntityRule, policy: CalicoPolicy) -> Node | None:
        """libcalico-go ``getEndpointSelector`` for one entity of one policy."""
        key = (entity, policy.namespace)
        if key in self._selectors:
            return self._selectors[key]
        scope: Node | None = None
        if entity.namespace_selector is not None:
            scope = namespace_selector(entity.namespace_selector)
        elif policy.namespace is not None:
            scope = Eq(NAMESPACE_LABEL, policy.namespace)
        selector = entity.selector
        if scope is not None and (
            selector is not None
            or entity.not_selector is not None
            or entity.namespace_selector is not None
        ):
            selector = scope if selector is None else And((scope, selector))
        self._selectors[key] = selector
        return selector

    def _ranges(self, nets: tuple[netaddr.IPNetwork, ...]) -> tuple[tuple[int, int, int], ...]:
        """(version, first, last) per net: integer compares instead of netaddr membership."""
        found = self._net_ranges.get(nets)
        if found is None:
            found = tuple((n.version, n.first, n.last) for n in nets)
            self._net_ranges[nets] = found
        return found

    def _in(self, address: netaddr.IPAddress, nets: tuple[netaddr.IPNetwork, ...]) -> bool:
        version, value = address.version, int(address)
        return any(v == version and lo <= value <= hi for v, lo, hi in self._ranges(nets))

    def _entity_matches(
        self,
        entity: EntityRule,
        policy: CalicoPolicy,
        address: netaddr.IPAddress,
        ep: _Endpoint | None,
        flow: Flow,
        destination: bool,
    ) -> bool:
        # Cheapest tests first; all of them must hold.
        if destination and (entity.ports or entity.not_ports):
            names: tuple[str, ...] = ()
            if ep is not None and any(p.name for p in (*entity.ports, *entity.not_ports)):
                names = ep.pod.port_names(flow.port, flow.protocol)
            if entity.ports and not any(p.matches(flow.port, names) for p in entity.ports):
                return False
            if any(p.matches(flow.port, names) for p in entity.not_ports):
                return False
        if entity.nets and not self._in(address, entity.nets):
            return False
        if entity.not_nets and self._in(address, entity.not_nets):
            return False
        selector = self._entity_selector(entity, policy)
        if selector is not None and (ep is None or not selector.evaluate(ep.labels)):
            return False
        return not (
            entity.not_selector is not None
            and ep is not None
            and entity.not_selector.evaluate(ep.labels)
        )

    def _rule_matches(
        self,
        rule: CalicoRule,
        policy: CalicoPolicy,
        flow: Flow,
        src: _Endpoint | None,
        dst: _Endpoint | None,
    ) -> bool:
        proto = PROTOCOL_NUMBERS[str(flow.protocol)]
        if rule.protocol is not None and rule.protocol != proto:
            return False
        if rule.not_protocol is not None and rule.not_protocol == proto:
            return False
        if rule.ip_version is not None and rule.ip_version != flow.src.address.version:
            return False
        return self._entity_matches(
            rule.destination, policy, flow.dst.address, dst, flow, destination=True
        ) and self._entity_matches(
            rule.source, policy, flow.src.address, src, flow, destination=False
        )

    def _side(
        self,
        local: _Endpoint | None,
        direction: str,
        flow: Flow,
        src: _Endpoint | None,
        dst: _Endpoint | None,
    ) -> SideDecision:
        if local is None:
            return SideDecision(direction, True, "not a Calico workload endpoint")
        calico_direction = _DIRECTIONS[direction]
        tier_default = {t.name: t.default_action for t in self.objects.tiers}
        for tier, policies in self._tiers(local, calico_direction):
            passed = False
            for policy in policies:
                for index, rule in enumerate(policy.rules(calico_direction)):
                    if not self._rule_matches(rule, policy, flow, src, dst):
                        continue
                    where = f"{policy.kind} {policy.key} {direction}[{index}]"
                    if rule.action == "Allow":
                        return SideDecision(direction, True, f"allowed by {where}", policy, index)
                    if rule.action == "Deny":
                        return SideDecision(direction, False, f"denied by {where}", policy, index)
                    if rule.action == "Pass":
                        passed = True
                        break
                if passed:
                    break
            if passed:
                continue
            if tier_default.get(tier, "Deny") == "Deny":
                names = ", ".join(p.key for p in policies)
                return SideDecision(
                    direction, False, f"end of tier {tier}: no rule of {names} matched"
                )
        return SideDecision(direction, True, "allowed by the namespace profile")

    # -- verdicts -------------------------------------------------------------------------

    def decide(self, flow: Flow) -> Decision:
        """Both sides' decisions, with reasons."""
        src = self._by_address.get(flow.src.address)
        dst = self._by_address.get(flow.dst.address)
        if src is not None and src is dst:
            same = SideDecision("egress", True, "traffic within one endpoint")
            return Decision(flow, same, SideDecision("ingress", True, same.reason))
        if (
            src is None
            and dst is not None
            and dst.pod.node_name is not None
            and self._hosts.get(flow.src.address) == dst.pod.node_name
        ):
            ingress = SideDecision("ingress", True, "from the endpoint's own host")
        else:
            ingress = self._side(dst, "ingress", flow, src, dst)
        return Decision(flow, self._side(src, "egress", flow, src, dst), ingress)

    def allowed(self, flow: Flow) -> bool:
        """Whether Calico lets ``flow`` through."""
        return self.decide(flow).allowed

    def pod_allowed(self, src: Pod, dst: Pod, protocol: ir.Protocol, port: int) -> bool:
        """Pod to pod over every address family both have (as ``Semantics.pod_allowed``)."""
        return pod_allowed_by(self.allowed, src, dst, protocol, port)
