"""How much an iptables output of npc holds (``npc compare``): the chains it declares
(``:NAME`` lines, IPv4 and IPv6 parts each) and the ipsets it creates as objects, its
``-A``/``-I`` lines as rules."""

from __future__ import annotations

from npc.backends.base import Counts, Emitted

__all__ = ["count"]


def count(emitted: Emitted) -> Counts:
    """Counted line by line over every file of the output (the rules and the ipsets)."""
    texts = [t for _, t in emitted.files] if emitted.files else [emitted.text]
    objects = rules = 0
    for text in texts:
        for line in text.splitlines():
            if line.startswith(":") or line.startswith("create "):
                objects += 1
            elif line.startswith(("-A ", "-I ")):
                rules += 1
    return Counts(objects, rules, "chains and ipsets")
