"""ClusterNetworkPolicies that probably do not do what was meant (rules T1-T4 of
:mod:`npc.analysis.tier_semantics`; ``apis/v1alpha2/clusternetworkpolicy_types.go`` in
kubernetes-sigs/network-policy-api v0.2.0).

* W617: a rule that is never reached. Within a tier the first matching rule decides, and every
  action ends the tier's evaluation, so a rule is dead when an earlier rule of its policy, or
  a rule of a policy of the same tier with a lower ``priority`` value whose subject covers its
  subject, matches every connection it matches. Coverage is decided on the policies as
  written (as :mod:`.shadow` does for NetworkPolicy), so it holds for every cluster; policies
  of equal priority are not compared (their order is undefined upstream: W616). Path: the rule.
* W618: an Admin rule that makes NetworkPolicy rules irrelevant: it accepts or denies every
  connection with every pod (a ``namespaces: {}`` peer, no ``protocols``) for every pod a
  NetworkPolicy selects, and no earlier Admin rule that could apply to those pods passes.
  The NetworkPolicy's rules whose peers are all pods are then never consulted. Path: the
  NetworkPolicy's rule (with a snapshot, the pods it selects; without one, only subjects
  selecting every pod count).
* W619: ``Pass`` in the Baseline tier. It "passes evaluation to the next tier", and after
  Baseline comes the default, which allows: the rule is an Accept written as something else.
  Path: the rule's ``action``.
* W604 (as for a NetworkPolicy's podSelector): a subject that selects no pod of the snapshot.
  Path: ``spec.subject``.
* W620: a Deny that leaves pods no DNS: with a snapshot holding the DNS pods (label
  ``k8s-app=kube-dns``), the pods whose egress to every DNS pod on 53/UDP a tier rule denies
  (by the reference semantics, NetworkPolicy included). Path: the deciding rule.
"""

from __future__ import annotations

from collections.abc import Iterator

from npc import ir, tiers
from npc.analysis.lint.dns import DNS_LABEL
from npc.analysis.lint.finding import Finding
from npc.analysis.lint.shadow import peer_covers, ports_cover, selector_covers
from npc.analysis.semantics import Semantics
from npc.analysis.tier_semantics import TierJudge
from npc.errors import Code
from npc.flows import Endpoint, Flow
from npc.snapshot import Pod, Snapshot

__all__ = ["check"]


def _peer_covers(wide: tiers.ClusterPeer, narrow: tiers.ClusterPeer) -> bool:
    if isinstance(wide, ir.PodPeer | ir.AddressPeer) and isinstance(
        narrow, ir.PodPeer | ir.AddressPeer
    ):
        return peer_covers(wide, narrow)
    if isinstance(wide, tiers.NodesPeer) and isinstance(narrow, tiers.NodesPeer):
        return selector_covers(wide.nodes, narrow.nodes)
    if isinstance(wide, tiers.DomainNamesPeer) and isinstance(narrow, tiers.DomainNamesPeer):
        return set(narrow.names) <= set(wide.names)
    return False  # unknown peers: not compared


def _rule_covers(wide: tiers.ClusterRule, narrow: tiers.ClusterRule) -> bool:
    """Whether ``wide`` matches every connection ``narrow`` matches."""
    return all(any(_peer_covers(w, n) for w in wide.peers) for n in narrow.peers) and ports_cover(
        wide.ports, narrow.ports
    )


def _subject_covers(wide: tiers.Subject, narrow: tiers.Subject) -> bool:
    return selector_covers(wide.namespaces, narrow.namespaces) and selector_covers(
        wide.pods, narrow.pods
    )


def _rule_name(policy: tiers.ClusterPolicy, direction: str, index: int, action: bool = True) -> str:
    """``ingress[0] (tools-may-connect, Accept)``; without ``action``, ``ingress[0] (name)``."""
    rule = policy.rules(direction)[index]
    inside = [rule.name] if rule.name else []
    if action:
        inside.append(str(rule.action))
    return f"{direction}[{index}]" + (f" ({', '.join(inside)})" if inside else "")


def _never_reached(policies: tiers.ClusterPolicySet) -> Iterator[Finding]:
    """W617."""
    for policy in policies:
        earlier = [
            q
            for q in policies.tier(policy.tier)
            if q.priority < policy.priority and _subject_covers(q.subject, policy.subject)
        ]
        for direction in ir.DIRECTIONS:
            rules = policy.rules(direction)
            for i, rule in enumerate(rules):
                for j, other in enumerate(rules[:i]):
                    if _rule_covers(other, rule):
                        yield _unreached(policy, direction, i, _rule_name(policy, direction, j))
                        break
                else:
                    for q in earlier:
                        k = next(
                            (k for k, o in enumerate(q.rules(direction)) if _rule_covers(o, rule)),
                            None,
                        )
                        if k is not None:
                            where = (
                                f"ClusterNetworkPolicy {q.name} (priority {q.priority}, whose "
                                f"subject covers this one's) {_rule_name(q, direction, k)}"
                            )
                            yield _unreached(policy, direction, i, where, q)
                            break


def _unreached(
    policy: tiers.ClusterPolicy,
    direction: str,
    index: int,
    where: str,
    other: tiers.ClusterPolicy | None = None,
) -> Finding:
    rule = policy.rules(direction)[index]
    if other is None:
        hint = "move it before the rule that covers it if it is meant to decide, or remove it"
    else:
        hint = (
            f"give {policy.name} a lower priority value than {other.name} if this rule is meant "
            "to decide, or remove it"
        )
    return Finding.at(
        Code.TIER_RULE_NEVER_REACHED,
        policy,
        ("spec", direction, index),
        f"this {rule.action} rule is never reached: {where} matches every connection it "
        "matches, and is evaluated first",
        hint,
    )


def _baseline_pass(policies: tiers.ClusterPolicySet) -> Iterator[Finding]:
    """W619."""
    for policy in policies.tier(tiers.Tier.BASELINE):
        for direction in ir.DIRECTIONS:
            for i, rule in enumerate(policy.rules(direction)):
                if rule.action is tiers.Action.PASS:
                    yield Finding.at(
                        Code.BASELINE_PASS,
                        policy,
                        ("spec", direction, i, "action"),
                        "Pass in the Baseline tier hands the connection to the default, which "
                        "allows it: the same as Accept",
                        "write `action: Accept` to say so (or `Deny` if the connection should "
                        "be blocked)",
                    )


def _every_pod(peer: tiers.ClusterPeer) -> bool:
    return (
        isinstance(peer, ir.PodPeer)
        and isinstance(peer.namespaces, ir.LabelSelector)
        and peer.namespaces.is_everything
        and peer.pods.is_everything
    )


def _decides_every_pod(rule: tiers.ClusterRule) -> bool:
    return (
        rule.action is not tiers.Action.PASS
        and isinstance(rule.ports, ir.AnyPort)
        and any(_every_pod(p) for p in rule.peers)
    )


def _overrides(
    cluster: tiers.ClusterPolicySet,
    policies: ir.PolicySet,
    snapshot: Snapshot | None,
    judge: TierJudge | None,
) -> Iterator[Finding]:
    """W618."""
    admin = cluster.tier(tiers.Tier.ADMIN)
    if not admin:
        return
    by_policy: dict[str, list[Pod]] | None = None
    if snapshot is not None:
        sem = Semantics(policies, snapshot)
        by_policy = {}
        for pod in snapshot.pods:
            for selecting in sem.selecting(pod):
                by_policy.setdefault(selecting.key, []).append(pod)
    for policy in policies:
        selected: list[Pod] | None = None
        if by_policy is not None:
            selected = by_policy.get(policy.key)
            if not selected:
                continue
        for direction in ir.DIRECTIONS:
            own = policy.rules(direction)
            if not own:
                continue
            decider = _admin_decider(admin, direction, selected, judge)
            if decider is None:
                continue
            q, k = decider
            rule = q.rules(direction)[k]
            verb = "accepts" if rule.action is tiers.Action.ACCEPT else "denies"
            between = (
                "from any pod to the pods this policy selects"
                if direction is ir.Direction.INGRESS
                else "from the pods this policy selects to any pod"
            )
            for i, mine in enumerate(own):
                if isinstance(mine.peers, ir.AnyPeer) or not all(
                    isinstance(p, ir.PodPeer) for p in mine.peers
                ):
                    continue
                yield Finding.at(
                    Code.ADMIN_OVERRIDES_NETWORK_POLICY,
                    policy,
                    ("spec", direction.value, i),
                    f"never decides a connection: the Admin tier decides first, and "
                    f"ClusterNetworkPolicy {q.name} {_rule_name(q, direction, k, False)} {verb} "
                    f"every connection {between}, on every port",
                    "to let namespace owners decide, make that rule `action: Pass` (or narrow "
                    "its subject or peers); otherwise remove this rule",
                )


def _admin_decider(
    admin: tuple[tiers.ClusterPolicy, ...],
    direction: str,
    selected: list[Pod] | None,
    judge: TierJudge | None,
) -> tuple[tiers.ClusterPolicy, int] | None:
    """The first Admin rule that decides every pod connection of ``selected`` (every pod when
    None), if no Pass that may apply to them comes before it."""
    for q in admin:
        if selected is None or judge is None:
            touches = True
            covers = q.subject.namespaces.is_everything and q.subject.pods.is_everything
        else:
            subjects = [q in judge.subject_of(p) for p in selected]
            touches, covers = any(subjects), all(subjects)
        if not touches:
            continue
        for k, rule in enumerate(q.rules(direction)):
            if rule.action is tiers.Action.PASS:
                return None
            if covers and _decides_every_pod(rule):
                return q, k
    return None


def _empty_subjects(cluster: tiers.ClusterPolicySet, snapshot: Snapshot) -> Iterator[Finding]:
    """W604 for subjects."""
    if not snapshot.pods:
        return
    judge = TierJudge(cluster, snapshot)
    for policy in cluster:
        if not any(policy in judge.subject_of(p) for p in snapshot.pods):
            yield Finding.at(
                Code.SELECTS_NOTHING,
                policy,
                ("spec", "subject"),
                "the subject selects no pod of the snapshot (host-network pods are never "
                "subjects): this policy applies to nobody",
                "check the subject's selectors against the namespaces' and pods' labels",
            )


def _denies_dns(
    cluster: tiers.ClusterPolicySet, policies: ir.PolicySet, snapshot: Snapshot
) -> Iterator[Finding]:
    """W620."""
    key, value = DNS_LABEL
    dns = tuple(p for p in snapshot.pods if p.labels.get(key) == value and not p.host_network)
    if not dns:
        return
    sem = Semantics(policies, snapshot, cluster)
    judge = TierJudge(cluster, snapshot)
    dns_keys = {p.key for p in dns}
    blamed: dict[tuple[str, str, int], tuple[tiers.ClusterPolicy, list[str]]] = {}
    deniers = {p.name for p in cluster if any(r.action is tiers.Action.DENY for r in p.egress)}
    for pod in snapshot.pods:
        if pod.host_network or pod.key in dns_keys:
            continue
        if not any(p.name in deniers for p in judge.subject_of(pod)):
            continue  # no tier rule can deny it anything
        reached, deciders = False, []
        for target in dns:
            for v in sorted({a.version for a in pod.ips} & {a.version for a in target.ips}):
                flow = Flow(
                    Endpoint.of_pod(pod, v), Endpoint.of_pod(target, v), ir.Protocol.UDP, 53
                )
                side = sem.side(pod, "egress", flow.dst, flow)
                decision = {"Admin": side.admin, "Baseline": side.baseline}.get(side.decided_by)
                if side.allowed:
                    reached = True
                    break
                if decision is not None:
                    deciders.append(decision.match)
            if reached:
                break
        if reached or not deciders:
            continue  # a NetworkPolicy alone keeps it from DNS: W608
        ref = deciders[0]
        entry = blamed.setdefault((ref.policy.name, ref.direction, ref.index), (ref.policy, []))
        entry[1].append(pod.key)
    for (_, direction, index), (policy, pods) in blamed.items():
        shown = ", ".join(pods[:3]) + (f" and {len(pods) - 3} more" if len(pods) > 3 else "")
        yield Finding.at(
            Code.TIER_DENIES_DNS,
            policy,
            ("spec", direction, index),
            f"denies DNS (53/UDP to the DNS pods, {', '.join(p.key for p in dns[:2])}) to "
            f"{len(pods)} pod{'s' if len(pods) > 1 else ''} ({shown}): every lookup by name "
            "fails",
            f"accept egress to the DNS pods on 53/UDP and 53/TCP in an earlier rule of the "
            f"{policy.tier} tier, e.g. `- action: Accept` with `to: [{{pods: "
            "{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}, "
            "podSelector: {matchLabels: {k8s-app: kube-dns}}}}]` and `protocols: [{udp: "
            "{destinationPort: {number: 53}}}, {tcp: {destinationPort: {number: 53}}}]`",
        )


def check(
    cluster: tiers.ClusterPolicySet, policies: ir.PolicySet, snapshot: Snapshot | None
) -> Iterator[Finding]:
    """W617, W618, W619, and with a snapshot W604 (subjects) and W620."""
    if not cluster:
        return
    yield from _never_reached(cluster)
    judge = TierJudge(cluster, snapshot) if snapshot is not None else None
    yield from _overrides(cluster, policies, snapshot, judge)
    yield from _baseline_pass(cluster)
    if snapshot is not None:
        yield from _empty_subjects(cluster, snapshot)
        yield from _denies_dns(cluster, policies, snapshot)
