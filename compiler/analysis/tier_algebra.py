"""Class matrices with ClusterNetworkPolicy tiers by set algebra: ordered rules lifted to
bitsets of classes.

:class:`~npc.analysis.reach_tiers.TieredReach` refines the classes so that two pods of one
class get the same verdict from the oracle against any third pod. Over such classes each
rule of the oracle (rules 1-9 of :mod:`npc.analysis.semantics`, T1-T4 of
:mod:`npc.analysis.tier_semantics`) depends on a pair only through what its two classes
are, so a side of a flow can be computed for one class against *all* classes at once:

- per rule, the classes its peers match (per address family) and the destination classes
  its ports admit on the probe (named ports resolve against the destination pod);
- the egress side of a source class: start from every class still undecided; its own
  node's classes are allowed whatever the tiers say (rule 8); walk the Admin tier's rules of
  the policies whose subject it is, in order: each rule takes the undecided classes it
  matches (Accept allows them, Deny refuses them, Pass hands them on); what is left is
  decided by NetworkPolicy when one isolates the class (the union of its admitting rules),
  else by the Baseline tier the same way, else allowed;
- the ingress side of a destination class likewise, over source classes (a column), with
  the rules' ports judged once against the destination itself;
- per family, a pair connects when the source's row and the destination's column both hold
  it; a pair connects when some family both have does (no shared family, no connection).

The cost is a few bit operations per (class, rule) and per set bit of each distinct column,
against one oracle question per pair of classes. ``tests/test_cnp_semantics.py`` checks the
result against the oracle pair by pair on random clusters, tiers and probes.
"""

from __future__ import annotations

from collections.abc import Sequence

from npc import ir, tiers
from npc.analysis.reach import port_classes
from npc.analysis.semantics import Semantics
from npc.analysis.tier_semantics import TierJudge
from npc.flows import Endpoint, Flow, Probe, node_addresses, ports_match
from npc.intervals import FAMILIES
from npc.resolve import bit_indices
from npc.snapshot import Pod, Snapshot

__all__ = ["TierAlgebra"]


class TierAlgebra:
    """Rows of the class matrix for NetworkPolicies and ClusterNetworkPolicies over classes
    no rule of either tells apart (``classes``: per class, its pods in snapshot order)."""

    def __init__(
        self,
        policies: ir.PolicySet,
        snapshot: Snapshot,
        cluster_policies: tiers.ClusterPolicySet,
        classes: Sequence[Sequence[Pod]],
    ) -> None:
        self.sem = Semantics(policies, snapshot, cluster_policies)
        self.judge = TierJudge(cluster_policies, snapshot)
        self.reps = [members[0] for members in classes]
        n = len(self.reps)
        self.n = n
        self.all = (1 << n) - 1
        nodes = node_addresses(snapshot)
        self.family_bits = dict.fromkeys(FAMILIES, 0)
        #: per family, per class: its endpoint (None without an address of the family)
        self.ends: dict[int, list[Endpoint | None]] = {}
        for v in FAMILIES:
            ends: list[Endpoint | None] = []
            for k, rep in enumerate(self.reps):
                if rep.ip(v) is None:
                    ends.append(None)
                else:
                    ends.append(Endpoint.of_pod(rep, v))
                    self.family_bits[v] |= 1 << k
            self.ends[v] = ends
        # Rule 8: per family, per class, the classes that are its own node (hostNetwork
        # pods, addressed by the node's address).
        self.own: dict[int, list[int]] = {}
        for v in FAMILIES:
            by_node: dict[str, int] = {}
            for k, end in enumerate(self.ends[v]):
                if end is not None and end.pod is None:
                    node = nodes.get(end.address)
                    if node is not None:
                        by_node[node] = by_node.get(node, 0) | 1 << k
            self.own[v] = [
                by_node.get(rep.node_name, 0) if rep.node_name and not rep.host_network else 0
                for rep in self.reps
            ]
        self._peer_cache: dict[tuple[int, int, str], int] = {}
        self._named_cache: dict[tuple[str, Probe, int], int] = {}
        self._rows: dict[tuple[object, ...], tuple[int, ...]] = {}
        self._subject: list[tuple[tiers.ClusterPolicy, ...]] = [
            self.judge.subject_of(rep) for rep in self.reps
        ]
        self._isolating = {
            d: [self.sem.isolating(rep, d) for rep in self.reps] for d in ("egress", "ingress")
        }

    # -- what one rule matches ------------------------------------------------------------

    def _tier_peers(self, rule: tiers.ClusterRule, v: int) -> int:
        """Classes (their address of family ``v``) some peer of ``rule`` matches (T3)."""
        key = (id(rule), v, "")
        found = self._peer_cache.get(key)
        if found is None:
            found = 0
            for k, end in enumerate(self.ends[v]):
                if end is not None and any(
                    self.judge.peer_matches(p, rule.action, end) for p in rule.peers
                ):
                    found |= 1 << k
            self._peer_cache[key] = found
        return found

    def _np_peers(self, policy: ir.Policy, rule: ir.Rule, v: int) -> int:
        """Classes some peer of a NetworkPolicy rule matches (rule 4)."""
        if isinstance(rule.peers, ir.AnyPeer):
            return self.all
        key = (id(rule), v, policy.namespace)
        found = self._peer_cache.get(key)
        if found is None:
            found = 0
            for k, end in enumerate(self.ends[v]):
                if end is not None and self.sem.peers_match(policy, rule.peers, end):
                    found |= 1 << k
            self._peer_cache[key] = found
        return found

    def _ports(self, ports: ir.Ports, probe: Probe, v: int) -> int:
        """Destination classes for which ``ports`` admits the probe (rule 5, T4: a number or
        range holds for every destination, a name for the pods that give the port it)."""
        return port_classes(ports, probe, self.all, lambda name: self._named(name, probe, v))

    def _named(self, name: str, probe: Probe, v: int) -> int:
        key = (name, probe, v)
        found = self._named_cache.get(key)
        if found is None:
            found = 0
            only = ir.PortSet((ir.ProtocolPorts(probe.protocol, (), (name,)),))
            for k, end in enumerate(self.ends[v]):
                if end is not None and ports_match(
                    only, Flow(end, end, probe.protocol, probe.port)
                ):
                    found |= 1 << k
            self._named_cache[key] = found
        return found

    # -- sides ----------------------------------------------------------------------------

    @staticmethod
    def _tier(rules: Sequence[tuple[tiers.Action, int]], undecided: int) -> tuple[int, int]:
        """One tier over the ``undecided`` classes, its rules as (action, the classes the
        rule matches) in order: (accepted, handed on: passed or matched by no rule)."""
        accepted = passed = 0
        for action, matched in rules:
            taken = matched & undecided
            if not taken:
                continue
            undecided &= ~taken
            if action is tiers.Action.ACCEPT:
                accepted |= taken
            elif action is tiers.Action.PASS:
                passed |= taken
        return accepted, passed | undecided

    def _side(
        self,
        k: int,
        direction: str,
        v: int,
        tier_rules: dict[tiers.Tier, list[tuple[tiers.Action, int]]],
        np_allowed: int,
    ) -> int:
        """Classes the ``direction`` side of class ``k`` allows (sources for ingress,
        destinations for egress), given its tiers' rules (action, classes matched) and
        the classes its NetworkPolicies admit."""
        if self.ends[v][k] is None or self.reps[k].host_network:
            return self.all  # not a pod: no side (rule 6)
        own = self.own[v][k]
        accepted, undecided = self._tier(tier_rules[tiers.Tier.ADMIN], self.all & ~own)
        if self._isolating[direction][k]:
            return own | accepted | (undecided & np_allowed)
        baseline, rest = self._tier(tier_rules[tiers.Tier.BASELINE], undecided)
        return own | accepted | baseline | rest

    def _tier_rules(
        self, k: int, direction: str, v: int, ports: dict[int, int], at_subject: bool
    ) -> dict[tiers.Tier, list[tuple[tiers.Action, int]]]:
        """Per tier, the rules of the policies whose subject class ``k`` is, as (action,
        classes matched); ``ports[id(rule)]`` holds the destination classes its ports
        admit: the far end's (egress) or, ``at_subject``, class ``k``'s own (ingress)."""
        found: dict[tiers.Tier, list[tuple[tiers.Action, int]]] = {t: [] for t in tiers.Tier}
        bit = 1 << k
        for policy in self._subject[k]:
            for rule in policy.rules(direction):
                admits = ports[id(rule)]
                if at_subject:
                    admits = self.all if admits & bit else 0
                matched = self._tier_peers(rule, v) & admits
                found[policy.tier].append((rule.action, matched))
        return found

    def _np_allowed(
        self, k: int, direction: str, v: int, ports: dict[int, int], at_subject: bool
    ) -> int:
        allowed = 0
        bit = 1 << k
        for policy in self._isolating[direction][k]:
            for rule in policy.rules(direction) or ():
                admits = ports[id(rule)]
                if at_subject:
                    admits = self.all if admits & bit else 0
                if admits:
                    allowed |= self._np_peers(policy, rule, v) & admits
        return allowed

    # -- the matrix -----------------------------------------------------------------------

    def rows(self, probe: Probe) -> tuple[int, ...]:
        """Rows of the class matrix of ``probe``: per source class, the destination classes
        a pod of it may connect to (two distinct pods)."""
        per_family: dict[int, dict[int, int]] = {}
        signature: list[object] = []
        for v in FAMILIES:
            if self.family_bits[v]:
                per_family[v] = self._rule_ports(probe, v)
                signature.append((v, tuple(sorted(per_family[v].items()))))
        key = tuple(signature)
        found = self._rows.get(key)
        if found is None:
            found = self._compute(per_family)
            self._rows[key] = found
        return found

    def _rule_ports(self, probe: Probe, v: int) -> dict[int, int]:
        """``id(rule)`` -> destination classes its ports admit, for every rule of both kinds
        (what a probe changes: probes alike in this share one matrix)."""
        found: dict[int, int] = {}
        for policy in self.sem.cluster_policies:
            for direction in ir.Direction:
                for rule in policy.rules(direction):
                    found[id(rule)] = self._ports(rule.ports, probe, v)
        for np in self.sem.policies:
            for direction in ir.Direction:
                for r in np.rules(direction) or ():
                    found[id(r)] = self._ports(r.ports, probe, v)
        return found

    def _compute(self, per_family: dict[int, dict[int, int]]) -> tuple[int, ...]:
        n = self.n
        allowed = [0] * n
        for v, ports in per_family.items():
            egress = [
                self._side(
                    k,
                    "egress",
                    v,
                    self._tier_rules(k, "egress", v, ports, at_subject=False),
                    self._np_allowed(k, "egress", v, ports, at_subject=False),
                )
                for k in range(n)
            ]
            # Ingress by destination (columns), turned into rows: destinations sharing a
            # column are grouped; a column with most bits set is walked by its complement.
            columns: dict[int, int] = {}
            for k in range(n):
                column = self._side(
                    k,
                    "ingress",
                    v,
                    self._tier_rules(k, "ingress", v, ports, at_subject=True),
                    self._np_allowed(k, "ingress", v, ports, at_subject=True),
                )
                columns[column] = columns.get(column, 0) | 1 << k
            base = 0
            include = [0] * n
            exclude = [0] * n
            for column, destinations in columns.items():
                if column.bit_count() * 2 <= n:
                    for s in bit_indices(column):
                        include[s] |= destinations
                else:
                    base |= destinations
                    for s in bit_indices(self.all & ~column):
                        exclude[s] |= destinations
            mask = self.family_bits[v]
            for s in bit_indices(mask):
                ingress = (base | include[s]) & ~exclude[s]
                allowed[s] |= egress[s] & ingress & mask
        return tuple(allowed)
