"""Which security groups, holding which rules, for which pods.

ECS pools the rules of every group on an ENI, per direction, and an advanced group with no
matching rule denies. So a group holds the rules of **one direction only**: every pod joins
exactly two groups, one deciding its ingress and one its egress, and neither can open the
other's direction (an accept-all egress rule in an ingress group would open egress for a pod
isolated for egress). Pods of one isolation class (:class:`~npc.backends.grants.Grants`: the
same isolating policies and, for ingress, the same named-port resolution) share the group of
that direction; the pods a direction does not isolate share one open group for it, holding
one accept-all rule per address family.

An isolated direction lists what its policies allow as (CIDR, protocol, port range) rules:
grants are bucketed by (family, protocol, port range), the addresses of a bucket merged and
covered by the fewest CIDR-aligned blocks, and addresses already allowed by a wider bucket
(every protocol, or a containing port range) left out. ``except`` was cut out of the ipBlocks
as a CIDR difference (a ``drop`` rule would also block what another peer allows); all rules
are ``accept`` at priority 1. The pods ClusterNetworkPolicies apply to in a direction get a
group of their own for it instead, holding the tiers, their NetworkPolicies' rules and the
defaults as ``accept`` and ``drop`` rules at priorities 1 to 100
(:mod:`npc.backends.alibaba.tiers`).

Quotas (ECS "Security group limits"): 200 rules per group, 1,000 rules over the groups of one
ENI, 5 groups per ENI. A direction needing more than 200 rules fills several groups, all on
the same pods (pooled, they mean what one would); a pod whose ENI would then exceed 5 groups
or 1,000 rules is an error naming the pod, its groups and what to change.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from npc import ir, tiers
from npc.backends.alibaba.tiers import TierPlanner, levels, overflow_error
from npc.backends.grants import (
    FAMILIES,
    Grant,
    Grants,
    IsolationClass,
    Range,
    cidr_blocks,
    merge,
)
from npc.errors import Code, Diagnostic, Severity, UnsupportedError
from npc.resolve import bit_indices

__all__ = [
    "MAX_GROUPS_PER_ENI",
    "MAX_RULES_PER_ENI",
    "MAX_RULES_PER_GROUP",
    "Group",
    "Plan",
    "Rule",
    "build",
]

MAX_RULES_PER_GROUP = 200
MAX_RULES_PER_ENI = 1000
MAX_GROUPS_PER_ENI = 5
_BITS = {4: 32, 6: 128}


class Rule(NamedTuple):
    """One permission: traffic of ``family`` with ``protocol`` (None: every protocol; ICMP,
    ICMPv6 or GRE by name only in tier groups) on ``ports`` (None: every port) from/to the
    CIDR-aligned ``block``; the policies (``namespace/name``, or a tier rule's description)
    it comes from; its ``priority`` and ``action`` (``accept`` at 1 but in tier groups).

    A named tuple rather than a frozen dataclass: a plan at 10,000 pods makes some 75,000
    of them, and a tuple is made and hashed in C (a frozen dataclass sets each field
    through ``object.__setattr__``)."""

    family: int
    protocol: ir.Protocol | str | None
    ports: Range | None
    block: Range
    policies: tuple[str, ...]
    priority: int = 1
    action: str = "accept"


@dataclass(frozen=True, slots=True)
class Group:
    """A security group for the pods ``pods`` (a resolver bitset) in one direction;
    ``policies`` are the isolating ones (empty for the open group); ``cluster`` names the
    ClusterNetworkPolicies whose tiers its rules hold (:mod:`npc.backends.alibaba.tiers`)."""

    name: str
    direction: ir.Direction
    policies: tuple[ir.Policy, ...]
    pods: int
    rules: tuple[Rule, ...]
    named_ports: tuple[tuple[str, ir.Protocol, tuple[int, ...]], ...] = ()
    cluster: tuple[str, ...] = ()

    @property
    def open(self) -> bool:
        return not self.policies and not self.cluster


@dataclass(frozen=True, slots=True)
class Plan:
    """The groups, and for every pod (resolver index) its groups of each direction (one,
    or several when a direction needs more rules than one group holds)."""

    groups: tuple[Group, ...]
    ingress_of: Mapping[int, tuple[str, ...]]
    egress_of: Mapping[int, tuple[str, ...]]


def build(
    grants: Grants, *, drop_sctp: bool = False, cluster: tiers.ClusterPolicySet = tiers.EMPTY
) -> Plan:
    """Groups for every selectable pod of the snapshot, both directions.

    ``drop_sctp``: leave out the SCTP grants (``--unsupported=deny``); otherwise SCTP must
    have been refused before (ECS rules cannot name SCTP). ``cluster``: the
    ClusterNetworkPolicies; the pods they apply to in a direction get that direction's rules
    from :func:`_tier_groups` instead, with priorities."""
    resolver = grants.resolver
    families = _families(grants)
    planner = TierPlanner(cluster, grants, families, drop_sctp) if cluster else None
    groups: list[Group] = []
    of: dict[ir.Direction, dict[int, tuple[str, ...]]] = {d: {} for d in ir.DIRECTIONS}
    problems: list[Diagnostic] = []
    seen: _Seen = {}
    for direction in (ir.Direction.INGRESS, ir.Direction.EGRESS):
        subjects = planner.subjects(direction) if planner is not None else {}
        tiered = sum(1 << idx for idx in subjects)
        classes = grants.classes(direction)
        accepts: dict[int, tuple[Rule, ...]] = {}
        taken = {g.name for g in groups}  # kept as groups are added: no rescans
        covered = 0
        for number, cls in enumerate(classes):
            rules = _rules(grants, direction, cls, families, drop_sctp, seen)
            accepts[number] = rules
            covered |= cls.pods.bits
            bits = cls.pods.bits & ~tiered
            if not bits:
                continue
            name = _name(direction, cls, taken)
            for part, chunk in _chunks(name, rules):
                groups.append(Group(part, direction, cls.policies, bits, chunk, cls.named_ports))
                taken.add(part)
            names = tuple(part for part, _ in _chunks(name, rules))
            for idx in bit_indices(bits):
                of[direction][idx] = names
        rest = resolver.selectable & ~covered & ~tiered
        if rest:
            name = f"npc-{direction}-open"
            everything = tuple(Rule(v, None, None, (0, (1 << _BITS[v]) - 1), ()) for v in families)
            groups.append(Group(name, direction, (), rest, everything))
            taken.add(name)
            for idx in bit_indices(rest):
                of[direction][idx] = (name,)
        if planner is not None and subjects:
            problems.extend(
                _tier_groups(planner, grants, direction, classes, accepts, subjects, groups, of)
            )
    if problems:
        raise UnsupportedError(problems)
    plan = Plan(tuple(groups), of[ir.Direction.INGRESS], of[ir.Direction.EGRESS])
    check_quotas(plan, grants)
    return plan


def _chunks(name: str, rules: tuple[Rule, ...]) -> list[tuple[str, tuple[Rule, ...]]]:
    """Over one group's quota, the rules fill several groups on the same pods: ECS pools
    them, and a rule means the same in whichever group it is (priorities are pooled too)."""
    size = MAX_RULES_PER_GROUP
    chunks = [rules[i : i + size] for i in range(0, len(rules), size)] or [()]
    return [(name if i == 0 else f"{name}-{i + 1}", c) for i, c in enumerate(chunks)]


def _tier_groups(
    planner: TierPlanner,
    grants: Grants,
    direction: ir.Direction,
    classes: list[IsolationClass],
    accepts: Mapping[int, tuple[Rule, ...]],
    subjects: Mapping[int, tuple[tiers.ClusterPolicy, ...]],
    groups: list[Group],
    of: dict[ir.Direction, dict[int, tuple[str, ...]]],
) -> list[Diagnostic]:
    """Groups for the pods ClusterNetworkPolicies apply to in ``direction``: one per class
    of pods with the same policies, the same isolating NetworkPolicies (their class) and,
    for ingress, the same numbers for the policies' named ports; each holds the whole
    decision list (admin, NetworkPolicy, baseline, default) with its priorities. Returns the
    classes that need more priorities than ECS has, as errors."""
    pods = grants.resolver.pods
    class_of = {idx: n for n, cls in enumerate(classes) for idx in bit_indices(cls.pods.bits)}
    Key = tuple[tuple[str, ...], int, tuple[tuple[str, ir.Protocol, tuple[int, ...]], ...]]
    members: dict[Key, int] = {}
    for idx, policies in subjects.items():
        resolution: tuple[tuple[str, ir.Protocol, tuple[int, ...]], ...] = ()
        if direction is ir.Direction.INGRESS:
            resolution = tuple(
                (name, protocol, pods[idx].named_port_numbers(name, protocol))
                for name, protocol in planner.named_ports(policies, direction)
            )
        key = (tuple(p.name for p in policies), class_of.get(idx, -1), resolution)
        members[key] = members.get(key, 0) | (1 << idx)
    problems: list[Diagnostic] = []
    for key in sorted(members, key=repr):
        names, number, resolution = key
        bits = members[key]
        policies = subjects[bit_indices(bits)[0]]
        cls = classes[number] if number >= 0 else None
        isolated = None
        isolating = ""
        if cls is not None:
            isolated = [(r.family, r.protocol, r.ports, r.block) for r in accepts[number]]
            isolating = ", ".join(p.key for p in cls.policies)
        entries = planner.entries(direction, policies, isolated, isolating, resolution)
        found, overflow = levels(entries, deny_sctp=planner.denies_sctp(policies, direction))
        if overflow is not None:
            count = bin(bits).count("1")
            who = f"pod {pods[bit_indices(bits)[0]].key}" + (
                f" and {count - 1} more" if count > 1 else ""
            )
            problems.extend(
                overflow_error(overflow, entries, direction, who, len(found)).diagnostics
            )
            continue
        rules = tuple(
            Rule(v, protocol, ports, block, sources, level.priority, action)
            for level in found
            for action, (v, protocol, ports, block), sources in level.rules
        )
        digest = hashlib.sha256(repr(key).encode()).hexdigest()
        taken = {g.name for g in groups}
        name = next(
            f"npc-{direction}-tier-{digest[:size]}"
            for size in range(10, 65, 2)
            if f"npc-{direction}-tier-{digest[:size]}" not in taken
        )
        chunks = _chunks(name, rules)
        for part, chunk in chunks:
            groups.append(
                Group(
                    part,
                    direction,
                    cls.policies if cls is not None else (),
                    bits,
                    chunk,
                    cls.named_ports if cls is not None else (),
                    tuple(names),
                )
            )
        for idx in bit_indices(bits):
            of[direction][idx] = tuple(part for part, _ in chunks)
    return problems


def _families(grants: Grants) -> tuple[int, ...]:
    """Address families the snapshot's pods use (never none: an empty cluster gets IPv4)."""
    seen = {a.version for p in grants.snapshot.pods for a in p.ips}
    return tuple(v for v in FAMILIES if v in seen) or (4,)


def _name(direction: ir.Direction, cls: IsolationClass, taken: set[str]) -> str:
    """``npc-<direction>-<namespace>-<hash>``: stable for the same policies and named-port
    resolution, whatever else changes in the cluster."""
    key = (
        "|".join(p.key for p in cls.policies)
        + "|"
        + repr([(n, str(proto), nums) for n, proto, nums in cls.named_ports])
    )
    digest = hashlib.sha256(key.encode()).hexdigest()
    namespace = cls.policies[0].namespace
    for size in range(10, 65, 2):
        name = f"npc-{direction}-{namespace}-{digest[:size]}"
        if name not in taken:
            return name
    raise AssertionError("sha256 collision")  # pragma: no cover


def _ports(ranges: Iterable[Range]) -> list[Range]:
    """ECS port ranges: 1 to 65535 (port 0 is no port a connection uses)."""
    out = []
    for start, end in merge(ranges):
        if max(start, 1) <= end:
            out.append((max(start, 1), end))
    return out


def _subtract(ranges: list[Range], minus: list[Range]) -> list[Range]:
    """Sorted disjoint ``ranges`` minus sorted disjoint ``minus``."""
    out: list[Range] = []
    j = 0
    for first, hi in ranges:
        lo = first
        while j < len(minus) and minus[j][1] < lo:
            j += 1
        k = j
        while lo <= hi and k < len(minus) and minus[k][0] <= hi:
            mlo, mhi = minus[k]
            if mlo > lo:
                out.append((lo, mlo - 1))
            lo = max(lo, mhi + 1)
            k += 1
        if lo <= hi:
            out.append((lo, hi))
    return out


_Bucket = tuple[int, ir.Protocol | None, Range | None]
#: per compile: the buckets of a policy's grants (by the identity of the grants' tuple,
#: which :meth:`Grants.grants` shares between the classes it means the same for; the tuple
#: is kept with them, so its identity is not reused)
_Seen = dict[int, tuple[tuple[Grant, ...], dict[_Bucket, list[Range]]]]


def _buckets(
    found: tuple[Grant, ...], families: tuple[int, ...], drop_sctp: bool, seen: _Seen
) -> dict[_Bucket, list[Range]]:
    """The addresses ``found`` (one policy's grants) allows per (family, protocol, port
    range), merged; made once per grants tuple."""
    known = seen.get(id(found))
    if known is not None:
        return known[1]
    addresses: dict[_Bucket, list[Range]] = {}
    for grant in found:
        if grant.protocol is ir.Protocol.SCTP:
            if drop_sctp:
                continue
            raise AssertionError("SCTP reaches the Alibaba plan")  # refused before
        for v in FAMILIES:
            if grant.addresses is None:
                ranges = [(0, (1 << _BITS[v]) - 1)] if v in families else []
            else:
                ranges = [(h, h) for h in grant.addresses.hosts.get(v, ())]
                ranges.extend(grant.addresses.blocks.get(v, ()))
            if not ranges:
                continue
            if grant.protocol is None:
                keys: list[_Bucket] = [(v, None, None)]
            else:
                keys = [(v, grant.protocol, r) for r in _ports(grant.ports)]
            for key in keys:
                addresses.setdefault(key, []).extend(ranges)
    merged = {key: merge(ranges) for key, ranges in addresses.items()}
    seen[id(found)] = (found, merged)
    return merged


def _rules(
    grants: Grants,
    direction: ir.Direction,
    cls: IsolationClass,
    families: tuple[int, ...],
    drop_sctp: bool,
    seen: _Seen,
) -> tuple[Rule, ...]:
    parts: dict[_Bucket, list[list[Range]]] = {}
    sources: dict[_Bucket, list[str]] = {}
    for policy in cls.policies:
        buckets = _buckets(grants.grants(policy, direction, cls), families, drop_sctp, seen)
        for key, ranges in buckets.items():
            parts.setdefault(key, []).append(ranges)
            sources.setdefault(key, []).append(policy.key)
    merged = {  # one policy's ranges are merged already
        key: each[0] if len(each) == 1 else merge(r for ranges in each for r in ranges)
        for key, each in parts.items()
    }
    reduced: dict[_Bucket, list[Range]] = {}
    for key, found in merged.items():
        v, protocol, ports = key
        ranges = found
        if protocol is not None and ports is not None:
            wider = list(merged.get((v, None, None), []))
            for (v2, p2, r2), other in merged.items():
                if (
                    v2 == v
                    and p2 is protocol
                    and r2 is not None
                    and r2 != ports
                    and (r2[0] <= ports[0] and ports[1] <= r2[1])
                ):
                    wider.extend(other)
            if wider:
                ranges = _subtract(ranges, merge(wider))
        if ranges:
            reduced[key] = ranges
    rules = []
    for key in sorted(reduced, key=_bucket_order):
        v, protocol, ports = key
        names = tuple(sorted(sources[key]))
        for lo, hi in reduced[key]:
            if lo == hi:  # most ranges are one pod's address: its block, without a search
                rules.append(Rule(v, protocol, ports, (lo, hi), names))
                continue
            for block in cidr_blocks(lo, hi, _BITS[v]):
                rules.append(Rule(v, protocol, ports, block, names))
    return tuple(rules)


def _bucket_order(key: _Bucket) -> tuple[int, str, Range]:
    v, protocol, ports = key
    return (v, "" if protocol is None else str(protocol), ports or (0, 0))


# -- quotas ---------------------------------------------------------------------------------


def check_quotas(plan: Plan, grants: Grants) -> None:
    """Refuse what ECS would refuse (per ENI: 5 groups, 1,000 rules; a group never holds over
    200, the plan fills several): one error per set of groups too large for an ENI, naming
    its pods, the groups and what to change."""
    problems: list[Diagnostic] = []
    pods = grants.resolver.pods
    sizes = {g.name: len(g.rules) for g in plan.groups}
    policies = {g.name: g.policies for g in plan.groups}
    sharing: dict[tuple[str, ...], list[int]] = {}
    for idx in sorted(plan.ingress_of):
        sharing.setdefault((*plan.ingress_of[idx], *plan.egress_of[idx]), []).append(idx)
    for names, members in sharing.items():
        total = sum(sizes[n] for n in names)
        if total <= MAX_RULES_PER_ENI and len(names) <= MAX_GROUPS_PER_ENI:
            continue
        isolating = sorted({p.key for n in names for p in policies[n]})
        who = f"pod {pods[members[0]].key}" + (
            f" and {len(members) - 1} more" if len(members) > 1 else ""
        )
        problems.append(
            Diagnostic(
                Code.UNSUPPORTED,
                Severity.ERROR,
                f"{who}: an ENI would join {len(names)} security groups with {total} rules "
                f"({', '.join(names)}); ECS allows {MAX_GROUPS_PER_ENI} groups and "
                f"{MAX_RULES_PER_ENI} rules per ENI, {MAX_RULES_PER_GROUP} per group "
                "(target alibaba)",
                hint=f"allow fewer distinct peers or ports in {', '.join(isolating)}: each "
                "pod peer outside a shared CIDR block, and each port range, costs a rule",
                origin=policies[names[0]][0].origin if policies[names[0]] else None,
            )
        )
    if problems:
        raise UnsupportedError(problems)
