"""Planning an nftables ruleset: policies and a snapshot in, chains, sets and maps out.

The plan (rendered by ``templates/nft.j2``) keeps per-packet work independent of the number
of policies and pods: hash sets and verdict maps cost one lookup whatever their size.

* One base chain on the forward hook: ``ct state established,related accept``,
  ``ct state invalid drop``, then dispatch by address through four verdict maps
  (``egress-v4``/``-v6`` on the source, ``ingress-v4``/``-v6`` on the destination).
* Pods isolated in a direction are grouped into classes (:meth:`Grants.classes
  <npc.backends.grants.Grants.classes>`:
  same isolating policies, same named-port resolution for ingress); each class has a chain
  that tests the allow sets of its policies and ends in ``drop``. An egress chain
  ``return`` s on a match, so the destination's ingress check still runs; an ingress chain
  accepts. A class with no allow is a chain holding only ``drop``; a class some policy
  allows everything is not dispatched at all.
* Each policy's rules in one direction become a few named sets (:mod:`.elements`);
  identical sets are emitted once and shared. No anonymous sets: they made a 10k-pod ruleset
  load 6 times slower.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from functools import partial
from operator import itemgetter

import netaddr

from npc import ir, tiers
from npc.backends.grants import FAMILIES, Grants, IsolationClass
from npc.backends.nft import syntax as nft_syntax
from npc.backends.nft.elements import Lookups, SetContent, build_lookups, element_lines, host
from npc.backends.nft.tiers import TierChain, plan_tiers
from npc.errors import Diagnostic
from npc.resolve import bit_indices
from npc.snapshot import Pod, Snapshot

__all__ = ["Chain", "NamedSet", "Plan", "VerdictMap", "plan"]

#: Which address of a packet names the isolated pod (dispatch) and which the peer (allow sets).
_POD_SIDE = {"egress": "saddr", "ingress": "daddr"}
_PEER_SIDE = {"egress": "daddr", "ingress": "saddr"}
#: Verdict of an allow: egress returns to the base chain (the destination's ingress check
#: still runs), ingress accepts.
_ALLOW = {"egress": "return", "ingress": "accept"}


@dataclass(frozen=True, slots=True)
class NamedSet:
    """A set as emitted: its (validated, unique) name and contents."""

    name: str
    content: SetContent


@dataclass(frozen=True, slots=True)
class Chain:
    """A class chain: ``note`` is the full description (a ``#`` line in the file),
    ``comment`` the short one the kernel keeps."""

    name: str
    comment: str
    note: str
    rules: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class VerdictMap:
    """Pod address -> jump to its class chain; ``match`` is the dispatching expression."""

    name: str
    key_type: str
    match: str
    elements: tuple[tuple[str, str], ...]
    #: ``jump`` (NetworkPolicy alone) or ``goto`` (inside a tier side: see :mod:`.tiers`).
    verdict: str = "jump"

    def element_lines(self) -> str:
        """The elements as lines of the map's ``elements = { ... }`` block."""
        return element_lines(
            f"{address} : {self.verdict} {chain}" for address, chain in self.elements
        )


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything the template renders, in output order."""

    table: str
    summary: tuple[str, ...]
    maps: tuple[VerdictMap, ...]
    sets: tuple[NamedSet, ...]
    chains: tuple[Chain, ...]
    #: Classes that need no chain (some policy allows them everything).
    notes: tuple[str, ...] = ()
    #: Warnings for the user (pods enforced on every node, for want of a node name).
    diagnostics: tuple[Diagnostic, ...] = ()
    #: The ClusterNetworkPolicy tier chains (:mod:`.tiers`); empty without any.
    tier_chains: tuple[TierChain, ...] = ()

    @property
    def owner(self) -> str:
        """The table's comment, which marks it as npc's (:data:`.syntax.OWNER`)."""
        return nft_syntax.OWNER


@dataclass(slots=True)
class _Planner:
    grants: Grants
    cluster_policies: tiers.ClusterPolicySet = tiers.EMPTY
    sets: dict[Hashable, NamedSet] = field(default_factory=dict)
    names: set[str] = field(default_factory=set)
    lookups: dict[Hashable, Lookups] = field(default_factory=dict)
    # The set made of a SetContent object, by id: lookups are shared between the classes
    # and policies using them, so the same content comes back thousands of times, and its
    # key (every element) is costly to hash each time. The content objects stay alive in
    # `lookups` (and in the NamedSet), so their ids are not reused.
    by_content: dict[int, NamedSet] = field(default_factory=dict)
    # Per lookups object (alive in `lookups`, so its id is not reused): its chain matches.
    matches: dict[int, list[str]] = field(default_factory=dict)
    comments: dict[str, str] = field(default_factory=dict)
    # Per pod number: (family, address as an integer, address as nft writes it).
    addresses: dict[int, list[tuple[int, int, str]]] = field(default_factory=dict)

    def _lookups(self, policy: ir.Policy, direction: ir.Direction, cls: IsolationClass) -> Lookups:
        key = self.grants.sharing_key(policy, direction, cls)
        found = self.lookups.get(key)
        if found is None:
            found = build_lookups(self.grants.grants(policy, direction, cls))
            self.lookups[key] = found
        return found

    # -- names --------------------------------------------------------------------------

    def _unique(self, candidate: str, identity: Callable[[], str]) -> str:
        """A valid name, unused so far: ``candidate``, else ``candidate`` plus a digest of
        what it names (``identity`` is called only then), else a counter."""
        name = nft_syntax.safe_name(candidate)
        if name in self.names:
            name = nft_syntax.safe_name(f"{candidate}-{nft_syntax.digest(identity())}")
        counter = 2
        base = name
        while name in self.names:
            name = f"{base}-{counter}"
            counter += 1
        self.names.add(name)
        return name

    def _named_set(self, content: SetContent, policy: ir.Policy, direction: str) -> NamedSet:
        found = self.by_content.get(id(content))
        if found is not None:
            return found
        found = self.sets.get(content.key)
        if found is None:
            shape = f"{content.shape}{content.family or ''}{'-range' if content.interval else ''}"
            candidate = f"{direction}/{policy.namespace}/{policy.name}/{shape}"
            name = self._unique(candidate, lambda: "\n".join(content.texts()))
            found = NamedSet(name, content)
            self.sets[content.key] = found
        self.by_content[id(content)] = found
        return found

    def _comment(self, text: str) -> str:
        found = self.comments.get(text)
        if found is None:
            found = self.comments[text] = nft_syntax.comment(text)
        return found

    def _matches(self, lookups: Lookups, policy: ir.Policy, direction: str) -> list[str]:
        """The matches of a chain's rules for ``lookups`` (memoised by the lookups object,
        shared by the classes and policies using it: its sets are named when first met)."""
        found = self.matches.get(id(lookups))
        if found is None:
            found = [f"meta l4proto {nft_syntax.protocol(proto)}" for proto in lookups.protocols]
            for test in lookups.tests:
                named = self._named_set(test.content, policy, direction)
                found.append(test.match(_PEER_SIDE[direction], named.name))
            self.matches[id(lookups)] = found
        return found

    # -- chains -------------------------------------------------------------------------

    def _chain(self, name: str, direction: ir.Direction, cls: IsolationClass) -> Chain | None:
        """The class's chain; None when some policy allows everything (the class then needs
        no dispatch at all: an undispatched packet passes)."""
        verdict = _ALLOW[direction]
        rules: dict[str, str] = {}  # lookup -> rule; policies sharing a set test it once
        for policy in cls.policies:
            lookups = self._lookups(policy, direction, cls)
            if lookups.unconditional:
                return None
            tag = ""
            for match in self._matches(lookups, policy, direction):
                if match not in rules:
                    tag = tag or f"comment {self._comment(policy.key)}"
                    rules[match] = f"{match} {verdict} {tag}"
        rules["drop"] = "drop"
        keys = ", ".join(p.key for p in cls.policies)
        ports = ", ".join(
            f"{n}/{proto}={'+'.join(map(str, nums)) or 'none'}"
            for n, proto, nums in cls.named_ports
        )
        note = f"{len(cls.pods)} pod(s) isolated for {direction} by {keys}"
        if ports:
            note += f"; named ports: {ports}"
        return Chain(name, f"{direction}: {keys}", note, tuple(rules.values()))

    def build(
        self, table: str, summary: tuple[str, ...], diagnostics: tuple[Diagnostic, ...] = ()
    ) -> Plan:
        chains: list[Chain] = []
        maps: list[VerdictMap] = []
        notes: list[str] = []
        for direction in ir.DIRECTIONS:
            classes = self.grants.classes(direction)
            per_ns: dict[str, int] = {}
            targets: dict[int, list[tuple[int, str, str]]] = {v: [] for v in FAMILIES}
            for cls in classes:
                ns = cls.policies[0].namespace
                per_ns[ns] = per_ns.get(ns, 0) + 1
                candidate = f"{direction}/{ns}/{per_ns[ns]}"
                name = self._unique(candidate, partial(str, candidate))
                chain = self._chain(name, direction, cls)
                if chain is None and self.cluster_policies:
                    # Inside a tier side, an isolated pod must reach its verdict (the
                    # Baseline tier must not see it): a chain that allows everything.
                    keys = ", ".join(p.key for p in cls.policies)
                    chain = Chain(
                        name,
                        f"{direction}: {keys}",
                        f"{len(cls.pods)} pod(s) isolated for {direction} by {keys}, allowed "
                        "everything",
                        (_ALLOW[direction],),
                    )
                if chain is None:
                    keys = ", ".join(p.key for p in cls.policies)
                    allowed = "send anything" if direction == "egress" else "receive anything"
                    notes.append(
                        f"{name} not needed: {len(cls.pods)} pod(s) isolated for {direction} "
                        f"by {keys} may {allowed}"
                    )
                    continue
                chains.append(chain)
                for idx in bit_indices(cls.pods.bits):
                    for version, value, text in self._pod_addresses(idx):
                        targets[version].append((value, text, name))
            side = _POD_SIDE[direction]
            for v in FAMILIES:
                if targets[v]:
                    maps.append(
                        VerdictMap(
                            f"{direction}-v{v}",
                            f"ipv{v}_addr",
                            f"{'ip' if v == 4 else 'ip6'} {side}",
                            _by_address(targets[v]),
                            "goto" if self.cluster_policies else "jump",
                        )
                    )
        tier_chains: tuple[TierChain, ...] = ()
        if self.cluster_policies:
            dispatch: dict[str, list[str]] = {}
            for m in maps:
                dispatch.setdefault(m.name.split("-")[0], []).append(f"{m.match} vmap @{m.name}")
            tier_plan = plan_tiers(
                self.cluster_policies,
                self.grants.snapshot,
                self._in_scope,
                lambda candidate, content: self._unique(
                    candidate, lambda: "\n".join(content.texts())
                ),
                dispatch,
            )
            tier_chains = tier_plan.chains
            for name, content in tier_plan.sets:
                self.sets[("cnp", name)] = NamedSet(name, content)
        sets = sorted(self.sets.values(), key=lambda s: s.name)
        return Plan(
            table,
            summary,
            tuple(maps),
            tuple(sets),
            tuple(chains),
            tuple(notes),
            diagnostics,
            tier_chains,
        )

    def _pod_addresses(self, idx: int) -> list[tuple[int, int, str]]:
        """A pod's addresses for the verdict maps, sorted there by integer value (netaddr
        comparisons are slow); worked out once per pod for both directions."""
        found = self.addresses.get(idx)
        if found is None:
            values = self.grants.resolver.address_values()[idx]
            # IPv4 spelt by inet_ntop (faster, and the same text); IPv6 as netaddr spells it
            found = [
                (v, value, host(4, value) if v == 4 else str(netaddr.IPAddress(value, v)))
                for v, value in values
            ]
            self.addresses[idx] = found
        return found

    def _in_scope(self, pod: Pod) -> bool:
        node = self.grants.node
        return node is None or pod.node_name == node or not pod.node_name


def _by_address(targets: list[tuple[int, str, str]]) -> tuple[tuple[str, str], ...]:
    """Verdict map elements ``(address, chain)`` sorted by address value, each once.

    A pod is in one class per direction and no two selectable pods share an address
    (:class:`~npc.backends.grants.Grants` refuses them), so values are unique and sorting
    by the integer alone gives the order of the whole tuples, faster; should two entries
    ever share a value, the whole tuples decide."""
    entries = sorted(set(targets), key=itemgetter(0))
    if any(a[0] == b[0] for a, b in itertools.pairwise(entries)):
        entries.sort()
    return tuple((text, chain) for _, text, chain in entries)


def plan(
    policies: ir.PolicySet,
    snapshot: Snapshot,
    table: str,
    node: str | None,
    cluster_policies: tiers.ClusterPolicySet = tiers.EMPTY,
) -> Plan:
    """The ruleset for ``policies`` (and ``cluster_policies``, in tier chains) over
    ``snapshot`` (only pods on ``node`` when given, and pods that name no node)."""
    grants = Grants(policies, snapshot, node)
    where = f" on node {node}" if node is not None else ""
    summary: tuple[str, ...] = (
        f"{len(policies)} NetworkPolicies over {len(snapshot.pods)} pods{where}",
    )
    if cluster_policies:
        summary += (f"{len(cluster_policies)} ClusterNetworkPolicies (admin and baseline tiers)",)
    return _Planner(grants, cluster_policies).build(table, summary, grants.diagnostics)
