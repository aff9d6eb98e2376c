"""Egress isolation that leaves pods without DNS (kubernetes/website#38267, #54997;
aws/aws-network-policy-agent#230): a default-deny egress policy also stops name lookups,
and every connection by name then fails, far from the policy that caused it.

With a snapshot, each pod isolated for egress must be allowed (egress side, by the reference
semantics) to reach a DNS pod (label ``k8s-app=kube-dns``, which CoreDNS and kube-dns
deployments carry) on UDP port 53 (W608) and on TCP port 53 (I615: answers too large for UDP
are retried over TCP). Without DNS pods in the snapshot, or without a snapshot, a rule of an
isolating policy allowing port 53 to any peer counts; without a snapshot, the isolating
policies of a pod are taken to be those of its namespace that select every pod the policy
selects (a looser selector in the same namespace). Reported on every policy isolating an
affected pod; path ``spec.egress`` when the policy has egress rules, else
``spec.policyTypes``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from npc import ir, tiers
from npc.analysis.lint.finding import Finding
from npc.analysis.semantics import Semantics
from npc.errors import Code, Path, Severity
from npc.flows import Endpoint, Flow
from npc.snapshot import Pod, Snapshot

__all__ = ["DNS_LABEL", "check", "check_without_snapshot"]

#: The label of the cluster's DNS pods (CoreDNS and kube-dns manifests).
DNS_LABEL = ("k8s-app", "kube-dns")

_HINT = (
    "allow egress to the DNS pods on 53/UDP and 53/TCP, e.g. `- to: [{namespaceSelector: "
    "{matchLabels: {kubernetes.io/metadata.name: kube-system}}, podSelector: {matchLabels: "
    "{k8s-app: kube-dns}}}]` with `ports: [{port: 53, protocol: UDP}, {port: 53, protocol: "
    "TCP}]`"
)


def _path(policy: ir.Policy) -> Path:
    return ("spec", "egress") if policy.egress else ("spec", "policyTypes")


def _rules_allow(policies: Iterable[ir.Policy], protocol: ir.Protocol) -> bool:
    for policy in policies:
        for rule in policy.egress or ():
            if isinstance(rule.ports, ir.AnyPort) or rule.ports.matches(protocol, 53):
                return True
    return False


def _reaches(sem: Semantics, pod: Pod, dns: tuple[Pod, ...], protocol: ir.Protocol) -> bool:
    """Whether the pod's egress side lets it reach a DNS pod, or the Admin tier decides
    that before NetworkPolicy is consulted (then it is the tier's doing: W620)."""
    for target in dns:
        if target.key == pod.key:
            return True
        for v in sorted({a.version for a in pod.ips} & {a.version for a in target.ips}):
            flow = Flow(Endpoint.of_pod(pod, v), Endpoint.of_pod(target, v), protocol, 53)
            egress = sem.verdict(flow).egress
            if egress.allowed or egress.decided_by == "Admin":
                return True
    return False


def _finding(policy: ir.Policy, pods: list[str], udp: bool, to: str) -> Finding:
    shown = ", ".join(pods[:3]) + (f" and {len(pods) - 3} more" if len(pods) > 3 else "")
    who = f" ({shown})" if shown else ""
    if not udp:
        return Finding.at(
            Code.NO_DNS,
            policy,
            _path(policy),
            f"isolates pods for egress{who} with no way to reach DNS (port 53 {to}): every "
            "lookup by name fails",
            _HINT,
        )
    return Finding.at(
        Code.DNS_TCP_BLOCKED,
        policy,
        _path(policy),
        f"isolates pods for egress{who} that reach DNS over UDP but not over TCP (port 53 "
        f"{to}): answers too large for UDP fail",
        _HINT,
        Severity.INFO,
    )


def check(
    policies: ir.PolicySet,
    snapshot: Snapshot,
    cluster_policies: tiers.ClusterPolicySet = tiers.EMPTY,
) -> Iterator[Finding]:
    """W608 / I615 for the snapshot's pods (an Admin tier that decides DNS first, accepting
    or denying it, takes NetworkPolicy out of the question)."""
    if not any(p.egress is not None for p in policies):
        return
    sem = Semantics(policies, snapshot, cluster_policies)
    key, value = DNS_LABEL
    dns = tuple(p for p in snapshot.pods if p.labels.get(key) == value and not p.host_network)
    to = "to the DNS pods" if dns else "to any address"
    blamed: dict[str, tuple[ir.Policy, list[str], bool]] = {}
    for pod in snapshot.pods:
        isolating = sem.isolating(pod, "egress")
        if not isolating:
            continue
        if dns:
            udp = _reaches(sem, pod, dns, ir.Protocol.UDP)
            tcp = udp and _reaches(sem, pod, dns, ir.Protocol.TCP)
        else:
            udp = _rules_allow(isolating, ir.Protocol.UDP)
            tcp = udp and _rules_allow(isolating, ir.Protocol.TCP)
        if tcp:
            continue
        for policy in isolating:
            entry = blamed.setdefault(policy.key, (policy, [], True))
            entry[1].append(pod.key)
            if not udp:
                blamed[policy.key] = (policy, entry[1], False)
    for policy, pods, udp in blamed.values():
        yield _finding(policy, pods, udp, to)


def _covers(wide: ir.LabelSelector, narrow: ir.LabelSelector) -> bool:
    return set(wide.requirements) <= set(narrow.requirements)


def check_without_snapshot(policies: ir.PolicySet) -> Iterator[Finding]:
    """W608 / I615 from the policies alone."""
    for policy in policies:
        if policy.egress is None:
            continue
        isolating = [
            q
            for q in policies
            if q.namespace == policy.namespace
            and q.egress is not None
            and _covers(q.pod_selector, policy.pod_selector)
        ]
        udp = _rules_allow(isolating, ir.Protocol.UDP)
        if udp and _rules_allow(isolating, ir.Protocol.TCP):
            continue
        yield _finding(policy, [], udp, "to any address")
