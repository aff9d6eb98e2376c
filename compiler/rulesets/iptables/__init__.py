"""iptables: read ``iptables-save``/``ip6tables-save`` and ``ipset save`` files (npc's output or
what another CNI leaves on a node) and decide flows the way the filter table's FORWARD chain
does.

:mod:`.read` parses lines with ``grammar/iptables.lark`` and interprets them into the frozen
:mod:`.model`; :mod:`.evaluate` decides (its docstring lists each rule of evaluation and where
iptables documents it). Anything the judge cannot model exactly is an
:class:`~npc.errors.InputError` at ``file:line:col``.

Modelled: the filter table (other tables must leave forwarded traffic alone), chain policies,
user chains, ``-s``/``-d`` (with ``!``), ``-p``, ``--dport`` (``-m tcp``/``udp``/``sctp``),
``-m multiport --dports``, ``-m conntrack --ctstate``, ``-m state --state``, ``-m comment``,
``-m mark --mark``, ``-m set --match-set NAME src|dst|src,dst`` over ``hash:ip``,
``hash:net``, ``hash:ip,port`` and ``hash:net,port`` sets (``nomatch`` entries included),
``-m addrtype --src-type/--dst-type LOCAL``, ``-m physdev --physdev-is-bridged``; the targets
``ACCEPT``, ``DROP``, ``REJECT``, ``RETURN``, ``LOG``, ``NFLOG``, ``MARK`` and ``-j``/``-g``
to a chain. Interfaces (``-i``/``-o``) and source ports are refused: a flow names neither.
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
from npc.rulesets.iptables.evaluate import IptablesJudge, IptablesRows
from npc.rulesets.iptables.read import read_rulesets
from npc.snapshot import Snapshot

__all__ = [
    "Decision",
    "IptablesJudge",
    "IptablesRows",
    "NodeLocal",
    "NodeLocalRows",
    "Packet",
    "read",
]


def read(
    sources: Sequence[Text], snapshot: Snapshot | None = None, *, bridged: bool = False
) -> IptablesJudge | NodeLocal:
    """Read iptables-save, ip6tables-save and ipset save files into a judge. ``bridged``
    decides for traffic that crosses a Linux bridge (``-m physdev --physdev-is-bridged``
    matches) instead of routed traffic. With a snapshot, the judge also knows which flows
    never reach FORWARD (:class:`NodeLocal`)."""
    judge = IptablesJudge(read_rulesets(sources), bridged=bridged)
    return judge if snapshot is None else NodeLocal(judge, node_addresses(snapshot))


@dataclass(frozen=True, slots=True)
class NodeLocal:
    """A judge that knows the nodes: a pod's traffic with its own node goes through INPUT
    or OUTPUT, never FORWARD (iptables(8): FORWARD is "for packets being routed through
    the box"), so it passes whatever FORWARD holds."""

    judge: IptablesJudge
    nodes: Mapping[netaddr.IPAddress, str]
    _key: NodeKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_key", NodeKey(_address_spans(self.judge), self.nodes))

    def key(self, endpoint: Endpoint) -> Hashable:
        """Addresses inside the same ``-s``/``-d`` spans and the same ipset entries pass
        every test alike (a set's most specific entry among the same entries is the same);
        the pod's node and the address's node decide the bypass."""
        return self._key(endpoint)

    def decide(self, flow: Flow) -> Decision:
        """As FORWARD decides, except for a pod's traffic with its own node."""
        return own_node_decision(flow, self.nodes) or self.judge.decide(flow)

    def rows(self, dsts: Sequence[Endpoint]) -> NodeLocalRows:
        """Verdicts towards ``dsts``, many at once (:class:`~npc.rulesets.base.Batched`)."""
        return NodeLocalRows(self.judge.rows(dsts), OwnNode(dsts, self.nodes))


@dataclass(frozen=True, slots=True)
class NodeLocalRows:
    """:class:`NodeLocal`'s verdicts towards many destinations: FORWARD's, plus the
    destinations reached without forwarding."""

    rows: IptablesRows
    own: OwnNode

    def allowed(self, src: Endpoint, protocol: ir.Protocol, port: int) -> int:
        """Bit k set when ``src`` may connect to the k-th destination."""
        family = self.rows.candidates.of_family(src.address.version)
        return self.rows.allowed(src, protocol, port) | (self.own.mask(src) & family)


def _address_spans(judge: IptablesJudge) -> Iterator[tuple[int, int, int]]:
    """(version, first, last) of every address span a rule or an ipset entry tests."""
    for table in judge.ruleset.tables:
        for chain in table.chains:
            for rule in chain.rules:
                for match in rule.matches:
                    if match.kind in ("src", "dst"):
                        for first, last in match.spans:
                            yield table.version, first, last
    for ipset in judge.ruleset.sets:
        for entry in ipset.entries:
            yield (ipset.version, *entry.address)
