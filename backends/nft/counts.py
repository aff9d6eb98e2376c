"""How much an nft script of npc holds (``npc compare``): tables, chains, sets and maps as
objects, the statements of its chains as rules (a chain's ``type``/``policy`` header and its
``comment`` are not rules)."""

from __future__ import annotations

from npc.backends.base import Counts, Emitted

__all__ = ["count"]

_OBJECTS = frozenset({"chain", "set", "map"})
_NOT_RULES = ("type ", "policy ", "comment ", "}")


def count(emitted: Emitted) -> Counts:
    """Counted from the script's text: a block ``table ... {`` at the top, ``chain``/``set``/
    ``map ... {`` inside it, and each line of a chain at its own level."""
    objects = rules = 0
    depth = 0
    in_chain = False
    for raw in emitted.text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        word = line.split(None, 1)[0]
        opens = line.endswith("{")
        if depth == 0 and opens and word == "table":
            objects += 1
        elif depth == 1 and opens and word in _OBJECTS:
            objects += 1
            in_chain = word == "chain"
        elif depth == 2 and in_chain and not line.startswith(_NOT_RULES):
            rules += 1
        depth += line.count("{") - line.count("}")
        if depth < 2:
            in_chain = False
    return Counts(objects, rules, "tables, chains, sets and maps")
