"""ClusterNetworkPolicy tiers in nftables: ordered chains around the NetworkPolicy dispatch.

With ClusterNetworkPolicies the forward chain runs one side after the other, each side a
chain of stages (``jump`` into the side, ``goto`` between its stages, so a ``return``
anywhere ends the side and the base chain goes on to the next)::

    forward:              ct state ...; jump cnp-egress; jump cnp-ingress   (policy accept)
    cnp-egress:           the Admin tier's egress rules in order; goto cnp-egress-np
    cnp-egress-np:        ip saddr vmap @egress-v4 (goto class chains); goto cnp-egress-baseline
    cnp-egress-baseline:  the Baseline tier's egress rules in order (falls back: allowed)

and the same for ingress. A rule is ``<subject addresses> <peer addresses> <ports>
<verdict>``: ``Accept`` is ``return`` on egress (the destination's ingress side still runs)
and ``accept`` on ingress; ``Deny`` is ``drop``; ``Pass`` is a ``goto`` past the rest of its
tier (to NetworkPolicy from Admin, out of the side from Baseline). A pod some
NetworkPolicy isolates is dispatched to its class chain, which decides (its verdict is final:
the Baseline tier never sees it), also when a policy allows it everything.

Subjects and pod peers resolve to the snapshot's pod addresses (host-network pods never);
``networks`` are CIDRs, ``nodes`` the addresses of matching Node objects; a named port
becomes (destination address, protocol, port) elements of the pods that declare it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

import netaddr

from npc import ir, tiers
from npc.backends.grants import Range
from npc.backends.nft import syntax as nft_syntax
from npc.backends.nft.elements import SetContent
from npc.snapshot import Pod, Snapshot

__all__ = ["SIDE_CHAINS", "TierChain", "TierPlan", "plan_tiers"]

#: Per direction: the side's entry chain, its NetworkPolicy stage, its Baseline stage.
SIDE_CHAINS: Final = MappingProxyType(
    {
        "egress": ("cnp-egress", "cnp-egress-np", "cnp-egress-baseline"),
        "ingress": ("cnp-ingress", "cnp-ingress-np", "cnp-ingress-baseline"),
    }
)
_SUBJECT_SIDE = {"egress": "saddr", "ingress": "daddr"}
_PEER_SIDE = {"egress": "daddr", "ingress": "saddr"}
_ACCEPT = {"egress": "return", "ingress": "accept"}


@dataclass(frozen=True, slots=True)
class TierChain:
    """A chain of the tier structure: ``rules`` in order."""

    name: str
    comment: str
    rules: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TierPlan:
    """The tier chains (in output order) and the sets they use, as ``(name, content)``."""

    chains: tuple[TierChain, ...]
    sets: tuple[tuple[str, SetContent], ...]


def _ip(version: int) -> str:
    return "ip" if version == 4 else "ip6"


def _host_set(version: int, addresses: Iterable[netaddr.IPAddress]) -> SetContent | None:
    values = sorted({a.value for a in addresses if a.version == version})
    if not values:
        return None
    return SetContent("addr", version, False, tuple(((v, v),) for v in values))


def _block_set(version: int, addresses: ir.AddressSet) -> SetContent | None:
    blocks = [(c.first, c.last) for c in addresses.family(version).cidrs]
    if not blocks:
        return None
    interval = any(lo != hi for lo, hi in blocks)
    return SetContent("addr", version, interval, tuple((b,) for b in blocks))


class _TierPlanner:
    def __init__(
        self,
        policies: tiers.ClusterPolicySet,
        snapshot: Snapshot,
        in_scope: Callable[[Pod], bool],
        unique: Callable[[str, SetContent], str],
    ) -> None:
        self.policies = policies
        self.snapshot = snapshot
        self.in_scope = in_scope
        self.unique = unique
        self.sets: dict[tuple[object, ...], str] = {}
        self.ordered_sets: list[tuple[str, SetContent]] = []
        self._node_labels = {n.name: n.labels for n in snapshot.nodes}

    def _set(self, candidate: str, content: SetContent) -> str:
        found = self.sets.get(content.key)
        if found is None:
            found = self.unique(candidate, content)
            self.sets[content.key] = found
            self.ordered_sets.append((found, content))
        return found

    def _pods(self, namespaces: ir.LabelSelector, pods: ir.LabelSelector) -> list[Pod]:
        return [
            p
            for p in self.snapshot.pods
            if not p.host_network
            and pods.matches(p.labels)
            and namespaces.matches(self.snapshot.namespace_labels(p.namespace))
        ]

    def _peer_addresses(self, rule: tiers.ClusterRule) -> tuple[ir.AddressSet, list[Pod]] | None:
        """The addresses the rule's peers match (None: every address) and its pod peers."""
        addresses = ir.AddressSet(())
        pods: list[Pod] = []
        for peer in rule.peers:
            if isinstance(peer, ir.PodPeer):
                assert isinstance(peer.namespaces, ir.LabelSelector)
                matched = self._pods(peer.namespaces, peer.pods)
                pods.extend(matched)
                addresses = addresses.union(
                    ir.AddressSet(tuple(netaddr.IPNetwork(a) for p in matched for a in p.ips))
                )
            elif isinstance(peer, ir.AddressPeer):
                addresses = addresses.union(peer.addresses)
            elif isinstance(peer, tiers.NodesPeer):
                nodes = {n.name for n in self.snapshot.nodes if peer.nodes.matches(n.labels)}
                found = [a for n in self.snapshot.nodes if n.name in nodes for _, a in n.addresses]
                found += [
                    a
                    for p in self.snapshot.pods
                    if p.host_network and p.node_name in nodes
                    for a in p.ips
                ]
                addresses = addresses.union(
                    ir.AddressSet(tuple(netaddr.IPNetwork(a) for a in found))
                )
            elif isinstance(peer, tiers.UnknownPeer):
                if rule.action is not tiers.Action.ACCEPT:
                    return None
            else:  # DomainNamesPeer: refused before emitting (capabilities.check_cluster)
                raise AssertionError("domainNames reached the nft backend")
        return addresses, pods

    def _port_matches(self, ports: ir.Ports) -> list[str] | None:
        """Numeric port matches (one rule each); None when every port matches."""
        if isinstance(ports, ir.AnyPort):
            return None
        out = []
        for entry in ports.entries:
            if not entry.ranges:
                continue
            proto = nft_syntax.protocol(entry.protocol)
            texts = [nft_syntax.port_range(r.start, r.end) for r in entry.ranges]
            spec = texts[0] if len(texts) == 1 else "{ " + ", ".join(texts) + " }"
            out.append(f"meta l4proto {proto} th dport {spec}")
        return out

    def _named_set(
        self, ports: ir.Ports, destinations: list[Pod], version: int, candidate: str
    ) -> str | None:
        """(destination address . protocol . port) for the named ports of ``ports``."""
        if isinstance(ports, ir.AnyPort):
            return None
        elements: set[tuple[Range, ir.Protocol, Range]] = set()
        for entry in ports.entries:
            for name in entry.named:
                for pod in destinations:
                    for number in pod.named_port_numbers(name, entry.protocol):
                        for a in pod.ips:
                            if a.version == version:
                                elements.add(((a.value, a.value), entry.protocol, (number, number)))
        if not elements:
            return None
        content = SetContent("port", version, False, tuple(sorted(elements)))
        return self._set(candidate, content)

    def _rules(self, policy: tiers.ClusterPolicy, direction: str, version: int) -> list[str]:
        subjects = [
            p
            for p in self._pods(policy.subject.namespaces, policy.subject.pods)
            if self.in_scope(p)
        ]
        subject_set = _host_set(version, (a for p in subjects for a in p.ips))
        if subject_set is None:
            return []
        base = f"cnp/{policy.name}"
        subject_name = self._set(f"{base}/subject-v{version}", subject_set)
        ip = _ip(version)
        out = []
        for i, rule in enumerate(policy.rules(direction)):
            verdict = self._verdict(rule.action, direction, policy.tier)
            tag = f"comment {nft_syntax.comment(f'{policy.name} {direction}[{i}] {rule.action}')}"
            head = f"{ip} {_SUBJECT_SIDE[direction]} @{subject_name}"
            peers = self._peer_addresses(rule)
            peer_match = ""
            # Where a named port resolves: the subjects for ingress; for egress the pod
            # peers, or every pod when an unknown peer matches everything (fail closed).
            destinations: list[Pod] = (
                subjects
                if direction == "ingress"
                else [p for p in self.snapshot.pods if not p.host_network]
            )
            if peers is not None:
                addresses, pods = peers
                content = _block_set(version, addresses)
                if content is None:
                    continue  # matches nothing in this family
                name = self._set(f"{base}/{direction}/{i}/peers-v{version}", content)
                peer_match = f" {ip} {_PEER_SIDE[direction]} @{name}"
                if direction == "egress":
                    destinations = pods
            numeric = self._port_matches(rule.ports)
            named = self._named_set(
                rule.ports, destinations, version, f"{base}/{direction}/{i}/named-v{version}"
            )
            if numeric is None:
                out.append(f"{head}{peer_match} {verdict} {tag}")
                continue
            for match in numeric:
                out.append(f"{head}{peer_match} {match} {verdict} {tag}")
            if named is not None:
                out.append(
                    f"{head}{peer_match} {ip} daddr . meta l4proto . th dport @{named} "
                    f"{verdict} {tag}"
                )
        return out

    @staticmethod
    def _verdict(action: tiers.Action, direction: str, tier: tiers.Tier) -> str:
        if action is tiers.Action.ACCEPT:
            return _ACCEPT[direction]
        if action is tiers.Action.DENY:
            return "drop"
        np_stage = SIDE_CHAINS[direction][1]
        if tier is tiers.Tier.ADMIN:
            return f"goto {np_stage}"
        return _ACCEPT[direction]  # Pass out of the Baseline tier: the default, allowed

    def tier_rules(self, tier: tiers.Tier, direction: str) -> list[str]:
        out: list[str] = []
        for policy in self.policies.tier(tier):
            for version in (4, 6):
                out.extend(self._rules(policy, direction, version))
        return out


def plan_tiers(
    policies: tiers.ClusterPolicySet,
    snapshot: Snapshot,
    in_scope: Callable[[Pod], bool],
    unique: Callable[[str, SetContent], str],
    dispatch: dict[str, list[str]],
) -> TierPlan:
    """The tier chains; ``dispatch[direction]`` are the NetworkPolicy stage's vmap lines
    (verdicts ``goto``); ``unique`` makes a set name valid and unused."""
    planner = _TierPlanner(policies, snapshot, in_scope, unique)
    chains = []
    for direction in ir.DIRECTIONS:
        entry, np_stage, baseline = SIDE_CHAINS[direction]
        admin = planner.tier_rules(tiers.Tier.ADMIN, direction)
        base = planner.tier_rules(tiers.Tier.BASELINE, direction)
        chains.append(TierChain(entry, f"Admin tier, {direction}", (*admin, f"goto {np_stage}")))
        chains.append(
            TierChain(
                np_stage,
                f"NetworkPolicy, {direction}",
                (*dispatch.get(direction, ()), f"goto {baseline}"),
            )
        )
        chains.append(
            TierChain(baseline, f"Baseline tier, {direction}", (*base, _ACCEPT[direction]))
        )
    return TierPlan(tuple(chains), tuple(planner.ordered_sets))
