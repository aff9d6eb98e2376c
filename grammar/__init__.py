"""Grammars shipped as package data (``*.lark``), loaded once per process on first use.

Parsers are LALR with positions propagated, so errors can point at a column.
"""

from __future__ import annotations

import functools

from lark import Lark

__all__ = ["parser"]


@functools.cache
def parser(name: str) -> Lark:
    """The LALR parser for ``<name>.lark`` (cached: building a parser costs milliseconds)."""
    return Lark.open_from_package(
        "npc.grammar", f"{name}.lark", parser="lalr", propagate_positions=True
    )
