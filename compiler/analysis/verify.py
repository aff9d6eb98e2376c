"""``npc verify``: does a ruleset do what the policies say, flow by flow?

A ruleset of any target (npc's output or anyone else's) is read by that target's judge
(:mod:`npc.rulesets`, loaded through the registry) and asked about every flow of a
:class:`~npc.analysis.flowspace.FlowSpace`; each verdict is compared with the reference
semantics (:class:`~npc.analysis.reach.Reach`, which agrees with
:class:`~npc.analysis.semantics.Semantics` pair by pair). Every flow on which they differ is
a :class:`Difference`, with the rule the judge says decided it.

With a node, the ruleset is one node's: it enforces the egress of the pods scheduled there
and the ingress of the pods scheduled there, so a flow between a local pod and a remote one
is compared with the spec's verdict of the local side only (the remote node judges the
other side), and flows between two remote pods are not that node's to judge.

Cost: pods (and outside addresses) are grouped where neither the spec's classes nor the
judge's own :meth:`~npc.rulesets.base.Partitioned.key` tell them apart (without a key,
every pod is its own group: a doctored set element can single out one pod), and the judge
is asked a row at a time, one source group towards every destination group
(:class:`~npc.rulesets.base.Batched`, exact), compared with the spec's row by one XOR
(:mod:`.verify_rows`). ``exhaustive=True`` asks every flow alone instead, the reference the
grouped check is tested against. ``bench/verify_bench.py`` measures it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from npc import ir, tiers
from npc.analysis.expectation import Expectation
from npc.analysis.flowspace import FlowSpace, Outside
from npc.analysis.verify_rows import Found, Questions, outside_check, pod_row_check, spread
from npc.flows import Endpoint, Flow, Probe
from npc.rulesets.base import Decision, Judge, Partitioned
from npc.snapshot import Snapshot

__all__ = ["Difference", "VerifyReport", "verify"]


@dataclass(frozen=True, slots=True, order=True)
class Difference:
    """One flow on which the ruleset and the spec disagree.

    ``src``/``dst`` are ``namespace/pod`` or an address; ``rule`` is the judge's deciding
    rule (``file:line``), None when a default decided; ``note`` the judge's words."""

    src: str
    dst: str
    protocol: str
    port: int
    spec: bool
    ruleset: bool
    rule: str | None = None
    note: str = field(default="", compare=False)

    @property
    def widening(self) -> bool:
        """The ruleset allows what the spec denies (the dangerous kind)."""
        return self.ruleset and not self.spec

    def to_json(self) -> dict[str, Any]:
        return {
            "from": self.src,
            "to": self.dst,
            "protocol": self.protocol,
            "port": self.port,
            "spec": self.spec,
            "ruleset": self.ruleset,
            "rule": self.rule,
        }


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """What :func:`verify` found: every difference (sorted), and what was checked."""

    target: str
    differences: tuple[Difference, ...]
    pod_flows: int
    outside_flows: int
    probes: tuple[Probe, ...]
    outside: tuple[str, ...]
    node: str | None = None
    #: How many flows the judge was asked (fewer than checked when it groups endpoints).
    asked: int = 0

    @property
    def equivalent(self) -> bool:
        return not self.differences

    def to_json(self) -> dict[str, Any]:
        """Exactly ``{"equivalent": bool, "differences": [...]}``."""
        return {
            "equivalent": self.equivalent,
            "differences": [d.to_json() for d in self.differences],
        }


class _Asker:
    """Asks the judge, remembering the decision of each flow it had to explain."""

    def __init__(self, judge: Judge) -> None:
        self.judge = judge
        self.flows = 0

    def flow(self, flow: Flow) -> Decision:
        self.flows += 1
        return self.judge.decide(flow)


def _difference(
    src: str, dst: str, probe: Probe, spec: bool, ruleset: bool, decision: Decision | None
) -> Difference:
    """A difference as reported, naming the judge's deciding rule."""
    return Difference(
        src,
        dst,
        str(probe.protocol),
        probe.port,
        spec,
        ruleset,
        decision.rule if decision else None,
        decision.note if decision else "the endpoints share no address family",
    )


def _groups(
    space: FlowSpace, expectation: Expectation, key: Callable[[Endpoint], object] | None
) -> list[list[int]]:
    """Pods neither the spec nor the judge tells apart (every pod alone without ``key``)."""
    if key is None:
        return [[i] for i in range(len(space.pods))]
    side_classes = [classes for _, classes in expectation.sides]
    found: dict[tuple[object, ...], list[int]] = {}
    for i, ends in enumerate(space.endpoints):
        ident = (
            expectation.full_classes[i],
            *(classes[i] for classes in side_classes),
            space.local[i],
            tuple((v, key(e)) for v, e in sorted(ends.items())),
        )
        found.setdefault(ident, []).append(i)
    return list(found.values())


def _spec_rows(
    space: FlowSpace, expectation: Expectation, groups: list[list[int]]
) -> Callable[[int, Probe], int]:
    """For :func:`~npc.analysis.verify_rows.pod_row_check`: (group a, probe) -> the groups
    the spec lets a's pods reach (with a node, the local side's verdict where one end is
    remote), from the class matrices, one row per class and probe."""
    n = len(groups)
    everyone = (1 << n) - 1
    reps = [g[0] for g in groups]
    local_groups = sum(1 << b for b, i in enumerate(reps) if space.local[i])
    kinds = [(expectation.full, expectation.full_classes), *expectation.sides]

    # Only some groups' bits of a kind's row are used (with a node: the full row's and the
    # ingress side's towards local groups, the egress side's towards remote ones), so each
    # kind spreads over its classes holding such a group, its members cut to them.
    masks = (
        [everyone] if len(kinds) == 1 else [local_groups, everyone & ~local_groups, local_groups]
    )

    def members(classes: list[int], count: int, mask: int) -> tuple[list[int], int]:
        found = [0] * count
        for b, i in enumerate(reps):
            if mask >> b & 1:
                found[classes[i]] |= 1 << b
        return found, sum(1 << c for c, bits in enumerate(found) if bits)

    spreads = [
        members(classes, len(reach.classes), mask)
        for (reach, classes), mask in zip(kinds, masks, strict=True)
    ]
    cache: dict[tuple[int, int, Probe], int] = {}

    def spread_of(kind: int, i: int, probe: Probe) -> int:
        reach, classes = kinds[kind]
        c = classes[i]
        found = cache.get((kind, c, probe))
        if found is None:
            row = reach.matrix(probe).rows[c]
            found_members, relevant = spreads[kind]
            found = spread(row, found_members, masks[kind], relevant)
            cache[kind, c, probe] = found
        return found

    def row(a: int, probe: Probe) -> int:
        i = reps[a]
        if len(kinds) == 1:
            return spread_of(0, i, probe)
        if space.local[i]:  # local to local: both sides here; to remote: egress only
            return (spread_of(0, i, probe) & local_groups) | (
                spread_of(1, i, probe) & ~local_groups
            )
        return spread_of(2, i, probe) & local_groups  # remote to local: ingress only

    return row


def verify(
    policies: ir.PolicySet,
    snapshot: Snapshot,
    judge: Judge,
    *,
    target: str = "",
    node: str | None = None,
    probes: tuple[Probe, ...] | None = None,
    cluster_policies: tiers.ClusterPolicySet = tiers.EMPTY,
    exhaustive: bool = False,
) -> VerifyReport:
    """Compare ``judge`` with the spec on every flow of the snapshot (see the module doc);
    ``cluster_policies`` adds the admin and baseline tiers to the spec. ``exhaustive``: ask
    the judge every flow one at a time, grouping nothing (slow; the reference the grouped
    check is tested against)."""
    space = FlowSpace(
        snapshot, (policies,), node=node, probes=probes, cluster_sets=(cluster_policies,)
    )
    expectation = Expectation(space, policies, cluster_policies)
    if exhaustive:
        return _one_by_one(space, expectation, judge, target)
    questions = Questions(judge)
    key = judge.key if isinstance(judge, Partitioned) else None
    groups = _groups(space, expectation, key)
    raw: list[Found] = []
    covered = pod_row_check(space, groups, _spec_rows(space, expectation, groups), questions, raw)
    found = [_difference(*one) for one in raw]
    if cluster_policies:
        # The row check's outside spec (OutsideSpec) is NetworkPolicy's alone: with tiers the
        # oracle decides each outside flow (grouped as the spec and the judge allow).
        outside_covered, asked = _outside_one_by_one(space, expectation, judge, key, found)
    else:
        pod_groups, outside = _outside_groups(space, expectation, key)
        outside_raw: list[Found] = []
        outside_covered = outside_check(
            space,
            pod_groups,
            [expectation.full_classes[g[0]] for g in pod_groups],
            outside,
            expectation.semantics,
            questions,
            outside_raw,
        )
        found.extend(_difference(*one) for one in outside_raw)
        asked = 0
    return _report(space, target, found, covered, outside_covered, questions.asked + asked)


def _outside_groups(
    space: FlowSpace, expectation: Expectation, key: Callable[[Endpoint], object] | None
) -> tuple[list[list[int]], list[list[Outside]]]:
    """Local pods (not hostNetwork) by spec class and judge key, outside addresses by the
    ipBlock spans holding them and judge key (each alone without a key)."""
    pods, endpoints, local = space.pods, space.endpoints, space.local
    groups: dict[tuple[object, ...], list[int]] = {}
    for index, pod in enumerate(pods):
        if local[index] and not pod.host_network:
            ends = endpoints[index]
            ident = tuple((v, key(e) if key else index) for v, e in sorted(ends.items()))
            groups.setdefault((expectation.full_classes[index], ident), []).append(index)
    classes: dict[tuple[object, ...], list[Outside]] = {}
    for outside in space.outside:
        address = outside.endpoint.address
        where = (expectation.outside_class(outside), key(outside.endpoint) if key else address)
        classes.setdefault(where, []).append(outside)
    return list(groups.values()), list(classes.values())


def _one_by_one(
    space: FlowSpace,
    expectation: Expectation,
    judge: Judge,
    target: str,
) -> VerifyReport:
    """Every flow asked alone, every pod and address its own group."""
    found: list[Difference] = []
    pods, endpoints, local = space.pods, space.endpoints, space.local
    key = None
    groups = _groups(space, expectation, key)
    families = [tuple(sorted(endpoints[g[0]].items())) for g in groups]
    local_groups = [a for a, g in enumerate(groups) if local[g[0]]]
    every_group = range(len(groups))
    decide = judge.decide
    asked = covered = 0
    for probe in space.probes:
        protocol, port = probe.protocol, probe.port
        row_of = expectation.row_of(probe)
        for a in every_group:
            members = groups[a]
            i = members[0]
            spec_of = row_of(i)
            mine = families[a]
            for b in every_group if local[i] else local_groups:
                others = groups[b]
                if a == b:
                    if len(members) < 2:
                        continue
                    j = members[1]
                else:
                    j = others[0]
                covered += len(members) * len(others) - (len(members) if a == b else 0)
                theirs = endpoints[j]
                decision: Decision | None = None
                allowed = False
                for version, src in mine:
                    dst = theirs.get(version)
                    if dst is None:
                        continue
                    asked += 1
                    decision = decide(Flow(src, dst, protocol, port))
                    if decision.allowed:
                        allowed = True
                        break
                spec = spec_of(j)
                if spec == allowed:
                    continue
                if not allowed:  # the first denying family's decision
                    decision = next(
                        (
                            decide(Flow(e, theirs[v], protocol, port))
                            for v, e in mine
                            if v in theirs
                        ),
                        None,
                    )
                for i2 in members:
                    for j2 in others:
                        if i2 != j2:
                            found.append(
                                _difference(
                                    pods[i2].key, pods[j2].key, probe, spec, allowed, decision
                                )
                            )
    outside_covered, outside_asked = _outside_one_by_one(space, expectation, judge, None, found)
    return _report(space, target, found, covered, outside_covered, asked + outside_asked)


def _report(
    space: FlowSpace,
    target: str,
    found: list[Difference],
    pod_flows: int,
    outside_flows: int,
    asked: int,
) -> VerifyReport:
    return VerifyReport(
        target,
        tuple(sorted(found)),
        pod_flows,
        outside_flows,
        space.probes,
        tuple(str(o.endpoint) for o in space.outside),
        space.node,
        asked,
    )


def _outside_one_by_one(
    space: FlowSpace,
    expectation: Expectation,
    judge: Judge,
    key: Callable[[Endpoint], object] | None,
    found: list[Difference],
) -> tuple[int, int]:
    """The flows between local pods and outside addresses, each pair of groups (pods by
    what the spec sees of them against the outside and by judge key; addresses likewise)
    asked of the oracle and of the judge one flow at a time; returns (flows covered, flows
    the judge was asked)."""
    pods, endpoints, local = space.pods, space.endpoints, space.local
    asker = _Asker(judge)
    sem = expectation.semantics
    outside_groups: dict[tuple[object, ...], list[int]] = {}
    for index, pod in enumerate(pods):
        if local[index] and not pod.host_network:
            ends = endpoints[index]
            ident = tuple((v, key(e) if key else index) for v, e in sorted(ends.items()))
            where = (expectation.pod_outside_class(index), ident)
            outside_groups.setdefault(where, []).append(index)
    outside_classes: dict[tuple[object, ...], list[Outside]] = {}
    for outside in space.outside:
        address = outside.endpoint.address
        spot = (expectation.outside_class(outside), key(outside.endpoint) if key else address)
        outside_classes.setdefault(spot, []).append(outside)
    covered = 0
    for members in outside_groups.values():
        rep = members[0]
        for addresses in outside_classes.values():
            outside = addresses[0]
            mine_ep = endpoints[rep].get(outside.version)
            if mine_ep is None:
                continue
            for probe in space.probes:
                for inbound in (True, False):
                    src, dst = (
                        (outside.endpoint, mine_ep) if inbound else (mine_ep, outside.endpoint)
                    )
                    flow = Flow(src, dst, probe.protocol, probe.port)
                    covered += len(members) * len(addresses)
                    spec = sem.allowed(flow)
                    decision = asker.flow(flow)
                    if spec == decision.allowed:
                        continue
                    for there in addresses:
                        for member in members:
                            name, other = pods[member].key, str(there.endpoint)
                            found.append(
                                _difference(
                                    other if inbound else name,
                                    name if inbound else other,
                                    probe,
                                    spec,
                                    decision.allowed,
                                    decision,
                                )
                            )
    return covered, asker.flows
