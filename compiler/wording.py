"""Small helpers for the prose npc prints (summaries, explanations)."""

from __future__ import annotations

__all__ = ["plural"]


def plural(n: int, word: str, many: str | None = None) -> str:
    """``n`` and ``word``, inflected: ``1 pod``, ``2 pods``, ``3 policies``, ``2 classes``,
    ``1,024 rules`` (thousands separated). ``many`` spells an irregular plural."""
    if n == 1:
        return f"{n:,} {word}"
    if many is None:
        if word.endswith(("s", "x", "ch", "sh")):
            many = word + "es"
        elif word.endswith("y") and word[-2:-1] not in ("a", "e", "o", "u"):
            many = word[:-1] + "ies"
        else:
            many = word + "s"
    return f"{n:,} {many}"
