"""Sending a new connection to its pod's class chain in a few rule evaluations.

iptables has no verdict maps: a chain holding one ``-d <pod> -j <chain>`` rule per pod makes
every new connection to the last pod walk all of them (10,000 rules at cluster scale, 45 to
145 us per packet on this machine, ``shared/reference/perf.md`` 2.2). Calico's Felix meets
the same problem with interface names and answers with a shallow tree of chains keyed by
name prefix (``felix/rules/dispatch.go``); npc keys its tree by address prefix:

* consecutive addresses of one class are first joined into CIDR blocks (a class whose pods
  hold ``10.1.0.0``..``10.1.0.15`` costs one rule, not sixteen);
* a chain holding at most :data:`FANOUT` blocks tests them in turn (``-s``/``-d`` block,
  ``-g`` class chain);
* a larger one finds the longest prefix all its blocks share and splits them by the fewest
  next address bits (at most :data:`STEP`, so at most 16 groups) that leave no group larger
  than a leaf, sending each group of two or more to a child chain (``-s``/``-d`` prefix,
  ``-g`` child); a lone block stays a direct rule.

So a packet meets at most ~16 cheap prefix compares per level and about log16(pods) levels
(on the benchmark's 10,000 pods: 23 compares on average, 44 at most). Every jump is a goto
(``-g``): a class chain's ``RETURN`` (egress allowed) then returns straight to the chain that
called the tree with ``-j``, without walking back up through the rest of each level; a packet
that matches no block falls off the end of the chain it is in and returns there too (its
address is not dispatched: not isolated).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from npc.backends.grants import cidr_blocks
from npc.backends.iptables import syntax

__all__ = ["FANOUT", "STEP", "DispatchChain", "dispatch_tree", "join_runs"]

#: Most rules in one dispatch chain before it splits.
FANOUT = 16
#: Address bits one level of the tree splits on (2**STEP children at most).
STEP = 4

_BITS = {4: 32, 6: 128}

Block = tuple[int, int]


@dataclass(frozen=True, slots=True)
class DispatchChain:
    """One chain of the tree: its name and its rules (``-s 10.0.0.0/28 -g NPC-...``)."""

    name: str
    rules: tuple[str, ...]


def join_runs(targets: Sequence[tuple[int, str]], bits: int) -> list[tuple[Block, str]]:
    """``(address, chain)`` pairs (sorted, unique addresses) as disjoint CIDR blocks: a run
    of consecutive addresses with one chain becomes the fewest blocks covering it."""
    out: list[tuple[Block, str]] = []
    start = 0
    for i in range(1, len(targets) + 1):
        if (
            i < len(targets)
            and targets[i][0] == targets[i - 1][0] + 1
            and targets[i][1] == targets[start][1]
        ):
            continue
        lo, hi, chain = targets[start][0], targets[i - 1][0], targets[start][1]
        out.extend((b, chain) for b in cidr_blocks(lo, hi, bits))
        start = i
    return out


def dispatch_tree(
    root: str,
    version: int,
    option: str,
    blocks: Sequence[tuple[Block, str]],
    child_name: Callable[[int, int], str],
) -> list[DispatchChain]:
    """The chains of the tree for disjoint, sorted ``blocks``, the root first; ``option`` is
    ``-s`` (egress: the pod is the source) or ``-d``; ``child_name(first, length)`` names the
    chain for a prefix."""
    chains: list[DispatchChain] = []
    _build(chains, root, version, option, list(blocks), child_name)
    return chains


def _build(
    chains: list[DispatchChain],
    name: str,
    version: int,
    option: str,
    blocks: list[tuple[Block, str]],
    child_name: Callable[[int, int], str],
) -> None:
    bits = _BITS[version]
    index = len(chains)
    chains.append(DispatchChain(name, ()))
    if len(blocks) <= FANOUT:
        leaves = [
            f"{option} {syntax.block(version, lo, hi)} -g {chain}" for (lo, hi), chain in blocks
        ]
        chains[index] = DispatchChain(name, tuple(leaves))
        return
    first, last = blocks[0][0][0], blocks[-1][0][1]
    shared = bits - (first ^ last).bit_length()  # longest prefix every block shares
    # The fewest next bits (at most STEP) that leave no group larger than a leaf: sparse
    # addresses then make a few full children rather than many chains of two or three.
    for step in range(1, STEP + 1):
        depth = min(shared + step, bits)
        groups = _groups(blocks, bits, depth)
        if max(len(m) for _, m in groups) <= FANOUT:
            break
    rules: list[str] = []
    for key, members in groups:
        if len(members) == 1:
            (lo, hi), chain = members[0]
            rules.append(f"{option} {syntax.block(version, lo, hi)} -g {chain}")
            continue
        lo = key << (bits - depth)
        hi = lo + (1 << (bits - depth)) - 1
        child = child_name(lo, depth)
        rules.append(f"{option} {syntax.block(version, lo, hi)} -g {child}")
        _build(chains, child, version, option, members, child_name)
    chains[index] = DispatchChain(name, tuple(rules))


def _groups(
    blocks: list[tuple[Block, str]], bits: int, depth: int
) -> list[tuple[int, list[tuple[Block, str]]]]:
    """``blocks`` by their first ``depth`` bits, in order; a block larger than such a
    prefix is a group of its own (key -1), tested where it is."""
    groups: list[tuple[int, list[tuple[Block, str]]]] = []
    for item in blocks:
        (lo, hi), _ = item
        if hi - lo + 1 > 1 << (bits - depth):
            groups.append((-1, [item]))
            continue
        key = lo >> (bits - depth)
        if groups and groups[-1][0] == key:
            groups[-1][1].append(item)
        else:
            groups.append((key, [item]))
    return groups
