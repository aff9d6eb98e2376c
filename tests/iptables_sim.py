"""A small interpreter for the iptables rulesets and ipset files npc emits, for fast
property tests.

It understands exactly the subset npc writes (``*filter`` parts of NPC chains; ``-s``/``-d``,
``-p``, ``-m conntrack``, ``-m set``, ``-m tcp|udp|sctp --dport``, ``-m multiport
--dports``, ``-m comment``; ``-j ACCEPT|DROP|RETURN|<chain>`` and ``-g <chain>``; ipset
``create``/``add`` lines) and refuses any other word, so a change to the emitted shape cannot
go unnoticed here. It evaluates the first packet of a flow (conntrack state NEW) the way
netfilter walks chains: a jump pushes a return point, a goto does not, ``RETURN`` or falling
off a chain pops one, and falling off ``NPC-FORWARD`` ends in ``FORWARD``'s ACCEPT policy.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

import netaddr

from tests.nft_sim import Packet

__all__ = ["IptablesRuleset", "Packet"]

PROTOCOLS = {"tcp": "TCP", "udp": "UDP", "sctp": "SCTP"}


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule: its matches (name, argument) and its action (``-j``/``-g``, target)."""

    matches: tuple[tuple[str, str], ...]
    action: tuple[str, str]


def _parse_rule(words: list[str]) -> Rule:
    matches: list[tuple[str, str]] = []
    action: tuple[str, str] | None = None
    module = ""
    i = 0
    while i < len(words):
        word = words[i]
        arg = words[i + 1] if i + 1 < len(words) else ""
        if word in ("-s", "-d", "-p"):
            matches.append((word, arg))
        elif word == "-m":
            module = arg
            if module not in ("conntrack", "set", "comment", "multiport", *PROTOCOLS):
                raise ValueError(f"unknown match module {module}")
        elif word == "--ctstate" and module == "conntrack":
            matches.append(("ctstate", arg))
        elif word == "--match-set" and module == "set":
            matches.append((f"set-{words[i + 2]}", arg))
            i += 1
        elif (word == "--dport" and module in PROTOCOLS) or (
            word == "--dports" and module == "multiport"
        ):
            matches.append(("dports", arg))
        elif word == "--comment" and module == "comment":
            pass
        elif word in ("-j", "-g"):
            action = (word, arg)
        else:
            raise ValueError(f"unknown word {word!r} in {' '.join(words)}")
        i += 2
    if action is None:
        raise ValueError(f"rule without action: {' '.join(words)}")
    return Rule(tuple(matches), action)


def _ports(text: str) -> list[tuple[int, int]]:
    out = []
    for item in text.split(","):
        lo, _, hi = item.partition(":")
        out.append((int(lo), int(hi or lo)))
    return out


@dataclass(slots=True)
class IptablesRuleset:
    """Chains of one family's part, and the ipsets (all families)."""

    chains: dict[str, list[Rule]] = field(default_factory=dict)
    sets: dict[str, netaddr.IPSet] = field(default_factory=dict)

    @classmethod
    def parse(cls, rules: str, ipsets: str, family: int) -> IptablesRuleset:
        """The part of ``rules`` for ``family`` (4 or 6), with the sets of ``ipsets``."""
        rs = cls()
        tool = "ip6tables" if family == 6 else "iptables"
        inside = False
        for line in rules.splitlines():
            if line.startswith(f"# {tool}-restore --noflush"):
                inside = True
                continue
            if not inside or not line or line.startswith("#"):
                continue
            if line == "COMMIT":
                inside = False
            elif line == "*filter":
                continue
            elif line.startswith(":"):
                name, policy, counters = line[1:].split()
                assert policy == "-" and counters == "[0:0]", line
                rs.chains[name] = []
            elif line.startswith("-A "):
                words = shlex.split(line)
                rs.chains[words[1]].append(_parse_rule(words[2:]))
            else:
                raise ValueError(f"unknown line {line!r}")
        for line in ipsets.splitlines():
            if not line or line.startswith("#"):
                continue
            words = line.split()
            if words[0] == "create":
                assert words[2] in ("hash:ip", "hash:net") and words[3] == "family", line
                rs.sets[words[1]] = netaddr.IPSet()
            elif words[0] == "add" and len(words) == 3:
                rs.sets[words[1]].add(netaddr.IPNetwork(words[2]))
            else:
                raise ValueError(f"unknown ipset line {line!r}")
        return rs

    def _matches(self, rule: Rule, packet: Packet) -> bool:
        for name, arg in rule.matches:
            if name == "-s":
                ok = packet.src in netaddr.IPNetwork(arg)
            elif name == "-d":
                ok = packet.dst in netaddr.IPNetwork(arg)
            elif name == "-p":
                ok = PROTOCOLS[arg] == packet.protocol
            elif name == "ctstate":
                ok = "NEW" in arg.split(",")  # the first packet of a flow
            elif name.startswith("set-"):
                address = packet.src if name == "set-src" else packet.dst
                ok = address in self.sets[arg]
            elif name == "dports":
                ok = any(lo <= packet.port <= hi for lo, hi in _ports(arg))
            else:  # pragma: no cover - _parse_rule makes no other
                raise AssertionError(name)
            if not ok:
                return False
        return True

    def allows(self, packet: Packet) -> bool:
        """Whether the first packet of a flow gets through ``FORWARD`` (which jumps to
        ``NPC-FORWARD`` first and accepts what comes back)."""
        stack: list[tuple[str, int]] = []
        chain, index = "NPC-FORWARD", 0
        steps = 0
        while True:
            steps += 1
            assert steps < 100_000, "a loop in the chains"
            rules = self.chains[chain]
            if index >= len(rules):
                if not stack:
                    return True  # back in FORWARD, whose policy accepts
                chain, index = stack.pop()
                continue
            rule = rules[index]
            index += 1
            if not self._matches(rule, packet):
                continue
            kind, target = rule.action
            if target == "ACCEPT":
                return True
            if target == "DROP":
                return False
            if target == "RETURN":
                if not stack:
                    return True
                chain, index = stack.pop()
                continue
            if kind == "-j":
                stack.append((chain, index))
            chain, index = target, 0
