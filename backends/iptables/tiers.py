"""ClusterNetworkPolicy tiers in iptables: ordered chains around the NetworkPolicy dispatch.

With ClusterNetworkPolicies, ``NPC-FORWARD`` always runs both sides, each a row of three
stages (``-j`` into the side's first chain, ``-g`` between the stages, so that a ``RETURN``
anywhere ends the side and ``NPC-FORWARD`` goes on with the next)::

    NPC-FORWARD:          RELATED,ESTABLISHED ACCEPT; INVALID DROP;
                          -j NPC-EGRESS; -j NPC-INGRESS
    NPC-EGRESS:           the Admin tier's egress rules in order; -g NPC-EGRESS-NP
    NPC-EGRESS-NP:        the dispatch tree of the isolated sources (-g class chains);
                          every chain of the tree ends in -g NPC-EGRESS-BASELINE
    NPC-EGRESS-BASELINE:  the Baseline tier's egress rules in order (falls off: allowed)

and the same for ingress (``NPC-INGRESS``, ``NPC-INGRESS-NP``, ``NPC-INGRESS-BASELINE``). A
rule is ``<subject addresses> <peer addresses> <ports> <verdict>``: ``Accept`` is ``RETURN``
on egress (the destination's ingress side still runs, as for a NetworkPolicy egress allow)
and ``ACCEPT`` on ingress (as for an ingress allow); ``Deny`` is ``DROP``; ``Pass`` is
``-g`` to the side's NetworkPolicy stage from the Admin tier and ``RETURN`` (the default,
allowed) from the Baseline tier. A pod some NetworkPolicy isolates is dispatched to its class
chain, whose verdict is final (the Baseline tier never sees it), also when a policy allows
it everything. Rules of one tier follow the policies' evaluation order (priority, then name)
and, within a policy, the order written: first match wins.

Subjects and pod peers resolve to the snapshot's pod addresses (host-network pods never);
``networks`` are CIDRs, ``nodes`` the addresses of matching Node objects (and of the
host-network pods on them); address sets are the backend's (one block inline, else an ipset,
or one rule per block with ``--sets none``). A named port becomes (destination address,
protocol, port) elements of the pods that declare it: a ``hash:ip,port`` set matched on
``dst,dst``, which also confines the destination (the subjects on ingress, the pod peers on
egress). With ``--sets none`` a subject of several blocks is tested once, sending its pods
to a chain with the policy's rules (``NPC-CT-<digest>``) that ends in ``-g`` to the rest of
the tier, so rules do not multiply subject blocks by peer blocks (:class:`_Segments`).
Semantics: :mod:`npc.analysis.tier_semantics`; the nftables target's
:mod:`npc.backends.nft.tiers` has the same structure.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Protocol

import netaddr

from npc import ir, tiers
from npc.backends.grants import Range, merge
from npc.backends.iptables import syntax
from npc.backends.iptables.dispatch import FANOUT, dispatch_tree
from npc.errors import Code, Diagnostic, Severity, UnsupportedError, format_path
from npc.snapshot import Pod, Snapshot

__all__ = [
    "NESTING",
    "SIDE_CHAINS",
    "AddressSets",
    "Stages",
    "TierPlanner",
    "chain_depth",
    "subject_pods",
]


@dataclass(frozen=True, slots=True)
class Stages:
    """The chains of one side: Admin tier (entered with ``-j``), NetworkPolicy dispatch,
    Baseline tier."""

    admin: str
    np: str
    baseline: str


#: Per direction, the side's chains.
SIDE_CHAINS: Final = MappingProxyType(
    {
        ir.Direction.EGRESS: Stages("NPC-EGRESS", "NPC-EGRESS-NP", "NPC-EGRESS-BASELINE"),
        ir.Direction.INGRESS: Stages("NPC-INGRESS", "NPC-INGRESS-NP", "NPC-INGRESS-BASELINE"),
    }
)
#: Per direction: (subject option, subject set flag, peer option, peer set flag, Accept).
_SIDES: Final = MappingProxyType(
    {
        ir.Direction.EGRESS: ("-s", "src", "-d", "dst", "RETURN"),
        ir.Direction.INGRESS: ("-d", "dst", "-s", "src", "ACCEPT"),
    }
)

Element = tuple[int, ir.Protocol, int]
#: The most nesting :class:`_Segments` uses: branches and trees.
NESTING: Final = 2
_TARGET: Final = re.compile(r"(?:^| )-[jg] (\S+)$")


class AddressSets(Protocol):
    """How the backend spells addresses (its set machinery, :mod:`.plan`)."""

    def address_matches(
        self, version: int, ranges: list[Range], option: str, direction_word: str
    ) -> list[str]: ...

    def port_element_matches(
        self, version: int, elements: list[Element]
    ) -> list[tuple[str, str]]: ...


def subject_pods(policy: tiers.ClusterPolicy, snapshot: Snapshot) -> list[Pod]:
    """The pods ``policy`` applies to (rule T1: never host-network pods)."""
    return _pods(snapshot, policy.subject.namespaces, policy.subject.pods)


def _pods(snapshot: Snapshot, namespaces: ir.LabelSelector, pods: ir.LabelSelector) -> list[Pod]:
    return [
        p
        for p in snapshot.pods
        if not p.host_network
        and pods.matches(p.labels)
        and namespaces.matches(snapshot.namespace_labels(p.namespace))
    ]


def _inline_blocks(parts: list[str]) -> tuple[str, int, list[Range]] | None:
    """``(option, version, blocks)`` when every part is one inline ``-s``/``-d`` CIDR block
    with the same option (``--sets none``), else None."""
    options = {part[:3] for part in parts}
    if len(options) != 1 or options.pop() not in ("-s ", "-d "):
        return None
    nets = [netaddr.IPNetwork(part[3:]) for part in parts]
    if len({n.version for n in nets}) != 1 or any(" " in part[3:] for part in parts):
        return None
    return parts[0][:2], nets[0].version, [(n.first, n.last) for n in nets]


def chain_depth(chains: Mapping[str, Sequence[str]], start: str) -> int:
    """How many chains the longest path of ``-j``/``-g`` from ``start`` passes (``start``
    itself counts one; chains not in ``chains`` jump nowhere)."""
    targets = {
        name: {m[1] for rule in rules if (m := _TARGET.search(rule)) and m[1] in chains}
        for name, rules in chains.items()
    }
    depth: dict[str, int] = {}

    def walk(name: str) -> int:
        if name not in depth:
            depth[name] = 1 + max((walk(t) for t in targets.get(name, ())), default=0)
        return depth[name]

    order = [start]  # deepest first, without recursion: trees of trees get deep
    seen = {start}
    for name in order:
        for t in sorted(targets.get(name, ())):
            if t not in seen:
                seen.add(t)
                order.append(t)
    for name in reversed(order):
        walk(name)
    return walk(start)


class _Segments:
    """A tier's rules as chains, kept linear in size and shallow to walk with ``--sets
    none``, where addresses are inline blocks rather than sets:

    * a rule that would be the product of two lists (subject blocks x peer blocks, peer
      blocks x named-port elements) is a branch: each test of the first list ``-g`` to a
      chain holding the second, which ends, like the chain the tests are in, in ``-g`` to a
      continuation chain holding the rest of the tier;
    * a list of more than :data:`.dispatch.FANOUT` blocks is tested through a prefix tree
      (:func:`.dispatch.dispatch_tree`) whose chains all end in ``-g`` to the continuation.

    Every move is a goto, so ``RETURN`` still ends the side from anywhere."""

    def __init__(self, entry: str, identity: str, nesting: int) -> None:
        self.chains: list[tuple[str, list[str]]] = [(entry, [])]
        self.identity = identity
        self.branches = nesting >= 1
        self.trees = nesting >= 2
        self.resume: list[str] = []
        self.count = 0

    def add(self, rule: str) -> None:
        self.chains[-1][1].append(rule)

    def result(self) -> list[tuple[str, tuple[str, ...]]]:
        """The chains, the entry first, with every chain that only goes on (``-g X``) left
        out and the gotos to it sent to ``X`` directly: fewer levels to walk and to nest."""
        forward = {
            name: rules[0][3:]
            for name, rules in self.chains[1:]
            if len(rules) == 1 and rules[0].startswith("-g ") and " " not in rules[0][3:]
        }

        def final(name: str) -> str:
            while name in forward:
                name = forward[name]
            return name

        out = []
        for name, rules in self.chains:
            if name in forward:
                continue
            fixed = []
            for rule in rules:
                m = _TARGET.search(rule)
                redirected = m is not None and m[1] in forward
                fixed.append(rule[: m.start(1)] + final(m[1]) if m and redirected else rule)
            out.append((name, tuple(fixed)))
        return out

    def _name(self) -> str:
        self.count += 1
        return syntax.chain_name("CT", f"{self.identity}/{self.count}")

    def _tree(
        self, fixed: list[str], blocks: tuple[str, int, list[Range]], targets: list[str]
    ) -> str:
        """Test ``fixed`` and then each block (going to its target chain) through a tree;
        returns the continuation, where a packet matching none goes on (not yet current)."""
        option, version, ranges = blocks
        root, after = self._name(), self._name()
        self.add(syntax.rule_body(fixed, "", f"-g {root}"))
        if any(fixed):
            self.add(f"-g {after}")

        def child(first: int, length: int) -> str:
            return syntax.chain_name("CT", f"{self.identity}/{root}/{first}/{length}")

        pairs = sorted(zip(ranges, targets, strict=True))
        for c in dispatch_tree(root, version, option, pairs, child):
            self.chains.append((c.name, [*c.rules, f"-g {after}"]))
        return after

    def branch(self, fixed: list[str], tests: list[str], tag: str) -> None:
        """``fixed`` and one of ``tests`` go to a new chain, which the rules added next fill,
        up to :meth:`end`; a packet matching none goes on after them."""
        inner = self._name()
        blocks = _inline_blocks(tests) if self.trees and len(tests) > FANOUT else None
        if blocks is not None:
            after = self._tree(fixed, blocks, [inner] * len(tests))
        else:
            after = self._name()
            for test in tests:
                self.add(syntax.rule_body([*fixed, test], "", tag, f"-g {inner}"))
            self.add(f"-g {after}")
        self.chains.append((inner, []))
        self.resume.append(after)

    def end(self) -> None:
        """Close the innermost branch: its chain ends in the continuation, which comes next."""
        after = self.resume.pop()
        self.add(f"-g {after}")
        self.chains.append((after, []))

    def alternatives(
        self, fixed: list[str], items: list[tuple[str, str]], tag: str, verdict: str
    ) -> None:
        """Rules for ``fixed`` and one of ``items`` ((address part, port part) pairs)."""
        long = self.trees and len(items) > FANOUT
        blocks = _inline_blocks([a for a, _ in items]) if long else None
        if blocks is None:
            for address, ports in items:
                self.add(syntax.rule_body([*fixed, address], ports, tag, verdict))
            return
        # One leaf chain per distinct list of port rules; the tree sends each block there.
        by_block: dict[Range, list[str]] = {}
        for block, (_, ports) in zip(blocks[2], items, strict=True):
            by_block.setdefault(block, []).append(syntax.rule_body([], ports, tag, verdict))
        leaves: dict[tuple[str, ...], str] = {}
        for rules in by_block.values():
            if tuple(rules) not in leaves:
                leaves[tuple(rules)] = self._name()
        unique = (blocks[0], blocks[1], list(by_block))
        after = self._tree(fixed, unique, [leaves[tuple(r)] for r in by_block.values()])
        for leaf, name in leaves.items():
            self.chains.append((name, [*leaf, f"-g {after}"]))
        self.chains.append((after, []))

    def conjunction(
        self,
        fixed: list[str],
        first: list[str],
        second: list[tuple[str, str]],
        tag: str,
        verdict: str,
    ) -> None:
        """Rules for ``fixed`` and one of ``first`` (address parts) and one of ``second``
        ((address part, port part) pairs)."""
        if self.branches and len(first) > 1 and len(second) > 1:
            self.branch(fixed, first, tag)
            self.alternatives([], second, tag, verdict)
            self.end()
        elif len(second) == 1:
            address, ports = second[0]
            self.alternatives([*fixed, address], [(a, ports) for a in first], tag, verdict)
        else:
            for a in first:
                self.alternatives([*fixed, a], second, tag, verdict)


class TierPlanner:
    """The Admin and Baseline chains of one address family (module docstring)."""

    def __init__(
        self,
        policies: tiers.ClusterPolicySet,
        snapshot: Snapshot,
        in_scope: Callable[[Pod], bool],
        sets: AddressSets,
    ) -> None:
        self.policies = policies
        self.snapshot = snapshot
        self.in_scope = in_scope
        self.sets = sets

    def admin(
        self, direction: ir.Direction, version: int, nesting: int = NESTING
    ) -> list[tuple[str, tuple[str, ...]]]:
        """The Admin tier's chains of a side, ``(name, rules)``, the side's entry first; the
        last ends in ``-g`` to the NetworkPolicy stage. ``nesting``: 2 for branches and
        trees, 1 for branches only, 0 for one chain of flat rules (see :class:`_Segments`:
        less nesting is longer, and never deeper)."""
        entry = SIDE_CHAINS[direction].admin
        chains = self._tier(tiers.Tier.ADMIN, entry, direction, version, nesting)
        chains.add(f"-g {SIDE_CHAINS[direction].np}")
        return chains.result()

    def baseline(
        self, direction: ir.Direction, version: int, nesting: int = NESTING
    ) -> list[tuple[str, tuple[str, ...]]]:
        """The Baseline tier's chains of a side (a packet falling off the end is allowed);
        ``nesting`` as for :meth:`admin`."""
        entry = SIDE_CHAINS[direction].baseline
        chains = self._tier(tiers.Tier.BASELINE, entry, direction, version, nesting)
        return chains.result()

    def _tier(
        self, tier: tiers.Tier, entry: str, direction: ir.Direction, version: int, nesting: int
    ) -> _Segments:
        out = _Segments(entry, f"{version} {entry}", nesting)
        for policy in self.policies.tier(tier):
            self._policy(out, policy, direction, version)
        return out

    def _verdict(self, action: tiers.Action, tier: tiers.Tier, direction: ir.Direction) -> str:
        if action is tiers.Action.ACCEPT:
            return f"-j {_SIDES[direction][4]}"
        if action is tiers.Action.DENY:
            return "-j DROP"
        if tier is tiers.Tier.ADMIN:  # Pass: the rest of the Admin tier is skipped
            return f"-g {SIDE_CHAINS[direction].np}"
        return "-j RETURN"  # Pass out of the Baseline tier: the default, allowed

    def _policy(
        self, out: _Segments, policy: tiers.ClusterPolicy, direction: ir.Direction, version: int
    ) -> None:
        rules = policy.rules(direction)
        if not rules:
            return
        subjects = [p for p in subject_pods(policy, self.snapshot) if self.in_scope(p)]
        subject_ranges = merge(
            (a.value, a.value) for p in subjects for a in p.ips if a.version == version
        )
        s_option, s_word, p_option, p_word, _ = _SIDES[direction]
        subject_parts = self.sets.address_matches(version, subject_ranges, s_option, s_word)
        if not subject_parts:
            return
        branched = out.branches and len(subject_parts) > 1
        if branched:  # --sets none: test the subject once, then the rules
            out.branch([], subject_parts, f"-m comment --comment {syntax.comment(policy.name)}")
            subject_parts = [""]
        for i, rule in enumerate(rules):
            what = f"{policy.name} {direction} rule {i} {rule.action}"
            tag = f"-m comment --comment {syntax.comment(what)}"
            verdict = self._verdict(rule.action, policy.tier, direction)
            peers = self._peers(policy, direction, i, rule, version)
            if peers is None:  # every address: a named port of any pod's, fail closed
                peer_parts = [""]
                peer_pods = list(self.snapshot.pods)
            else:
                ranges, peer_pods = peers
                peer_parts = self.sets.address_matches(version, ranges, p_option, p_word)
                if not peer_parts:
                    continue  # the peers hold no address of this family: nothing matches
            numeric = [("", ports) for ports in self._numeric(rule.ports)]
            if numeric:
                for subject in subject_parts:  # one, unless nesting is off
                    out.conjunction([subject], peer_parts, numeric, tag, verdict)
            # A named port confines the destination: the subjects on ingress, the pod peers
            # on egress; the other side is matched as above.
            destinations = subjects if direction == ir.Direction.INGRESS else peer_pods
            elements = self._elements(rule.ports, destinations, version)
            if not elements:
                continue
            named = self.sets.port_element_matches(version, elements)
            if direction == ir.Direction.INGRESS:
                out.conjunction([], peer_parts, named, tag, verdict)
            else:
                out.conjunction([], subject_parts, named, tag, verdict)
        if branched:
            out.end()

    def _peers(
        self,
        policy: tiers.ClusterPolicy,
        direction: ir.Direction,
        index: int,
        rule: tiers.ClusterRule,
        version: int,
    ) -> tuple[list[Range], list[Pod]] | None:
        """The address ranges of ``version`` the rule's peers match and its pod peers;
        None when they match every address (an unknown peer in a Deny or Pass rule)."""
        addresses: list[Range] = []
        pods: list[Pod] = []
        for j, peer in enumerate(rule.peers):
            if isinstance(peer, ir.PodPeer):
                if not isinstance(peer.namespaces, ir.LabelSelector):  # not made by the frontend
                    raise AssertionError("a ClusterNetworkPolicy peer has no namespace selector")
                matched = _pods(self.snapshot, peer.namespaces, peer.pods)
                pods.extend(matched)
                addresses += [
                    (a.value, a.value) for p in matched for a in p.ips if a.version == version
                ]
            elif isinstance(peer, ir.AddressPeer):
                addresses += [
                    (c.first, c.last) for c in peer.addresses.cidrs if c.version == version
                ]
            elif isinstance(peer, tiers.NodesPeer):
                nodes = {n.name for n in self.snapshot.nodes if peer.nodes.matches(n.labels)}
                found = [a for n in self.snapshot.nodes if n.name in nodes for _, a in n.addresses]
                found += [
                    a
                    for p in self.snapshot.pods
                    if p.host_network and p.node_name in nodes
                    for a in p.ips
                ]
                addresses += [(a.value, a.value) for a in found if a.version == version]
            elif isinstance(peer, tiers.UnknownPeer):
                if rule.action is not tiers.Action.ACCEPT:
                    return None  # fail closed: it matches everything
            else:  # domainNames: refused before emitting (capabilities.check_cluster)
                raise UnsupportedError(_refusal(policy, direction, index, j, "domainNames peers"))
        return merge(addresses), pods

    @staticmethod
    def _numeric(ports: ir.Ports) -> list[str]:
        """The protocol and numeric port parts of a rule's matches, one per rule ("" for
        every protocol and port); empty when only named ports are listed."""
        if isinstance(ports, ir.AnyPort):
            return [""]
        return [
            match
            for entry in ports.entries
            if entry.ranges
            for match in syntax.port_matches(
                entry.protocol, merge((r.start, r.end) for r in entry.ranges)
            )
        ]

    @staticmethod
    def _elements(ports: ir.Ports, destinations: list[Pod], version: int) -> list[Element]:
        """(address, protocol, port) of each destination pod's container ports of the
        names ``ports`` lists, in ``version``."""
        if isinstance(ports, ir.AnyPort):
            return []
        found: set[Element] = set()
        for entry in ports.entries:
            for name in entry.named:
                for pod in destinations:
                    for number in pod.named_port_numbers(name, entry.protocol):
                        found.update(
                            (a.value, entry.protocol, number)
                            for a in pod.ips
                            if a.version == version
                        )
        return sorted(found, key=lambda e: (e[0], e[1].value, e[2]))


def _refusal(
    policy: tiers.ClusterPolicy, direction: str, index: int, peer: int, what: str
) -> Diagnostic:
    path = ("spec", direction, index, ir.Direction(direction).peer_field, peer)
    return Diagnostic(
        Code.UNSUPPORTED,
        Severity.ERROR,
        f"ClusterNetworkPolicy {policy.name}: target iptables cannot express {what}",
        format_path(path),
        None,
        "nothing was emitted",
        policy.origin.child(path) if policy.origin is not None else None,
    )
