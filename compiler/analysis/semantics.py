"""Reference semantics: whether the Kubernetes NetworkPolicy spec allows a connection.

Written straight from the spec (``networking.k8s.io/v1`` API documentation and the
"Network Policies" concept page), independent of the optimizer and of every backend, so that
both can be judged against it. It answers for one flow at a time; :mod:`npc.analysis.reach` builds
matrices on top of it.

The rules, as implemented:

1. A connection from endpoint A to endpoint B on (protocol, port) is allowed iff the egress
   side allows it and the ingress side allows it.
2. Egress side: if A is not a pod selected by any policy that isolates egress, allowed.
   Otherwise some egress rule of some policy selecting A must admit B and the port.
   Ingress side: the same for B, with ingress rules admitting A. Policies are additive
   (a union of allows); there is no deny.
3. A policy selects the pods of its own namespace that match its podSelector.
4. Peers: ``podSelector`` alone means pods of the policy's namespace; ``namespaceSelector``
   alone, all pods of matching namespaces; both, matching pods in matching namespaces (AND);
   ``ipBlock`` matches any address in cidr minus except, pod IPs included; an absent or empty
   ``from``/``to`` matches everything.
5. Ports: absent or empty ``ports`` matches every protocol (ICMP too) and port; otherwise the
   protocol must be listed and the port in a range (``endPort`` inclusive) or equal to the
   destination pod's container port of that name with the same protocol. A named port never
   matches a destination that is not a pod.
6. hostNetwork pods are addressed by their node's IP. They are never selected by a policy's
   podSelector (no enforcement point sees their traffic as a pod's) and never matched by a pod
   peer; ipBlocks match them by address, like any non-pod address.
7. Traffic from a pod to itself is always allowed: it never leaves the pod's network
   namespace, so no enforcement point on the node can see it.
8. Traffic between a pod and the node it runs on is always allowed, in both directions: the
   spec's "traffic to and from the node where a Pod is running is always allowed, regardless
   of the IP address of the Pod or the node", and "the only allowed connections into the pod
   are those from the pod's node and those allowed by the ingress list". The node is any
   address of the pod's Node object in the snapshot, or of a hostNetwork pod scheduled on
   that node (hostNetwork pods are addressed by their node's IP); a pod's node is its
   ``spec.nodeName``. Nodes other than the pod's own are matched like any other address.
9. ClusterNetworkPolicy tiers (:mod:`npc.analysis.tier_semantics`, rules T1-T4) wrap rule 2
   on each side: the Admin tier decides first (Accept or Deny is final, Pass hands on); then
   NetworkPolicy decides for the pods it isolates; then the Baseline tier; then the flow is
   allowed. Rules 7 and 8 hold whatever the tiers say (npc's documented choice: the traffic
   of a pod with itself and with its own node never reaches a policy's enforcement point).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import netaddr

from npc import ir, tiers
from npc.analysis.tier_semantics import TierDecision, TierJudge
from npc.flows import Endpoint, Flow, node_addresses, pod_allowed_by, ports_match
from npc.snapshot import Pod, Snapshot

__all__ = ["DirectionVerdict", "RuleRef", "Semantics", "Verdict"]


@dataclass(frozen=True, slots=True)
class RuleRef:
    """A rule, named by its policy, direction and index."""

    policy: ir.Policy
    direction: str
    index: int
    rule: ir.Rule


@dataclass(frozen=True, slots=True)
class DirectionVerdict:
    """One side of a verdict: which policies isolate the pod, and which rules admit.

    ``own_node`` is true when the other end is the pod's own node (rule 8: always allowed,
    whatever isolates the pod). ``admin`` and ``baseline`` are what those tiers decided
    (rule 9): None when no rule matched; a ``Pass`` there handed the flow on."""

    direction: str
    isolating: tuple[ir.Policy, ...] = ()
    admitted_by: tuple[RuleRef, ...] = ()
    own_node: bool = False
    admin: TierDecision | None = None
    baseline: TierDecision | None = None

    @property
    def isolated(self) -> bool:
        return bool(self.isolating)

    @property
    def decided_by(self) -> str:
        """Who decided this side: ``own node``, ``Admin``, ``NetworkPolicy``, ``Baseline`` or
        ``default`` (nothing applied: allowed)."""
        if self.own_node:
            return "own node"
        if self.admin is not None and self.admin.action is not tiers.Action.PASS:
            return "Admin"
        if self.isolating:
            return "NetworkPolicy"
        if self.baseline is not None and self.baseline.action is not tiers.Action.PASS:
            return "Baseline"
        return "default"

    @property
    def allowed(self) -> bool:
        decider = self.decided_by
        if decider == "Admin":
            return self.admin is not None and self.admin.action is tiers.Action.ACCEPT
        if decider == "NetworkPolicy":
            return bool(self.admitted_by)
        if decider == "Baseline":
            return self.baseline is not None and self.baseline.action is tiers.Action.ACCEPT
        return True


@dataclass(frozen=True, slots=True)
class Verdict:
    flow: Flow
    egress: DirectionVerdict
    ingress: DirectionVerdict
    same_pod: bool = False

    @property
    def allowed(self) -> bool:
        return self.same_pod or (self.egress.allowed and self.ingress.allowed)


@dataclass(slots=True)
class Semantics:
    """The oracle for one set of policies over one snapshot.

    Caches which policies select which pod; otherwise stateless. ``cluster_policies`` adds
    the admin and baseline tiers (rule 9)."""

    policies: ir.PolicySet
    snapshot: Snapshot
    cluster_policies: tiers.ClusterPolicySet = tiers.EMPTY
    _judge: TierJudge | None = field(default=None, repr=False)
    _by_namespace: dict[str, list[ir.Policy]] = field(default_factory=dict, repr=False)
    _selecting: dict[tuple[str, str], tuple[ir.Policy, ...]] = field(
        default_factory=dict, repr=False
    )
    _node_addresses: dict[netaddr.IPAddress, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for p in self.policies:
            self._by_namespace.setdefault(p.namespace, []).append(p)
        self._node_addresses.update(node_addresses(self.snapshot))
        if self.cluster_policies:
            self._judge = TierJudge(self.cluster_policies, self.snapshot)

    # -- nodes --------------------------------------------------------------------------

    def node_of(self, endpoint: Endpoint) -> str | None:
        """The node whose own address ``endpoint`` is (None for pods and other addresses)."""
        if endpoint.pod is not None:
            return None
        return self._node_addresses.get(endpoint.address)

    def own_node(self, pod: Pod, other: Endpoint) -> bool:
        """Whether ``other`` is the node ``pod`` runs on (rule 8)."""
        return pod.node_name is not None and self.node_of(other) == pod.node_name

    # -- selection ----------------------------------------------------------------------

    def selecting(self, pod: Pod) -> tuple[ir.Policy, ...]:
        """Policies whose podSelector selects ``pod`` (rule 3; none for hostNetwork pods)."""
        key = (pod.namespace, pod.name)
        found = self._selecting.get(key)
        if found is None:
            if pod.host_network:
                found = ()
            else:
                found = tuple(
                    p
                    for p in self._by_namespace.get(pod.namespace, ())
                    if p.pod_selector.matches(pod.labels)
                )
            self._selecting[key] = found
        return found

    def isolating(self, pod: Pod, direction: str) -> tuple[ir.Policy, ...]:
        """Policies that select ``pod`` and isolate it in ``direction``."""
        return tuple(p for p in self.selecting(pod) if p.rules(direction) is not None)

    # -- matching -----------------------------------------------------------------------

    def peer_matches(self, policy: ir.Policy, peer: ir.Peer, other: Endpoint) -> bool:
        """Whether ``peer`` of ``policy`` matches the endpoint on the other side (rule 4)."""
        if isinstance(peer, ir.AddressPeer):
            return peer.addresses.contains(other.address)
        pod = other.pod
        if pod is None:
            return False
        if isinstance(peer.namespaces, ir.SameNamespace):
            if pod.namespace != policy.namespace:
                return False
        elif not peer.namespaces.matches(self.snapshot.namespace_labels(pod.namespace)):
            return False
        return peer.pods.matches(pod.labels)

    def peers_match(self, policy: ir.Policy, peers: ir.Peers, other: Endpoint) -> bool:
        if isinstance(peers, ir.AnyPeer):
            return True
        return any(self.peer_matches(policy, p, other) for p in peers)

    @staticmethod
    def ports_match(ports: ir.Ports, flow: Flow) -> bool:
        """Rule 5; named ports resolve against the destination pod."""
        return ports_match(ports, flow)

    def _admitting(
        self, policies: tuple[ir.Policy, ...], direction: str, other: Endpoint, flow: Flow
    ) -> Iterator[RuleRef]:
        for policy in policies:
            for i, rule in enumerate(policy.rules(direction) or ()):
                if self.ports_match(rule.ports, flow) and self.peers_match(
                    policy, rule.peers, other
                ):
                    yield RuleRef(policy, direction, i, rule)

    def _side(
        self, pod: Pod | None, direction: str, other: Endpoint, flow: Flow
    ) -> DirectionVerdict:
        if pod is None:
            return DirectionVerdict(direction)
        own = self.own_node(pod, other)
        admin = baseline = None
        if self._judge is not None and not own:
            admin = self._judge.decide(tiers.Tier.ADMIN, pod, direction, other, flow)
            if admin is not None and admin.action is not tiers.Action.PASS:
                return DirectionVerdict(direction, admin=admin)
        isolating = self.isolating(pod, direction)
        if not isolating:
            if self._judge is not None and not own:
                baseline = self._judge.decide(tiers.Tier.BASELINE, pod, direction, other, flow)
            return DirectionVerdict(direction, own_node=own, admin=admin, baseline=baseline)
        return DirectionVerdict(
            direction,
            isolating,
            tuple(self._admitting(isolating, direction, other, flow)),
            own,
            admin,
        )

    # -- verdicts -----------------------------------------------------------------------

    def side(
        self, pod: Pod | None, direction: str, other: Endpoint, flow: Flow
    ) -> DirectionVerdict:
        """One side of a flow's verdict: the egress side of its source pod or the ingress
        side of its destination pod (``other`` is the far end); None for ``pod`` is a side no
        policy applies to."""
        return self._side(pod, direction, other, flow)

    def verdict(self, flow: Flow) -> Verdict:
        """The full verdict with its reasons (every isolating policy, every admitting rule)."""
        same = (
            flow.src.pod is not None
            and flow.dst.pod is not None
            and flow.src.pod.key == flow.dst.pod.key
        )
        egress = self._side(flow.src.pod, "egress", flow.dst, flow)
        ingress = self._side(flow.dst.pod, "ingress", flow.src, flow)
        return Verdict(flow, egress, ingress, same)

    def allowed(self, flow: Flow) -> bool:
        """Whether the spec allows ``flow`` (short-circuits; see :meth:`verdict` for why)."""
        src, dst = flow.src.pod, flow.dst.pod
        if src is not None and dst is not None and src.key == dst.key:
            return True
        return self._side_allows(src, "egress", flow.dst, flow) and self._side_allows(
            dst, "ingress", flow.src, flow
        )

    def _side_allows(self, pod: Pod | None, direction: str, other: Endpoint, flow: Flow) -> bool:
        if pod is None:
            return True
        if self._judge is not None:
            return self._side(pod, direction, other, flow).allowed
        isolating = self.isolating(pod, direction)
        if not isolating or self.own_node(pod, other):
            return True
        return next(self._admitting(isolating, direction, other, flow), None) is not None

    def pod_allowed(self, src: Pod, dst: Pod, protocol: ir.Protocol, port: int) -> bool:
        """Pod to pod, see :func:`pod_allowed_by`."""
        return pod_allowed_by(self.allowed, src, dst, protocol, port)
