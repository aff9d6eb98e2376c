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

Cost: the spec side is a bit test per flow (class matrices); the judge is asked once per
flow and address family, since nothing in the :class:`~npc.rulesets.base.Judge` protocol
says which flows a ruleset cannot tell apart (a doctored set element can single out one
pod). ``bench/verify_bench.py`` measures it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from npc import ir
from npc.analysis.flowspace import FlowSpace, one_direction
from npc.analysis.reach import Reach
from npc.analysis.semantics import Semantics
from npc.flows import Endpoint, Flow, Probe
from npc.rulesets.base import Decision, Judge
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

    def pod_pair(
        self, src: dict[int, Endpoint], dst: dict[int, Endpoint], probe: Probe
    ) -> tuple[bool, Decision | None]:
        """Allowed over some shared family; the decision of the allowing family, else of
        the first denying one."""
        denied: Decision | None = None
        for version in sorted(src.keys() & dst.keys()):
            self.flows += 1
            decision = self.judge.decide(
                Flow(src[version], dst[version], probe.protocol, probe.port)
            )
            if decision.allowed:
                return True, decision
            denied = denied or decision
        return False, denied

    def flow(self, flow: Flow) -> Decision:
        self.flows += 1
        return self.judge.decide(flow)


def _difference(
    src: str, dst: str, probe: Probe, spec: bool, ruleset: bool, decision: Decision | None
) -> Difference:
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


def _pod_expectation(space: FlowSpace, policies: ir.PolicySet) -> Callable[[int, int, Probe], bool]:
    """The spec's verdict on pod pair (i, j) for what this ruleset enforces."""
    full = Reach(policies, space.snapshot)
    full_classes = space.classes(full)
    if space.node is None:

        def whole(i: int, j: int, probe: Probe) -> bool:
            return full.matrix(probe).allows(full_classes[i], full_classes[j])

        return whole
    egress = Reach(one_direction(policies, ir.Direction.EGRESS), space.snapshot)
    ingress = Reach(one_direction(policies, ir.Direction.INGRESS), space.snapshot)
    egress_classes, ingress_classes = space.classes(egress), space.classes(ingress)
    local = space.local

    def per_side(i: int, j: int, probe: Probe) -> bool:
        if local[i] and local[j]:
            return full.matrix(probe).allows(full_classes[i], full_classes[j])
        if local[i]:
            return egress.matrix(probe).allows(egress_classes[i], egress_classes[j])
        return ingress.matrix(probe).allows(ingress_classes[i], ingress_classes[j])

    return per_side


def verify(
    policies: ir.PolicySet,
    snapshot: Snapshot,
    judge: Judge,
    *,
    target: str = "",
    node: str | None = None,
    probes: tuple[Probe, ...] | None = None,
) -> VerifyReport:
    """Compare ``judge`` with the spec on every flow of the snapshot (see the module doc)."""
    space = FlowSpace(snapshot, (policies,), node=node, probes=probes)
    asker = _Asker(judge)
    expected = _pod_expectation(space, policies)
    found: list[Difference] = []
    pods, endpoints = space.pods, space.endpoints
    for probe in space.probes:
        for i, j in space.pairs():
            spec = expected(i, j, probe)
            ruleset, decision = asker.pod_pair(endpoints[i], endpoints[j], probe)
            if spec != ruleset:
                found.append(_difference(pods[i].key, pods[j].key, probe, spec, ruleset, decision))
    pod_flows = asker.flows
    sem = Semantics(policies, snapshot)
    for index, pod in enumerate(pods):
        if not space.local[index] or pod.host_network:
            continue
        for outside in space.outside:
            mine = space.endpoints[index].get(outside.version)
            if mine is None:
                continue
            for probe in space.probes:
                for flow in (
                    Flow(outside.endpoint, mine, probe.protocol, probe.port),
                    Flow(mine, outside.endpoint, probe.protocol, probe.port),
                ):
                    spec = sem.allowed(flow)
                    decision = asker.flow(flow)
                    if spec != decision.allowed:
                        found.append(
                            _difference(
                                str(flow.src),
                                str(flow.dst),
                                probe,
                                spec,
                                decision.allowed,
                                decision,
                            )
                        )
    return VerifyReport(
        target,
        tuple(sorted(found)),
        pod_flows,
        asker.flows - pod_flows,
        space.probes,
        tuple(str(o.endpoint) for o in space.outside),
        node,
    )
