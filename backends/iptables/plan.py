"""Planning an iptables ruleset: policies and a snapshot in, chains and ipsets out.

The plan (rendered by ``templates/iptables.j2`` and ``templates/ipset.j2``) has, per address
family, one ``filter`` table part for ``iptables-restore --noflush`` (``ip6tables-restore``):

* ``NPC-FORWARD``, the top chain ``FORWARD`` jumps to: ``RELATED,ESTABLISHED`` accepted,
  ``INVALID`` dropped, then ``-j NPC-EGRESS`` (dispatch by source address) and
  ``-j NPC-INGRESS`` (by destination);
* the dispatch trees under those two (:mod:`.dispatch`), ending in ``-g`` to
* one chain per isolation class and direction (``NPC-E-<hash>``, ``NPC-I-<hash>``, named
  by a digest of the class's policies and named-port resolution, so they keep their names
  while pods come and go): a rule per allowed (peers, protocol, ports), then ``DROP``. An
  egress allow is ``RETURN`` (the destination's ingress check still runs); an ingress allow
  is ``ACCEPT``. A class some policy allows everything gets no chain and no dispatch.

Peers become an inline ``-s``/``-d`` when they are one CIDR block, else an ipset
(``--sets ipset``, the default; ``hash:ip`` for pod addresses, ``hash:net`` when blocks are
in it) or one rule per block (``--sets none``). An ipset is named by a digest of its type and
contents, so a set that changes is a new set, and the new rules and the new sets switch
together in one restore (no window in which old rules see new contents). ``ipBlock.except``
arrives already subtracted (:class:`npc.backends.grants.Addresses` holds disjoint blocks), so
no ``nomatch`` entry is needed, and a block covering a whole family is no match at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from npc import ir, tiers
from npc.backends.grants import (
    FAMILIES,
    Grant,
    Grants,
    IsolationClass,
    Range,
    cidr_blocks,
    merge,
)
from npc.backends.iptables import syntax
from npc.backends.iptables.dispatch import dispatch_tree, join_runs
from npc.backends.iptables.tiers import (
    NESTING,
    SIDE_CHAINS,
    TierPlanner,
    chain_depth,
    subject_pods,
)
from npc.errors import Code, Diagnostic, Severity
from npc.snapshot import Pod, Snapshot

__all__ = ["Chain", "IpSet", "Plan", "Table", "plan"]

_BITS: Final = {4: 32, 6: 128}
_ALL: Final = (ir.ALL_PORTS.start, ir.ALL_PORTS.end)
#: (kind letter, pod address option, peer address option, ipset direction, allow verdict)
_SIDES: Final = MappingProxyType(
    {
        ir.Direction.EGRESS: ("E", "-s", "-d", "dst", "RETURN"),
        ir.Direction.INGRESS: ("I", "-d", "-s", "src", "ACCEPT"),
    }
)
#: The chain ``FORWARD`` jumps to.
TOP: Final = "NPC-FORWARD"
#: The root chain of each direction's dispatch tree.
ROOTS: Final = MappingProxyType(
    {ir.Direction.EGRESS: "NPC-EGRESS", ir.Direction.INGRESS: "NPC-INGRESS"}
)


@dataclass(frozen=True, slots=True)
class Chain:
    """A chain as restored: ``rules`` are what follows ``-A <name>``; ``note`` (may be
    empty) is written as a ``#`` line above them."""

    name: str
    rules: tuple[str, ...]
    note: str = ""


@dataclass(frozen=True, slots=True)
class Table:
    """One family's part of the restore file: the ``filter`` table's NPC chains."""

    family: int
    chains: tuple[Chain, ...]

    @property
    def tool(self) -> str:
        return "iptables" if self.family == 4 else "ip6tables"


@dataclass(frozen=True, slots=True)
class IpSet:
    """An ipset as ``ipset restore`` creates it."""

    name: str
    kind: str  # hash:ip or hash:net
    family: int
    entries: tuple[str, ...]

    @property
    def create(self) -> str:
        """The ``create`` line's arguments after the name."""
        family = "inet" if self.family == 4 else "inet6"
        maxelem = max(65536, len(self.entries))
        return f"{self.kind} family {family} hashsize 1024 maxelem {maxelem}"


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything the templates render, in output order."""

    summary: tuple[str, ...]
    tables: tuple[Table, ...]
    sets: tuple[IpSet, ...]
    notes: tuple[str, ...] = ()
    diagnostics: tuple[Diagnostic, ...] = ()


@dataclass(slots=True)
class _Rules:
    """What one class allows in one family, as rule bodies (deduplicated, in order)."""

    bodies: dict[str, None] = field(default_factory=dict)

    def add(self, body: str) -> None:
        self.bodies.setdefault(body, None)


@dataclass(slots=True)
class _Planner:
    grants: Grants
    families: tuple[int, ...]
    use_sets: bool
    cluster_policies: tiers.ClusterPolicySet = tiers.EMPTY
    sets: dict[str, IpSet] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # chain name -> identity
    memo: dict[tuple[int, str, int, ir.Direction], tuple[tuple[Grant, ...], tuple[str, ...]]] = (
        field(default_factory=dict)
    )
    #: The address matches of an address set (by id: grants share them between classes; the
    #: set is kept here beside its matches, so its id is not reused).
    peer_memo: dict[tuple[int, ir.Direction, int], tuple[object, tuple[str, ...]]] = field(
        default_factory=dict
    )

    # -- peers ---------------------------------------------------------------------------

    def _peer_matches(
        self, version: int, direction: ir.Direction, grant: Grant
    ) -> tuple[str, ...]:
        """The address part of the rules for ``grant`` in ``version``: one string per rule
        ("" for any address); empty when the grant names no address of this family."""
        if grant.addresses is None:
            return ("",)
        key = (version, direction, id(grant.addresses))
        found = self.peer_memo.get(key)
        if found is None:
            found = self.peer_memo[key] = (
                grant.addresses,
                tuple(self._address_matches(version, direction, grant)),
            )
        return found[1]

    def _address_matches(self, version: int, direction: ir.Direction, grant: Grant) -> list[str]:
        assert grant.addresses is not None
        hosts = grant.addresses.hosts.get(version, frozenset())
        blocks = grant.addresses.blocks.get(version, ())
        ranges = merge([*((h, h) for h in hosts), *blocks])
        return self.address_matches(version, ranges, _SIDES[direction][2], _SIDES[direction][3])

    def address_matches(
        self, version: int, ranges: list[Range], option: str, direction_word: str
    ) -> list[str]:
        """Sorted, merged address ``ranges`` of ``version`` as the address part of rules:
        ``option`` (``-s``/``-d``) with one block inline, else a ``-m set`` match (marked
        with :data:`.syntax.SET_MARK`) of the set with these blocks, ``direction_word``
        (``src``/``dst``), or one rule per block with ``--sets none``. "" for the whole
        family; empty for no address."""
        if not ranges:
            return []
        bits = _BITS[version]
        if ranges == [(0, (1 << bits) - 1)]:
            return [""]
        cover = [b for lo, hi in ranges for b in cidr_blocks(lo, hi, bits)]
        if len(cover) == 1 or not self.use_sets:
            return [f"{option} {syntax.block(version, lo, hi)}" for lo, hi in cover]
        kind = "hash:ip" if all(lo == hi for lo, hi in cover) else "hash:net"
        entries = tuple(syntax.set_entry(version, lo, hi) for lo, hi in cover)
        return [
            f"{syntax.SET_MARK}-m set --match-set {self._ipset(version, kind, entries)} "
            f"{direction_word}"
        ]

    def port_element_matches(
        self, version: int, elements: list[tuple[int, ir.Protocol, int]]
    ) -> list[tuple[str, str]]:
        """(destination address, protocol, port) ``elements`` (sorted, unique) as
        ``(address part, port part)`` pairs of rules: a ``hash:ip,port`` set matched on
        ``dst,dst``, or ``-d ADDRESS -p PROTO --dport PORT`` when there is one element or
        ``--sets none``."""
        if len(elements) == 1 or not self.use_sets:
            return [
                (
                    f"-d {syntax.block(version, a, a)}",
                    syntax.port_matches(proto, [(number, number)])[0],
                )
                for a, proto, number in elements
            ]
        kind = "hash:ip,port"
        entries = tuple(syntax.port_element(version, a, p, n) for a, p, n in elements)
        name = self._ipset(version, kind, entries)
        return [(f"{syntax.SET_MARK}-m set --match-set {name} dst,dst", "")]

    def _ipset(self, version: int, kind: str, entries: tuple[str, ...]) -> str:
        name = syntax.set_name(version, "\n".join((kind, *entries)))
        known = self.sets.setdefault(name, IpSet(name, kind, version, entries))
        if known.entries != entries or known.kind != kind:  # pragma: no cover - 64-bit digest
            raise AssertionError(f"ipset name collision: {name}")
        return name

    @staticmethod
    def _port_matches(grant: Grant) -> list[str]:
        """The protocol part: ``-p tcp`` plus one port match per rule."""
        if grant.protocol is None:
            return [""]
        return syntax.port_matches(grant.protocol, merge(grant.ports))

    # -- class chains ----------------------------------------------------------------------

    def _policy_rules(
        self,
        policy: ir.Policy,
        grants: tuple[Grant, ...],
        version: int,
        direction: ir.Direction,
    ) -> tuple[str, ...]:
        """The rule bodies for one policy's grants (memoised: classes share policies, and
        copies of a policy share their grants)."""
        key = (id(grants), policy.key, version, direction)
        found = self.memo.get(key)
        if found is None:
            verdict = _SIDES[direction][4]
            tag = f"-m comment --comment {syntax.comment(policy.key)}"
            bodies = tuple(
                syntax.rule_body([peer], ports, tag, f"-j {verdict}")
                for grant in grants
                for peer in self._peer_matches(version, direction, grant)
                for ports in self._port_matches(grant)
            )
            found = self.memo[key] = (grants, bodies)  # the grants kept alive with their id
        return found[1]

    def _class_chain(
        self,
        name: str,
        version: int,
        direction: ir.Direction,
        cls: IsolationClass,
        grants: Sequence[tuple[ir.Policy, tuple[Grant, ...]]],
    ) -> Chain:
        rules = _Rules()
        for policy, granted in grants:
            for body in self._policy_rules(policy, granted, version, direction):
                rules.add(body)
        rules.add(f"-m comment --comment {syntax.comment(direction + ' isolated')} -j DROP")
        keys = ", ".join(p.key for p in cls.policies)
        note = f"{len(cls.pods)} pod(s) isolated for {direction} by {keys}"
        named = ", ".join(
            f"{n}/{proto}={'+'.join(map(str, nums)) or 'none'}"
            for n, proto, nums in cls.named_ports
        )
        if named:
            note += f"; named ports: {named}"
        return Chain(name, tuple(rules.bodies), note)

    def _class_name(self, direction: ir.Direction, cls: IsolationClass) -> str:
        identity = "\n".join(
            (
                str(direction),
                *(p.key for p in cls.policies),
                *(f"{n}/{proto}={nums}" for n, proto, nums in cls.named_ports),
            )
        )
        salt = 0
        while True:
            name = syntax.chain_name(_SIDES[direction][0], identity + "#" * salt)
            if self.names.setdefault(name, identity) == identity:
                return name
            salt += 1  # pragma: no cover - a 64-bit digest collision

    # -- the whole ----------------------------------------------------------------------

    def build(self) -> tuple[list[Table], list[str]]:
        tiered = bool(self.cluster_policies)
        per_family: dict[int, list[Chain]] = {v: [] for v in self.families}
        dispatch: dict[int, list[Chain]] = {v: [] for v in self.families}
        top: dict[int, list[str]] = {
            v: [
                "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
                "-m conntrack --ctstate INVALID -j DROP",
            ]
            for v in self.families
        }
        notes: list[str] = []
        tier_planner = TierPlanner(
            self.cluster_policies, self.grants.snapshot, self._in_scope, self
        )
        for direction in (ir.Direction.EGRESS, ir.Direction.INGRESS):
            targets: dict[int, list[tuple[int, str]]] = {v: [] for v in self.families}
            for cls in self.grants.classes(direction):
                keys = ", ".join(p.key for p in cls.policies)
                grants = [(p, self.grants.grants(p, direction, cls)) for p in cls.policies]
                if any(g.addresses is None and g.protocol is None for _, gs in grants for g in gs):
                    allowed = "send anything" if direction == "egress" else "receive anything"
                    if not tiered:
                        notes.append(
                            f"{len(cls.pods)} pod(s) isolated for {direction} by {keys} may "
                            f"{allowed}: not dispatched"
                        )
                        continue
                    # Inside a tier side, an isolated pod must reach its verdict (the
                    # Baseline tier must not see it): a chain that allows everything.
                    name = self._class_name(direction, cls)
                    tag = f"-m comment --comment {syntax.comment(keys)}"
                    chain = Chain(
                        name,
                        (f"{tag} -j {_SIDES[direction][4]}",),
                        f"{len(cls.pods)} pod(s) isolated for {direction} by {keys}, "
                        f"who may {allowed}",
                    )
                    for v in self.families:
                        addresses = [int(a) for pod in cls.pods for a in pod.ips if a.version == v]
                        if addresses:
                            per_family[v].append(chain)
                            targets[v].extend((a, name) for a in addresses)
                    continue
                name = self._class_name(direction, cls)
                for v in self.families:
                    addresses = [int(a) for pod in cls.pods for a in pod.ips if a.version == v]
                    if addresses:
                        per_family[v].append(self._class_chain(name, v, direction, cls, grants))
                        targets[v].extend((a, name) for a in addresses)
            kind, option = _SIDES[direction][0], _SIDES[direction][1]
            for v in self.families:
                if not targets[v] and not tiered:
                    continue
                stages = SIDE_CHAINS[direction]
                root = stages.np if tiered else ROOTS[direction]
                top[v].append(f"-j {stages.admin if tiered else root}")
                blocks = join_runs(sorted(set(targets[v])), _BITS[v])

                def child(first: int, length: int, v: int = v, kind: str = kind) -> str:
                    return syntax.chain_name(f"{kind}T", f"{v} {first}/{length}")

                tree = [
                    Chain(c.name, c.rules) for c in dispatch_tree(root, v, option, blocks, child)
                ]
                if tiered:
                    # A packet no class chain takes falls off the tree: to the Baseline tier.
                    tree = [Chain(c.name, (*c.rules, f"-g {stages.baseline}")) for c in tree]
                    tree[0] = Chain(tree[0].name, tree[0].rules, f"NetworkPolicy, {direction}")
                    for nesting in range(NESTING, -1, -1):
                        # Less nesting when branches and trees would sit deeper than
                        # iptables-nft loads: longer tier chains, never too deep.
                        admin = tier_planner.admin(direction, v, nesting)
                        baseline = tier_planner.baseline(direction, v, nesting)
                        levels = _side_levels(admin, tree, baseline, per_family[v])
                        if levels <= syntax.LEVELS_MAX:
                            break
                    if nesting < NESTING:
                        notes.append(
                            f"IPv{v} {direction}: tier rules nested less ({nesting} of "
                            f"{NESTING}) to stay within the {syntax.LEVELS_MAX} chain levels "
                            "iptables-nft loads"
                        )
                    tree = [
                        *_tier_chains(admin, f"Admin tier, {direction}"),
                        *tree,
                        *_tier_chains(
                            baseline,
                            f"Baseline tier, {direction} (a packet falling off is allowed)",
                        ),
                    ]
                dispatch[v].extend(tree)
        tables = [
            Table(v, (Chain(TOP, tuple(top[v])), *dispatch[v], *per_family[v]))
            for v in self.families
        ]
        return tables, notes

    def _in_scope(self, pod: Pod) -> bool:
        node = self.grants.node
        return node is None or pod.node_name == node or not pod.node_name


def _side_levels(
    admin: list[tuple[str, tuple[str, ...]]],
    tree: list[Chain],
    baseline: list[tuple[str, tuple[str, ...]]],
    classes: list[Chain],
) -> int:
    """The level below ``FORWARD`` of the deepest chain of a side (its entry is at 2)."""
    graph = dict((*admin, *baseline))
    graph.update((c.name, c.rules) for c in (*tree, *classes))
    return 1 + chain_depth(graph, admin[0][0])


def _tier_chains(chains: list[tuple[str, tuple[str, ...]]], note: str) -> list[Chain]:
    """A tier's chains of one side, the entry (with ``note``) first."""
    return [Chain(name, rules, note if i == 0 else "") for i, (name, rules) in enumerate(chains)]


def _family_warnings(
    grants: Grants, families: tuple[int, ...], cluster_policies: tiers.ClusterPolicySet
) -> Iterable[Diagnostic]:
    left_out = [v for v in FAMILIES if v not in families]
    for v in left_out:
        pods = {
            pod.key
            for direction in (ir.Direction.EGRESS, ir.Direction.INGRESS)
            for cls in grants.classes(direction)
            for pod in cls.pods
            if any(a.version == v for a in pod.ips)
        }
        pods |= {
            pod.key
            for policy in cluster_policies
            for pod in subject_pods(policy, grants.snapshot)
            if any(a.version == v for a in pod.ips)
        }
        if pods:
            yield Diagnostic(
                Code.NOT_ENFORCEABLE,
                Severity.WARNING,
                f"{len(pods)} isolated pod(s) have IPv{v} addresses (e.g. {min(pods)}); "
                f"without --family {v} or both, their IPv{v} traffic is not filtered",
                hint=f"use --family both (the default), or load an --family {v} ruleset too",
            )


def plan(
    policies: ir.PolicySet,
    snapshot: Snapshot,
    families: tuple[int, ...],
    use_sets: bool,
    node: str | None,
    cluster_policies: tiers.ClusterPolicySet = tiers.EMPTY,
) -> Plan:
    """The ruleset for ``policies`` (and ``cluster_policies``, in the tier chains of
    :mod:`.tiers`) over ``snapshot`` in ``families`` (4, 6 or both)."""
    grants = Grants(policies, snapshot, node)
    planner = _Planner(grants, families, use_sets, cluster_policies)
    tables, notes = planner.build()
    where = f" on node {node}" if node is not None else ""
    summary: tuple[str, ...] = (
        f"{len(policies)} NetworkPolicies over {len(snapshot.pods)} pods{where}",
    )
    if cluster_policies:
        summary += (f"{len(cluster_policies)} ClusterNetworkPolicies (admin and baseline tiers)",)
    sets = tuple(sorted(planner.sets.values(), key=lambda s: s.name))
    diagnostics = (
        *grants.diagnostics,
        *_family_warnings(grants, families, cluster_policies),
    )
    return Plan(summary, tuple(tables), sets, tuple(notes), diagnostics)
