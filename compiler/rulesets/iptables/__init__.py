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

from collections.abc import Sequence

from npc.rulesets.base import Decision, Packet, Text
from npc.rulesets.iptables.evaluate import IptablesJudge
from npc.rulesets.iptables.read import read_rulesets
from npc.snapshot import Snapshot

__all__ = ["Decision", "IptablesJudge", "Packet", "read"]


def read(
    sources: Sequence[Text], snapshot: Snapshot | None = None, *, bridged: bool = False
) -> IptablesJudge:
    """Read iptables-save, ip6tables-save and ipset save files into a judge. ``bridged``
    decides for traffic that crosses a Linux bridge (``-m physdev --physdev-is-bridged``
    matches) instead of routed traffic. The snapshot is not needed."""
    del snapshot
    return IptablesJudge(read_rulesets(sources), bridged=bridged)
