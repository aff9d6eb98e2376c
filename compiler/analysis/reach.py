"""Who can reach whom: the pod-to-pod reachability matrix, computed on equivalence classes.

The reference semantics (:mod:`npc.analysis.semantics`) answer one flow at a time; asking them about
every pair of 10,000 pods means 10^8 questions per probed port. This engine asks far fewer:

1. **Classes.** Pods are grouped into classes that no policy can tell apart: the same answer
   from every policy podSelector and peer podSelector (their labels, projected onto the values
   selectors mention), from every namespace selector (their namespace's labels) and, for
   namespaces that hold policies, the same namespace; the same elementary address interval
   of every ipBlock (per address family); the same numbers for every named port a rule
   mentions; the same hostNetwork flag; the same node, where a hostNetwork pod stands for it
   (a pod and its own node always connect). Every input the oracle looks at is in that key, so
   two pods of one class get the same verdict against any third pod (replicas of a
   Deployment are the typical class).
2. **Class matrix.** Per probed (port, protocol) the matrix is computed on classes with set
   algebra, the oracle's rules lifted to bitsets of classes (Python ints): the egress side of
   a source class is the union, over the egress rules selecting it, of the classes the rule's
   peers match and whose ports the rule admits; the ingress side is built transposed (for
   each source, the destinations whose ingress rules admit it), so a pair's verdict is one
   AND. Address families are evaluated separately and combined as the oracle does (a pair
   connects when some family both pods have allows it; no shared family, no connection).
3. **Expansion on demand.** A pod pair's verdict is its classes' bit, except that a pod always
   reaches itself (semantics rule 7): the diagonal of a class with two or more members is
   evaluated as two distinct pods, which is exactly what the class matrix holds.

The oracle is never bypassed in spirit: ``tests/test_reach.py`` checks this engine against
:meth:`npc.analysis.semantics.Semantics.pod_allowed` pair by pair on random clusters, and the
benchmark ``bench/reach_bench.py`` measures both.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from npc import ir
from npc.flows import Probe, node_addresses
from npc.intervals import FAMILIES
from npc.resolve import PodSet, Resolver, bit_indices
from npc.snapshot import Pod, Snapshot

__all__ = [
    "ClassMatrix",
    "PodClass",
    "Reach",
    "port_classes",
]



@dataclass(frozen=True, slots=True)
class PodClass:
    """Pods no policy can tell apart, in snapshot order; ``bits`` is their :class:`PodSet`
    bitset."""

    index: int
    pods: tuple[Pod, ...]
    bits: int

    @property
    def representative(self) -> Pod:
        return self.pods[0]

    def __len__(self) -> int:
        return len(self.pods)


@dataclass(frozen=True, slots=True)
class ClassMatrix:
    """The verdicts of one probe between classes.

    ``rows[s]`` is the bitset of destination classes that a pod of class ``s`` may connect to,
    for two *distinct* pods (a pod always reaches itself; see :meth:`Reach.allowed`)."""

    probe: Probe
    rows: tuple[int, ...]

    def allows(self, src: int, dst: int) -> bool:
        return bool(self.rows[src] >> dst & 1)


@dataclass(slots=True)
class _Vocabulary:
    """What the policies look at: selectors, namespaces, addresses, port names."""

    policy_namespaces: set[str] = field(default_factory=set)
    pod_selectors: set[ir.LabelSelector] = field(default_factory=set)
    namespace_selectors: set[ir.LabelSelector] = field(default_factory=set)
    address_sets: set[ir.AddressSet] = field(default_factory=set)
    named_ports: set[tuple[str, ir.Protocol]] = field(default_factory=set)

    @classmethod
    def of(cls, policies: Iterable[ir.Policy]) -> _Vocabulary:
        vocab = cls()
        for policy in policies:
            vocab.policy_namespaces.add(policy.namespace)
            vocab.pod_selectors.add(policy.pod_selector)
            for rules in (policy.ingress or (), policy.egress or ()):
                for rule in rules:
                    vocab._rule(rule)
        return vocab

    def _rule(self, rule: ir.Rule) -> None:
        if isinstance(rule.peers, tuple):
            for peer in rule.peers:
                if isinstance(peer, ir.AddressPeer):
                    self.address_sets.add(peer.addresses)
                else:
                    self.pod_selectors.add(peer.pods)
                    if isinstance(peer.namespaces, ir.LabelSelector):
                        self.namespace_selectors.add(peer.namespaces)
        if isinstance(rule.ports, ir.PortSet):
            for entry in rule.ports.entries:
                self.named_ports.update((name, entry.protocol) for name in entry.named)


class _Intervals:
    """Elementary address intervals of one family: no address set used by a policy splits
    one, so pods in the same interval are indistinguishable to every ipBlock."""

    def __init__(self, version: int, sets: Iterable[ir.AddressSet]) -> None:
        bounds: set[int] = set()
        for addresses in sets:
            for cidr in addresses.cidrs:
                if cidr.version == version:
                    bounds.add(cidr.first)
                    bounds.add(cidr.last + 1)
        self.bounds = sorted(bounds)
        #: Interval indices holding at least one class (ascending), and their classes.
        self.occupied: list[int] = []
        self.classes: list[int] = []

    def index(self, address: int) -> int:
        return bisect.bisect_right(self.bounds, address)


def port_classes(
    ports: ir.Ports, probe: Probe, everything: int, named: Callable[[str], int]
) -> int:
    """Destination classes for which ``ports`` admits ``probe`` (rule 5): ``everything`` for a
    number or range that holds it, else the union of ``named(name)`` (the classes giving the
    probe's port that name) over the names listed for its protocol."""
    if isinstance(ports, ir.AnyPort):
        return everything
    entry = ports.get(probe.protocol)
    if entry is None:
        return 0
    if any(probe.port in r for r in entry.ranges):
        return everything
    found = 0
    for name in entry.named:
        found |= named(name)
    return found


class Reach:
    """Reachability between the pods of one snapshot under one set of policies.

    Classes are computed at construction; class matrices per probe on first use (and shared
    between probes that every rule treats alike). Instances cache; create one per
    (policies, snapshot) and reuse it."""

    def __init__(
        self, policies: ir.PolicySet, snapshot: Snapshot, resolver: Resolver | None = None
    ) -> None:
        self.policies = policies
        self.snapshot = snapshot
        self.resolver = resolver if resolver is not None else Resolver(snapshot)
        self.pods: tuple[Pod, ...] = self.resolver.pods
        vocab = self._vocabulary()
        self._vocab = vocab
        self._intervals = {v: _Intervals(v, vocab.address_sets) for v in FAMILIES}
        self._named = sorted(vocab.named_ports)
        self._node_addresses = node_addresses(snapshot)
        #: Nodes some hostNetwork pod of the snapshot stands for (rule 8 applies there).
        self._host_nodes = {
            self._node_addresses.get(a) for p in self.pods if p.host_network for a in p.ips
        } - {None}
        self._class_of: list[int] = [0] * len(self.pods)
        self.classes: tuple[PodClass, ...] = self._partition()
        # One pod per class (its first): a selector's pods map to classes through these.
        rep_mask = 0
        for c in self.classes:
            rep_mask |= c.bits & -c.bits
        self._rep_mask = rep_mask
        self.all_classes = (1 << len(self.classes)) - 1
        self._class_attributes()
        # Every isolating rule, numbered; per direction the isolating policies with the
        # classes they select and the numbers of their rules.
        rules: list[tuple[ir.Policy, ir.Rule]] = []
        self._isolating: dict[str, list[tuple[ir.Policy, int, list[int]]]] = {}
        for direction in ("egress", "ingress"):
            entries = self._isolating[direction] = []
            for policy in policies:
                policy_rules = policy.rules(direction)
                if policy_rules is None:
                    continue
                selected = self._selected(policy)
                if not selected:
                    continue
                numbers = []
                for rule in policy_rules:
                    numbers.append(len(rules))
                    rules.append((policy, rule))
                entries.append((policy, selected, numbers))
        self._rules: tuple[tuple[ir.Policy, ir.Rule], ...] = tuple(rules)
        self._peer_cache: dict[tuple[str, int, int], int] = {}
        self._bits_cache: dict[int, int] = {}
        self._address_cache: dict[tuple[int, ir.AddressSet], int] = {}
        self._named_cache: dict[tuple[str, ir.Protocol, int], int] = {}
        self._matrices: dict[Probe, ClassMatrix] = {}
        self._by_ports: dict[tuple[int, ...], tuple[int, ...]] = {}

    # -- classes --------------------------------------------------------------------------

    def _vocabulary(self) -> _Vocabulary:
        """What the classes must tell apart (a subclass that reads more adds to it)."""
        return _Vocabulary.of(self.policies)

    def _namespace_keys(self) -> dict[str, int]:
        """Namespace -> key: its own name if it holds policies, else which namespace
        selectors match it (namespaces nothing tells apart share a key)."""
        matching = [
            frozenset(self.resolver.namespaces_matching(sel))
            for sel in sorted(self._vocab.namespace_selectors, key=str)
        ]
        keys: dict[object, int] = {}
        result: dict[str, int] = {}
        for name in sorted({p.namespace for p in self.pods}):
            key: object = name
            if name not in self._vocab.policy_namespaces:
                key = tuple(name in m for m in matching)
            result[name] = keys.setdefault(key, len(keys))
        return result

    def _label_projection(self) -> tuple[tuple[str, ...], dict[str, frozenset[str]]]:
        """Label keys selectors look at, and per key the values they mention."""
        mentioned: dict[str, set[str]] = {}
        for sel in self._vocab.pod_selectors:
            for req in sel.requirements:
                mentioned.setdefault(req.key, set()).update(req.values)
        keys = tuple(sorted(mentioned))
        return keys, {k: frozenset(v) for k, v in mentioned.items()}

    def _node_key(self, pod: Pod) -> object:
        """What rule 8 (a pod and its own node always connect) sees of a pod: for a
        hostNetwork pod, the node each of its addresses belongs to; for another pod, its
        node when some hostNetwork pod stands for that node (None otherwise, so that pods
        on nodes without one still share classes)."""
        if pod.host_network:
            return tuple(
                None if (a := pod.ip(v)) is None else self._node_addresses.get(a) for v in FAMILIES
            )
        return pod.node_name if pod.node_name in self._host_nodes else None

    def _partition(self) -> tuple[PodClass, ...]:
        ns_keys = self._namespace_keys()
        label_keys, values = self._label_projection()
        other = 1  # stands for "a value no selector mentions" (never equal to a str)
        groups: dict[tuple[object, ...], int] = {}  # key -> class index
        members: list[list[int]] = []
        for i, pod in enumerate(self.pods):
            labels = pod.labels
            projected = tuple(
                None if (v := labels.get(k)) is None else (v if v in values[k] else other)
                for k in label_keys
            )
            addresses = tuple(
                None if (a := pod.ip(v)) is None else self._intervals[v].index(int(a))
                for v in FAMILIES
            )
            named: tuple[tuple[int, ...], ...] = ()
            if not pod.host_network:
                named = tuple(
                    tuple(
                        sorted(
                            {cp.port for cp in pod.ports if cp.name == n and cp.protocol is proto}
                        )
                    )
                    for n, proto in self._named
                )
            key: tuple[object, ...] = (
                ns_keys[pod.namespace],
                projected,
                addresses,
                named,
                pod.host_network,
                self._node_key(pod),
            )
            index = groups.get(key)
            if index is None:
                index = groups[key] = len(members)
                members.append([])
            members[index].append(i)
            self._class_of[i] = index
        classes = []
        for index, indices in enumerate(members):
            bits = 0
            for i in indices:
                bits |= 1 << i
            classes.append(PodClass(index, tuple(self.pods[i] for i in indices), bits))
        return tuple(classes)

    def _class_attributes(self) -> None:
        self._family_bits = dict.fromkeys(FAMILIES, 0)
        self._versions: list[tuple[int, ...]] = []
        self._by_namespace: dict[str, list[int]] = {}
        for c in self.classes:
            rep = c.representative
            versions = tuple(v for v in FAMILIES if rep.ip(v) is not None)
            self._versions.append(versions)
            for v in versions:
                self._family_bits[v] |= 1 << c.index
            if not rep.host_network:
                self._by_namespace.setdefault(rep.namespace, []).append(c.index)
        for v, intervals in self._intervals.items():
            occupied: dict[int, int] = {}
            for c in self.classes:
                a = c.representative.ip(v)
                if a is not None:
                    j = intervals.index(int(a))
                    occupied[j] = occupied.get(j, 0) | 1 << c.index
            intervals.occupied = sorted(occupied)
            intervals.classes = [occupied[j] for j in intervals.occupied]
        # Rule 8: per family, the classes each class reaches as its own node (or as pods
        # on it), whatever the policies say.
        regular: dict[str, int] = {}
        host: dict[int, dict[str, int]] = {v: {} for v in FAMILIES}
        for c in self.classes:
            rep = c.representative
            if not rep.host_network and rep.node_name and rep.node_name in self._host_nodes:
                regular[rep.node_name] = regular.get(rep.node_name, 0) | 1 << c.index
            elif rep.host_network:
                for v in FAMILIES:
                    a = rep.ip(v)
                    node = self._node_addresses.get(a) if a is not None else None
                    if node is not None:
                        host[v][node] = host[v].get(node, 0) | 1 << c.index
        self._own_node: dict[int, list[int]] = {}
        for v in FAMILIES:
            row = []
            for c in self.classes:
                rep = c.representative
                if rep.host_network:
                    a = rep.ip(v)
                    node = self._node_addresses.get(a) if a is not None else None
                    row.append(regular.get(node, 0) if node is not None else 0)
                else:
                    row.append(host[v].get(rep.node_name, 0) if rep.node_name else 0)
            self._own_node[v] = row

    def class_of(self, pod: Pod) -> PodClass:
        """The class of a snapshot pod (KeyError for a pod not in the snapshot)."""
        index = self.resolver.index_of(pod)
        if index is None:
            raise KeyError(pod.key)
        return self.classes[self._class_of[index]]

    # -- sets of classes ------------------------------------------------------------------

    def _classes_of_pods(self, bits: int) -> int:
        """Classes of a pod bitset that is a union of classes (true of every selector's)."""
        found = self._bits_cache.get(bits)
        if found is None:
            found = 0
            for i in bit_indices(bits & self._rep_mask):
                found |= 1 << self._class_of[i]
            self._bits_cache[bits] = found
        return found

    def _selected(self, policy: ir.Policy) -> int:
        """Classes ``policy`` applies to (never hostNetwork ones)."""
        found = 0
        for ci in self._by_namespace.get(policy.namespace, ()):
            if policy.pod_selector.matches(self.classes[ci].representative.labels):
                found |= 1 << ci
        return found

    def _address_classes(self, version: int, addresses: ir.AddressSet) -> int:
        """Classes whose address of ``version`` is in ``addresses``: the classes of every
        occupied elementary interval a CIDR of the set covers."""
        key = (version, addresses)
        found = self._address_cache.get(key)
        if found is None:
            intervals = self._intervals[version]
            found = 0
            for cidr in addresses.cidrs:
                if cidr.version != version:
                    continue
                lo = bisect.bisect_left(intervals.occupied, intervals.index(cidr.first))
                hi = bisect.bisect_right(intervals.occupied, intervals.index(cidr.last))
                for j in range(lo, hi):
                    found |= intervals.classes[j]
            self._address_cache[key] = found
        return found

    def _peer_classes(self, policy: ir.Policy, peers: ir.Peers, version: int) -> int:
        if isinstance(peers, ir.AnyPeer):
            return self.all_classes
        # Keyed by the peers object and the namespace (same-namespace peers depend on it).
        key = (policy.namespace, id(peers), version)
        found = self._peer_cache.get(key)
        if found is None:
            found = 0
            for peer in peers:
                if isinstance(peer, ir.AddressPeer):
                    found |= self._address_classes(version, peer.addresses)
                else:
                    found |= self._classes_of_pods(self.resolver.peer_pods(policy, peer).bits)
            self._peer_cache[key] = found
        return found

    def _named_classes(self, name: str, protocol: ir.Protocol, port: int) -> int:
        """Classes (never hostNetwork) that give ``port``/``protocol`` the name ``name``."""
        key = (name, protocol, port)
        found = self._named_cache.get(key)
        if found is None:
            found = 0
            for c in self.classes:
                rep = c.representative
                if not rep.host_network and name in rep.port_names(port, protocol):
                    found |= 1 << c.index
            self._named_cache[key] = found
        return found

    def _port_classes(self, ports: ir.Ports, probe: Probe) -> int:
        """Destination classes for which ``ports`` admits the probe (named ports resolve
        against each destination)."""
        return port_classes(
            ports,
            probe,
            self.all_classes,
            lambda name: self._named_classes(name, probe.protocol, probe.port),
        )

    # -- class matrices -------------------------------------------------------------------

    def matrix(self, probe: Probe) -> ClassMatrix:
        """The class matrix of one probe (computed once; probes every rule treats alike share
        one computation)."""
        found = self._matrices.get(probe)
        if found is None:
            ports = self._probe_ports(probe)
            rows = self._by_ports.get(ports)
            if rows is None:
                rows = self._compute(ports)
                self._by_ports[ports] = rows
            found = ClassMatrix(probe, rows)
            self._matrices[probe] = found
        return found

    def _probe_ports(self, probe: Probe) -> tuple[int, ...]:
        """Per rule, the destination classes its ports admit for ``probe``: the key under
        which probes share one class matrix."""
        return tuple(self._port_classes(rule.ports, probe) for _, rule in self._rules)

    def _sides(self, ports: Sequence[int], version: int, n: int) -> tuple[list[int], list[int]]:
        """Per source class, for one address family: the destination classes its egress
        side allows, and those whose ingress side admits it."""
        return self._egress_rows(ports, version, n), self._ingress_columns_transposed(
            ports, version, n
        )

    def _compute(self, ports: Sequence[int]) -> tuple[int, ...]:
        """Rows of the class matrix, given what each rule's ports admit for the probe."""
        n = len(self.classes)
        everything = self.all_classes
        per_family: dict[int, list[int]] = {}
        for v in FAMILIES:
            if self._family_bits[v]:
                egress, ingress = self._sides(ports, v, n)
                own = self._own_node[v]
                per_family[v] = [
                    (e & i) | own[s] for s, (e, i) in enumerate(zip(egress, ingress, strict=True))
                ]
        rows = []
        for s in range(n):
            row = 0
            for v in self._versions[s]:
                # A pair connects when some family both pods have lets it through.
                row |= per_family[v][s] & self._family_bits[v]
            rows.append(row & everything)
        return tuple(rows)

    def _egress_rows(self, ports: Sequence[int], version: int, n: int) -> list[int]:
        """Per source class: destination classes its egress side allows."""
        rows: list[int | None] = [None] * n
        for policy, sources, indices in self._isolating["egress"]:
            allowed = 0
            for k in indices:
                if ports[k]:
                    allowed |= (
                        self._peer_classes(policy, self._rules[k][1].peers, version) & (ports[k])
                    )
            for s in bit_indices(sources):
                rows[s] = (rows[s] or 0) | allowed
        return [self.all_classes if r is None else r for r in rows]

    def _ingress_columns_transposed(self, ports: Sequence[int], version: int, n: int) -> list[int]:
        """Per source class: destination classes whose ingress side admits it.

        Built from the rules' side: a rule admits its peers into the classes its policy
        selects (where its ports match), so peers sharing one set of classes are grouped
        and each source gets the union of the groups it belongs to."""
        isolated = 0
        groups: dict[int, int] = {}
        for policy, targets, indices in self._isolating["ingress"]:
            isolated |= targets
            for k in indices:
                admitted = targets & ports[k]
                if admitted:
                    peers = self._peer_classes(policy, self._rules[k][1].peers, version)
                    if peers:
                        groups[peers] = groups.get(peers, 0) | admitted
        base = self.all_classes & ~isolated
        base |= groups.pop(self.all_classes, 0)
        rows = [base] * n
        for peers, admitted in groups.items():
            for s in bit_indices(peers):
                rows[s] |= admitted
        return rows

    # -- pods -----------------------------------------------------------------------------

    def allowed(self, src: Pod, dst: Pod, probe: Probe) -> bool:
        """Whether ``src`` may open a connection to ``dst`` on ``probe`` (agrees with
        :meth:`npc.analysis.semantics.Semantics.pod_allowed`; a pod always reaches itself)."""
        if src.key == dst.key:
            return True
        return self.matrix(probe).allows(self.class_of(src).index, self.class_of(dst).index)

    def reachable(self, src: Pod, probe: Probe) -> PodSet:
        """Every pod ``src`` may connect to on ``probe`` (itself included)."""
        source = self.class_of(src)
        row = self.matrix(probe).rows[source.index]
        bits = 0
        for d in bit_indices(row):
            bits |= self.classes[d].bits
        index = self.resolver.index_of(src)
        assert index is not None
        return self.resolver.podset(bits | 1 << index)
