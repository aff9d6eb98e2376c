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
are ``accept`` at priority 1.

Quotas (ECS "Security group limits"): 200 rules per group, 1,000 rules over the groups of one
ENI, 5 groups per ENI. A direction needing more than 200 rules fills several groups, all on
the same pods (pooled, they mean what one would); a pod whose ENI would then exceed 5 groups
or 1,000 rules is an error naming the pod, its groups and what to change.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from npc import ir
from npc.backends.grants import FAMILIES, Grants, IsolationClass, Range, cidr_blocks, merge
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


@dataclass(frozen=True, slots=True)
class Rule:
    """One ``accept`` permission: traffic of ``family`` with ``protocol`` (None: every
    protocol) on ``ports`` (None: every port) from/to the CIDR-aligned ``block``; the
    NetworkPolicies (``namespace/name``) that allow it."""

    family: int
    protocol: ir.Protocol | None
    ports: Range | None
    block: Range
    policies: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Group:
    """A security group for the pods ``pods`` (a resolver bitset) in one direction;
    ``policies`` are the isolating ones (empty for the open group)."""

    name: str
    direction: ir.Direction
    policies: tuple[ir.Policy, ...]
    pods: int
    rules: tuple[Rule, ...]
    named_ports: tuple[tuple[str, ir.Protocol, tuple[int, ...]], ...] = ()

    @property
    def open(self) -> bool:
        return not self.policies


@dataclass(frozen=True, slots=True)
class Plan:
    """The groups, and for every pod (resolver index) its groups of each direction (one,
    or several when a direction needs more rules than one group holds)."""

    groups: tuple[Group, ...]
    ingress_of: Mapping[int, tuple[str, ...]]
    egress_of: Mapping[int, tuple[str, ...]]


def build(grants: Grants, *, drop_sctp: bool = False) -> Plan:
    """Groups for every selectable pod of the snapshot, both directions.

    ``drop_sctp``: leave out the SCTP grants (``--unsupported=deny``); otherwise SCTP must
    have been refused before (ECS rules cannot name SCTP)."""
    resolver = grants.resolver
    families = _families(grants)
    groups: list[Group] = []
    taken: set[str] = set()  # the names in `groups` (kept as they are added: no rescans)
    of: dict[ir.Direction, dict[int, tuple[str, ...]]] = {d: {} for d in ir.DIRECTIONS}
    for direction in (ir.Direction.INGRESS, ir.Direction.EGRESS):
        covered = 0
        for cls in grants.classes(direction):
            name = _name(direction, cls, taken)
            rules = _rules(grants, direction, cls, families, drop_sctp)
            # Over one group's quota, the rules fill several groups on the same pods: ECS
            # pools them, and accept rules mean the same in whichever group they are.
            size = MAX_RULES_PER_GROUP
            chunks = [rules[i : i + size] for i in range(0, len(rules), size)] or [()]
            names = tuple(name if i == 0 else f"{name}-{i + 1}" for i in range(len(chunks)))
            for part, chunk in zip(names, chunks, strict=True):
                groups.append(
                    Group(part, direction, cls.policies, cls.pods.bits, chunk, cls.named_ports)
                )
                taken.add(part)
            for idx in bit_indices(cls.pods.bits):
                of[direction][idx] = names
            covered |= cls.pods.bits
        rest = resolver.selectable & ~covered
        if rest:
            name = f"npc-{direction}-open"
            everything = tuple(Rule(v, None, None, (0, (1 << _BITS[v]) - 1), ()) for v in families)
            groups.append(Group(name, direction, (), rest, everything))
            taken.add(name)
            for idx in bit_indices(rest):
                of[direction][idx] = (name,)
    plan = Plan(tuple(groups), of[ir.Direction.INGRESS], of[ir.Direction.EGRESS])
    check_quotas(plan, grants)
    return plan


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


def _rules(
    grants: Grants,
    direction: ir.Direction,
    cls: IsolationClass,
    families: tuple[int, ...],
    drop_sctp: bool,
) -> tuple[Rule, ...]:
    addresses: dict[_Bucket, list[Range]] = {}
    sources: dict[_Bucket, set[str]] = {}
    for policy in cls.policies:
        for grant in grants.grants(policy, direction, cls):
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
                    sources.setdefault(key, set()).add(policy.key)
    merged = {key: merge(ranges) for key, ranges in addresses.items()}
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
            ranges = _subtract(ranges, merge(wider))
        if ranges:
            reduced[key] = ranges
    rules = []
    for key in sorted(reduced, key=_bucket_order):
        v, protocol, ports = key
        for lo, hi in reduced[key]:
            for block in cidr_blocks(lo, hi, _BITS[v]):
                rules.append(Rule(v, protocol, ports, block, tuple(sorted(sources[key]))))
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
