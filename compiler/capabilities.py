"""What a target can express, and what a set of policies needs.

Each backend declares a frozenset of :class:`Capability`. Before emitting, :func:`check` scans
the (unoptimized) IR for the features it uses, each with the policy and field path that uses
it, and refuses in one error listing *every* use the target cannot express. Dropping a port
restriction or an ``except`` would widen access, so there is no "warn and continue" here.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass

from npc import ir, tiers
from npc.errors import Code, Diagnostic, Path, Severity, UnsupportedError, format_path

__all__ = [
    "NETWORK_POLICY",
    "Capability",
    "FeatureUse",
    "check",
    "check_cluster",
    "feature_uses",
]


class Capability(enum.Enum):
    """A NetworkPolicy feature a target may or may not be able to express."""

    INGRESS = "ingress rules"
    EGRESS = "egress rules"
    POD_SELECTOR_PEERS = "podSelector peers"
    NAMESPACE_SELECTOR_PEERS = "namespaceSelector peers"
    IP_BLOCK = "ipBlock peers"
    IP_BLOCK_EXCEPT = "ipBlock except"
    IPV4 = "IPv4 addresses"
    IPV6 = "IPv6 addresses"
    TCP = "TCP"
    UDP = "UDP"
    SCTP = "SCTP"
    PORT_RANGES = "port ranges (endPort)"
    NAMED_PORTS = "named ports"
    ALL_PROTOCOLS = "rules without ports (every protocol, ICMP included)"
    CLUSTER_NETWORK_POLICY = (
        "ClusterNetworkPolicy (admin and baseline tiers, priorities, Deny and Pass rules)"
    )


#: Everything a NetworkPolicy can use: what a target that compiles every NetworkPolicy, and no
#: ClusterNetworkPolicy, declares. A target claims a new capability only by naming it.
NETWORK_POLICY: frozenset[Capability] = frozenset(
    c for c in Capability if c is not Capability.CLUSTER_NETWORK_POLICY
)


@dataclass(frozen=True, slots=True)
class FeatureUse:
    """One place where a policy uses a feature."""

    capability: Capability
    policy: ir.Policy
    path: Path


def _rule_uses(
    policy: ir.Policy, direction: str, index: int, rule: ir.Rule
) -> Iterator[FeatureUse]:
    base: Path = ("spec", direction, index)
    peer_field = ir.Direction(direction).peer_field
    if isinstance(rule.peers, tuple):
        for i, peer in enumerate(rule.peers):
            path: Path = (*base, peer_field, i)
            if isinstance(peer, ir.AddressPeer):
                yield FeatureUse(Capability.IP_BLOCK, policy, (*path, "ipBlock"))
                if peer.excepts:
                    yield FeatureUse(
                        Capability.IP_BLOCK_EXCEPT, policy, (*path, "ipBlock", "except")
                    )
                versions = {peer.cidr.version} if peer.cidr is not None else peer.addresses.versions
                for v in sorted(versions):
                    cap = Capability.IPV4 if v == 4 else Capability.IPV6
                    yield FeatureUse(cap, policy, (*path, "ipBlock", "cidr"))
            else:
                if isinstance(peer.namespaces, ir.LabelSelector):
                    yield FeatureUse(
                        Capability.NAMESPACE_SELECTOR_PEERS, policy, (*path, "namespaceSelector")
                    )
                if not peer.pods.is_everything or isinstance(peer.namespaces, ir.SameNamespace):
                    yield FeatureUse(Capability.POD_SELECTOR_PEERS, policy, (*path, "podSelector"))
    if isinstance(rule.ports, ir.AnyPort):
        yield FeatureUse(Capability.ALL_PROTOCOLS, policy, base)
        return
    for entry in rule.ports.entries:
        path = (*base, "ports")
        yield FeatureUse(Capability[entry.protocol.name], policy, path)
        if entry.named:
            yield FeatureUse(Capability.NAMED_PORTS, policy, path)
        if any(r.start != r.end and r != ir.ALL_PORTS for r in entry.ranges):
            yield FeatureUse(Capability.PORT_RANGES, policy, path)


def feature_uses(policies: ir.PolicySet) -> Iterator[FeatureUse]:
    """Every feature every policy uses, with the field path of the use."""
    for policy in policies:
        for direction in ("ingress", "egress"):
            rules = policy.rules(direction)
            if rules is None:
                continue
            cap = Capability.INGRESS if direction == "ingress" else Capability.EGRESS
            yield FeatureUse(cap, policy, ("spec", "policyTypes"))
            for i, rule in enumerate(rules):
                yield from _rule_uses(policy, direction, i, rule)


def check(policies: ir.PolicySet, capabilities: frozenset[Capability], target: str) -> None:
    """Raise :class:`UnsupportedError` listing every use of a feature ``target`` lacks."""
    if capabilities >= NETWORK_POLICY:
        return  # every feature a NetworkPolicy can use: nothing to look for (5,000 policies)
    problems: list[Diagnostic] = []
    seen: set[tuple[Capability, str, Path]] = set()
    for use in feature_uses(policies):
        if use.capability in capabilities:
            continue
        key = (use.capability, use.policy.key, use.path)
        if key in seen:
            continue
        seen.add(key)
        problems.append(
            Diagnostic(
                Code.UNSUPPORTED,
                Severity.ERROR,
                f"NetworkPolicy {use.policy.key}: target {target} cannot express "
                f"{use.capability.value}",
                format_path(use.path),
                None,
                "nothing was emitted: dropping it would allow traffic the policy denies",
                use.policy.origin.child(use.path) if use.policy.origin is not None else None,
            )
        )
    if problems:
        raise UnsupportedError(problems)


def _cluster_problem(
    policy: tiers.ClusterPolicy, target: str, what: str, path: Path, hint: str
) -> Diagnostic:
    return Diagnostic(
        Code.UNSUPPORTED,
        Severity.ERROR,
        f"ClusterNetworkPolicy {policy.name}: target {target} cannot express {what}",
        format_path(path),
        None,
        hint,
        policy.origin.child(path) if policy.origin is not None else None,
    )


def check_cluster(
    policies: tiers.ClusterPolicySet, capabilities: frozenset[Capability], target: str
) -> None:
    """Raise :class:`UnsupportedError` naming every ClusterNetworkPolicy ``target`` cannot
    express: all of them when it lacks :attr:`Capability.CLUSTER_NETWORK_POLICY` (a target opts
    in by naming it), and every ``domainNames`` peer in every target (DNS decides those at run
    time; no static address rule is equivalent), plus each protocol or port feature of a rule
    that the target lacks."""
    problems: list[Diagnostic] = []
    for policy in policies:
        if Capability.CLUSTER_NETWORK_POLICY not in capabilities:
            problems.append(
                _cluster_problem(
                    policy,
                    target,
                    Capability.CLUSTER_NETWORK_POLICY.value,
                    ("spec", "tier"),
                    "nothing was emitted: ignoring it would change what the cluster allows",
                )
            )
            continue
        for direction in ("ingress", "egress"):
            for i, rule in enumerate(policy.rules(direction)):
                problems.extend(
                    _cluster_rule_problems(policy, direction, i, rule, capabilities, target)
                )
    if problems:
        raise UnsupportedError(problems)


def _cluster_rule_problems(
    policy: tiers.ClusterPolicy,
    direction: str,
    index: int,
    rule: tiers.ClusterRule,
    capabilities: frozenset[Capability],
    target: str,
) -> Iterator[Diagnostic]:
    base: Path = ("spec", direction, index)
    peer_field = ir.Direction(direction).peer_field
    for i, peer in enumerate(rule.peers):
        if isinstance(peer, tiers.DomainNamesPeer):
            yield _cluster_problem(
                policy,
                target,
                "domainNames peers",
                (*base, peer_field),
                "domain names are resolved by DNS at run time, so no static rule is "
                "equivalent; use `networks` with the addresses, or a target with DNS-aware "
                "enforcement",
            )
        elif isinstance(peer, ir.AddressPeer):
            for v in sorted(peer.addresses.versions):
                cap = Capability.IPV4 if v == 4 else Capability.IPV6
                if cap not in capabilities:
                    yield _cluster_problem(
                        policy, target, cap.value, (*base, peer_field, i), "nothing was emitted"
                    )
    if isinstance(rule.ports, ir.PortSet):
        for entry in rule.ports.entries:
            needed = [Capability[entry.protocol.name]]
            if entry.named:
                needed.append(Capability.NAMED_PORTS)
            if any(r.start != r.end and r != ir.ALL_PORTS for r in entry.ranges):
                needed.append(Capability.PORT_RANGES)
            for cap in needed:
                if cap not in capabilities:
                    yield _cluster_problem(
                        policy, target, cap.value, (*base, "protocols"), "nothing was emitted"
                    )
