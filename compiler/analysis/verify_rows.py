"""The judge-asking loop of :mod:`.verify`, by rows: one question per source and probe.

The flows of a check are compared with the spec a row at a time: for one source (a group of
pods, or of outside addresses, that neither the spec nor the judge tells apart) and one
probe, the judge's verdicts towards every destination group are one bitset
(:class:`~npc.rulesets.base.Batched`; a judge without it is asked flow by flow behind the same
interface), the spec's are one bitset built from its class matrix, and their XOR is the
differences. Soundness rests on three exact facts, each tested:

* a group holds endpoints the judge's own :meth:`~npc.rulesets.base.Partitioned.key` cannot
  tell apart and that share every spec class (:class:`~npc.analysis.reach.Reach` proves pods
  of one class get the same verdicts); without a key every pod is its own group;
* a batched row equals ``decide`` flow by flow (the :class:`~npc.rulesets.base.Batched`
  contract; ``tests/test_verify_scale.py`` checks nft and iptables on random clusters);
* the pair of two distinct members of one group is asked as such (a second member of every
  group stands in the row), never as a pod with itself.

The spec of a pod towards an outside address is its one side (the address has no policy):
the isolating policies of the pod's class, the rules whose ports admit the probe, the
outside addresses their peers hold (:class:`~npc.analysis.semantics.Semantics`' own
``isolating``, ``ports_match`` and ``peer_matches``, asked once per class and peer).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from npc import ir
from npc.analysis.flowspace import FlowSpace, Outside
from npc.analysis.semantics import Semantics
from npc.flows import Endpoint, Flow, Probe
from npc.resolve import bit_indices
from npc.rulesets.base import Batched, Decision, Judge, Rows
from npc.snapshot import Pod

__all__ = ["Found", "Questions", "spread"]

#: A difference as found: (src name, dst name, probe, spec, ruleset, deciding decision).
Found = tuple[str, str, Probe, bool, bool, Decision | None]


class _OneByOne:
    """Rows of a judge without :class:`Batched`: every flow asked alone."""

    def __init__(self, judge: Judge, dsts: Sequence[Endpoint], count: Callable[[int], None]):
        self.judge, self.dsts, self.count = judge, tuple(dsts), count

    def allowed(self, src: Endpoint, protocol: ir.Protocol, port: int) -> int:
        bits = 0
        version = src.address.version
        for k, dst in enumerate(self.dsts):
            if dst.address.version == version:
                self.count(1)
                if self.judge.decide(Flow(src, dst, protocol, port)).allowed:
                    bits |= 1 << k
        return bits


def spread(row: int, members: Sequence[int], universe: int, relevant: int | None = None) -> int:
    """A class row (bit c: class c) as the union of ``members[c]`` (bits of groups; they
    partition ``universe``), from whichever of the row's set or clear bits are fewer.
    ``relevant``: the classes whose members are not empty (default: every class)."""
    if relevant is None:
        relevant = (1 << len(members)) - 1
    held = row & relevant
    if held.bit_count() * 2 <= relevant.bit_count():
        found = 0
        for c in bit_indices(held):
            found |= members[c]
        return found
    missing = 0
    for c in bit_indices(relevant & ~row):
        missing |= members[c]
    return universe & ~missing


@dataclass
class Questions:
    """Asks one judge, counting what it was asked (a row is one question)."""

    judge: Judge
    asked: int = 0

    def _count(self, n: int) -> None:
        self.asked += n

    def rows(self, dsts: Sequence[Endpoint]) -> Rows:
        """Rows towards ``dsts`` (batched when the judge can)."""
        if isinstance(self.judge, Batched):
            return _Counted(self.judge.rows(dsts), self._count)
        return _OneByOne(self.judge, dsts, self._count)

    def decision(
        self, src: Endpoint | dict[int, Endpoint], dst: dict[int, Endpoint], probe: Probe
    ) -> Decision | None:
        """The deciding rule of a flow verify reports: the first allowing family's decision,
        else the first denying one's (None: no shared family)."""
        ends = src if isinstance(src, dict) else {int(src.address.version): src}
        first: Decision | None = None
        for version, one in sorted(ends.items()):
            other = dst.get(version)
            if other is None:
                continue
            self.asked += 1
            decision = self.judge.decide(Flow(one, other, probe.protocol, probe.port))
            if decision.allowed:
                return decision
            first = first or decision
        return first


@dataclass
class _Counted:
    rows: Rows
    count: Callable[[int], None]

    def allowed(self, src: Endpoint, protocol: ir.Protocol, port: int) -> int:
        self.count(1)
        return self.rows.allowed(src, protocol, port)


def endpoint_in(ends: dict[int, Endpoint], version: int, fallback: Endpoint) -> Endpoint:
    """The endpoint of ``version``, or a stand-in whose bit the caller masks out."""
    return ends.get(version) or next(iter(ends.values()), fallback)


class OutsideSpec:
    """The spec's verdicts between a pod and the outside addresses, as bits over ``outs``."""

    def __init__(self, sem: Semantics, outs: Sequence[Endpoint]) -> None:
        self.sem = sem
        self.outs = tuple(outs)
        self.every = (1 << len(self.outs)) - 1
        self._family: dict[int, int] = {}
        for k, out in enumerate(self.outs):
            v = int(out.address.version)
            self._family[v] = self._family.get(v, 0) | 1 << k
            # FlowSpace leaves node addresses out: no pod's own node is among them (rule 8)
            assert sem.node_of(out) is None
        self._peers: dict[int, tuple[ir.Peer, int]] = {}

    def _peer(self, policy: ir.Policy, peer: ir.Peer) -> int:
        found = self._peers.get(id(peer))
        if found is None:
            bits = 0
            for k, out in enumerate(self.outs):
                if self.sem.peer_matches(policy, peer, out):
                    bits |= 1 << k
            found = self._peers[id(peer)] = (peer, bits)  # the peer kept alive with its id
        return found[1]

    def row(self, pod: Pod, probe: Probe, inbound: bool) -> int:
        """Bit k: the spec allows ``outs[k]`` to ``pod`` (``inbound``) or the reverse."""
        families = 0
        for address in pod.ips:
            families |= self._family.get(int(address.version), 0)
        direction = "ingress" if inbound else "egress"
        isolating = self.sem.isolating(pod, direction)
        if not isolating:
            return families
        me = Endpoint.of_pod(pod)
        # ports_match resolves named ports on the destination: the pod inbound, none outbound
        flow = Flow(Endpoint(me.address), me, probe.protocol, probe.port)
        if not inbound:
            flow = Flow(me, Endpoint(me.address), probe.protocol, probe.port)
        allowed = 0
        for policy in isolating:
            for rule in policy.rules(direction) or ():
                if not self.sem.ports_match(rule.ports, flow):
                    continue
                if isinstance(rule.peers, ir.AnyPeer):
                    return families
                for peer in rule.peers:
                    allowed |= self._peer(policy, peer)
        return allowed & families


def pod_row_check(
    space: FlowSpace,
    groups: list[list[int]],
    spec_row: Callable[[int, Probe], int],
    questions: Questions,
    found: list[Found],
) -> int:
    """Compare every pod group's row with the spec's (``spec_row(group, probe)``: bits of
    groups); returns how many pod flows that covers. With a node, a remote group's row
    holds only local groups."""
    endpoints, local, pods = space.endpoints, space.local, space.pods
    n = len(groups)
    seconds = [b for b in range(n) if len(groups[b]) > 1]
    second_bit = {b: n + k for k, b in enumerate(seconds)}
    everyone = (1 << n) - 1
    local_groups = sum(1 << b for b in range(n) if local[groups[b][0]])
    sizes = [len(g) for g in groups]
    total = {True: sum(sizes), False: sum(sizes[b] for b in bit_indices(local_groups))}
    versions = sorted({v for ends in endpoints for v in ends})
    stand_in = Endpoint.of_address("::")
    rows: dict[int, Rows] = {}
    has: dict[int, int] = {}
    for v in versions:
        members = [groups[b][0] for b in range(n)] + [groups[b][1] for b in seconds]
        rows[v] = questions.rows([endpoint_in(endpoints[i], v, stand_in) for i in members])
        has[v] = sum(1 << k for k, i in enumerate(members) if v in endpoints[i])
    covered = 0
    for probe in space.probes:
        for a in range(n):
            i = groups[a][0]
            domain = everyone if local[i] else local_groups
            if len(groups[a]) < 2:
                domain &= ~(1 << a)
            covered += sizes[a] * (total[local[i]] - (1 if local[i] else 0))
            ruled = 0
            for v, src in endpoints[i].items():
                bits = rows[v].allowed(src, probe.protocol, probe.port) & has[v]
                own = bits >> second_bit[a] & 1 if a in second_bit else 0
                ruled |= (bits & everyone & ~(1 << a)) | own << a
            spec = spec_row(a, probe)
            for b in bit_indices((ruled ^ spec) & domain):
                j = groups[a][1] if a == b else groups[b][0]
                allowed = bool(ruled >> b & 1)
                decision = questions.decision(endpoints[i], endpoints[j], probe)
                for i2 in groups[a]:
                    for j2 in groups[b]:
                        if i2 != j2:
                            found.append(
                                (pods[i2].key, pods[j2].key, probe, not allowed, allowed, decision)
                            )
    return covered


def outside_check(
    space: FlowSpace,
    groups: list[list[int]],
    classes: list[int],
    outside: list[list[Outside]],
    sem: Semantics,
    questions: Questions,
    found: list[Found],
) -> int:
    """Compare pod groups (``classes``: each one's spec class) with groups of outside
    addresses, both ways; returns how many outside flows that covers."""
    endpoints, pods = space.endpoints, space.pods
    outs = [members[0].endpoint for members in outside]
    spec = OutsideSpec(sem, outs)
    out_rows = questions.rows(outs)
    versions = sorted({v for ends in endpoints for v in ends})
    stand_in = Endpoint.of_address("::")
    reps = [g[0] for g in groups]
    in_rows = {
        v: questions.rows([endpoint_in(endpoints[i], v, stand_in) for i in reps]) for v in versions
    }
    has = {v: sum(1 << k for k, i in enumerate(reps) if v in endpoints[i]) for v in versions}
    # the spec by class, and by address families (a class's pods may have different ones)
    kinds = [(c, tuple(sorted(endpoints[i]))) for c, i in zip(classes, reps, strict=True)]
    by_class: dict[tuple[int, tuple[int, ...]], int] = {}
    for b, kind in enumerate(kinds):
        by_class[kind] = by_class.get(kind, 0) | 1 << b
    class_rep = {c: pods[reps[(bits & -bits).bit_length() - 1]] for c, bits in by_class.items()}
    sizes = [len(g) for g in groups]
    o_sizes = [len(m) for m in outside]
    covered = 0
    for b, g in enumerate(groups):
        for k, members in enumerate(outside):
            if members[0].version in endpoints[g[0]]:
                covered += sizes[b] * o_sizes[k]
    covered *= 2 * len(space.probes)

    def report(b: int, k: int, probe: Probe, inbound: bool, spec_says: bool) -> None:
        rep, there = endpoints[groups[b][0]], outside[k][0]
        if inbound:
            decision = questions.decision(there.endpoint, rep, probe)
        else:
            decision = questions.decision(
                rep[there.version], {there.version: there.endpoint}, probe
            )
        for o in outside[k]:
            for member in groups[b]:
                name, other = pods[member].key, str(o.endpoint)
                found.append(
                    (
                        other if inbound else name,
                        name if inbound else other,
                        probe,
                        spec_says,
                        not spec_says,
                        decision,
                    )
                )

    for probe in space.probes:
        rows_of = {c: spec.row(class_rep[c], probe, False) for c in by_class}
        for b, i in enumerate(reps):
            ruled = 0
            for src in endpoints[i].values():
                ruled |= out_rows.allowed(src, probe.protocol, probe.port)
            expected = rows_of[kinds[b]]
            for k in bit_indices(ruled ^ expected):
                report(b, k, probe, False, bool(expected >> k & 1))
        columns: list[int] = [0] * len(outs)  # per outside group: pod groups the spec admits
        for c, bits in by_class.items():
            for k in bit_indices(spec.row(class_rep[c], probe, True)):
                columns[k] |= bits
        for k, members in enumerate(outside):
            v = members[0].version
            if v not in in_rows:
                continue
            ruled = in_rows[v].allowed(members[0].endpoint, probe.protocol, probe.port) & has[v]
            for b in bit_indices(ruled ^ (columns[k] & has[v])):
                report(b, k, probe, True, bool(columns[k] >> b & 1))
    return covered
