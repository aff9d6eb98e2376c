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

from collections.abc import Sequence

from npc.rulesets.base import Decision, Packet, Text
from npc.rulesets.nft.evaluate import NftJudge
from npc.rulesets.nft.read import read_ruleset
from npc.snapshot import Snapshot

__all__ = ["Decision", "NftJudge", "Packet", "read"]


def read(sources: Sequence[Text], snapshot: Snapshot | None = None) -> NftJudge:
    """Read nft files (run in order, as ``nft -f`` would) into a judge. The snapshot is not
    needed: an nft ruleset names addresses, not pods."""
    del snapshot
    return NftJudge(read_ruleset(sources))
