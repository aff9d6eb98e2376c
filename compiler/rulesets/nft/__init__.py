"""nftables: read any ruleset (``nft list ruleset``, ``nft -f`` files, npc's output) and decide
flows the way the kernel does on the forward hook.

:mod:`.script` parses text with ``grammar/nft.lark`` into syntax objects; :mod:`.read` runs
the files' commands and resolves them into the frozen :mod:`.model`; :mod:`.evaluate` decides
(its docstring lists the rules of evaluation and where nftables documents each). Anything the
judge cannot model exactly is an :class:`~npc.errors.InputError` at ``file:line:col``.

Modelled: tables of the ``ip``, ``ip6`` and ``inet`` families (``arp`` tables, and ``bridge``
or ``netdev`` tables without base chains, are ignored: they cannot see forwarded IP traffic),
base chains (``type``/``hook``/``priority``, numeric or named, ``policy``), regular chains,
named and anonymous sets and verdict maps (types ``ipv4_addr``, ``ipv6_addr``, ``inet_proto``,
``inet_service``, ``ct_state``, ``nf_proto``, ``ether_type`` and their concatenations;
``flags interval``; prefixes, ranges), the expressions ``ip``/``ip6`` ``saddr``/``daddr``,
``ip protocol``, ``ip6 nexthdr``, ``meta l4proto``/``nfproto``/``protocol``, ``th``/``tcp``/
``udp``/``udplite``/``sctp``/``dccp`` ``dport``, ``ct state``, with ``==``/``!=``;
``counter``, ``log``, ``comment``; the verdicts ``accept``, ``drop``, ``reject``, ``jump``,
``goto``, ``return``, ``continue``; the commands ``table``, ``delete table``, ``flush table``
and ``flush ruleset``.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import netaddr

from npc import ir
from npc.flows import Endpoint, Flow, node_addresses
from npc.rulesets.base import (
    Decision,
    NodeKey,
    OwnNode,
    Packet,
    Text,
    own_node_decision,
)
from npc.rulesets.nft.evaluate import NftJudge
from npc.rulesets.nft.model import Element, Kind, Match, VerdictMap
from npc.rulesets.nft.read import read_ruleset
from npc.rulesets.nft.rows import NftRows
from npc.snapshot import Snapshot

__all__ = ["Decision", "NftJudge", "NftRows", "NodeLocal", "NodeLocalRows", "Packet", "read"]


def read(sources: Sequence[Text], snapshot: Snapshot | None = None) -> NftJudge | NodeLocal:
    """Read nft files (run in order, as ``nft -f`` would) into a judge. An nft ruleset names
    addresses, not pods; with a snapshot, the judge also knows which flows never reach the
    forward hook (:class:`NodeLocal`)."""
    judge = NftJudge(read_ruleset(sources))
    return judge if snapshot is None else NodeLocal(judge, node_addresses(snapshot))


@dataclass(frozen=True, slots=True)
class NodeLocal:
    """A judge that knows the nodes: traffic between a pod and the node it runs on (the
    node's addresses, hostNetwork pods there) is sent or received by the node itself, so it
    passes the ``input``/``output`` hooks and never ``forward`` (nftables wiki, "Netfilter
    hooks": forward sees only packets routed through the host)."""

    judge: NftJudge
    nodes: Mapping[netaddr.IPAddress, str]
    _key: NodeKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_key", NodeKey(_address_spans(self.judge), self.nodes))

    def key(self, endpoint: Endpoint) -> Hashable:
        """Addresses in the same elements of every set, map and anonymous set are matched
        alike by every rule; the pod's node and the address's node decide the bypass."""
        return self._key(endpoint)

    def decide(self, flow: Flow) -> Decision:
        """As the forward hook decides, except for a pod's traffic with its own node."""
        return own_node_decision(flow, self.nodes) or self.judge.decide(flow)

    def rows(self, dsts: Sequence[Endpoint]) -> NodeLocalRows:
        """Verdicts towards ``dsts``, many at once (:class:`~npc.rulesets.base.Batched`)."""
        return NodeLocalRows(self.judge.rows(dsts), OwnNode(dsts, self.nodes))


@dataclass(frozen=True, slots=True)
class NodeLocalRows:
    """:class:`NodeLocal`'s verdicts towards many destinations: the forward hook's, plus
    the destinations reached without forwarding."""

    rows: NftRows
    own: OwnNode

    def allowed(self, src: Endpoint, protocol: ir.Protocol, port: int) -> int:
        """Bit k set when ``src`` may connect to the k-th destination."""
        family = self.rows.candidates.of_family(src.address.version)
        return self.rows.allowed(src, protocol, port) | (self.own.mask(src) & family)


_ADDRESS_KINDS = {Kind.IPV4_ADDR: 4, Kind.IPV6_ADDR: 6}


def _address_spans(judge: NftJudge) -> Iterator[tuple[int, int, int]]:
    """(version, first, last) of every address component of every element the ruleset
    holds: named sets and maps, anonymous sets and single values in rules."""

    def spans(kinds: Sequence[Kind], elements: Sequence[Element]) -> Iterator[tuple[int, int, int]]:
        for position, kind in enumerate(kinds):
            version = _ADDRESS_KINDS.get(kind)
            if version is not None:
                for element in elements:
                    first, last = element.key[position]
                    yield version, first, last

    for table in judge.ruleset.tables:
        for named in table.sets:
            yield from spans(named.kinds, named.elements)
        for chain in table.chains:
            for rule in chain.rules:
                for statement in rule.statements:
                    if isinstance(statement, Match | VerdictMap) and statement.elements:
                        yield from spans([f.kind for f in statement.fields], statement.elements)
