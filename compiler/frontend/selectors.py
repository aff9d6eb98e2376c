"""Parsing kubectl label-selector syntax (``app=web,tier in (a,b),!canary``) into the IR.

Used by the CLI's ``--from``/``--to`` options; the grammar is ``grammar/label_selector.lark``.
An optional namespace prefix ``shop/`` scopes the selector to one namespace: a leading
segment without dots followed by ``/`` is a namespace (label-key prefixes are DNS subdomains
and, in practice, contain a dot: ``app.kubernetes.io/name``). Write ``*/`` to select in every
namespace explicitly.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from lark import Token, Transformer, v_args
from lark.exceptions import LarkError, UnexpectedInput

from npc import ir
from npc.grammar import parser

__all__ = ["PodQuery", "SelectorSyntaxError", "parse_label_selector", "parse_pod_query"]

_NAMESPACE_PREFIX = re.compile(r"^\s*([a-z0-9](?:[-a-z0-9]*[a-z0-9])?|\*)/")


class SelectorSyntaxError(ValueError):
    """A selector that does not parse; ``column`` is 1-based."""

    def __init__(self, text: str, column: int, message: str) -> None:
        self.text = text
        self.column = column
        super().__init__(f"{message} at column {column}: {text}")


@v_args(inline=True)
class _ToIR(Transformer[Token, ir.LabelSelector]):
    def selector(self, *terms: ir.Requirement | None) -> ir.LabelSelector:
        return ir.LabelSelector((), tuple(t for t in terms if t is not None))

    def exists(self, key: Token) -> ir.Requirement:
        return ir.Requirement(str(key), ir.Operator.EXISTS)

    def does_not_exist(self, key: Token) -> ir.Requirement:
        return ir.Requirement(str(key), ir.Operator.DOES_NOT_EXIST)

    def equals(self, key: Token, _op: Token, value: Token | None) -> ir.Requirement:
        return ir.Requirement(str(key), ir.Operator.IN, (str(value or ""),))

    def not_equals(self, key: Token, value: Token | None) -> ir.Requirement:
        return ir.Requirement(str(key), ir.Operator.NOT_IN, (str(value or ""),))

    def in_set(self, key: Token, values: tuple[str, ...]) -> ir.Requirement:
        return ir.Requirement(str(key), ir.Operator.IN, values)

    def not_in_set(self, key: Token, values: tuple[str, ...]) -> ir.Requirement:
        return ir.Requirement(str(key), ir.Operator.NOT_IN, values)

    def values(self, *values: Token) -> tuple[str, ...]:
        return tuple(str(v) for v in values)


def parse_label_selector(text: str) -> ir.LabelSelector:
    """Parse kubectl selector syntax; raises :class:`SelectorSyntaxError`."""
    try:
        tree = parser("label_selector").parse(text)
    except UnexpectedInput as exc:
        # At the end of the input lark reports the last token's column; point past the end.
        token = getattr(exc, "token", None)
        at_end = token is not None and getattr(token, "type", None) == "$END"
        column = len(text) + 1 if at_end else exc.column
        raise SelectorSyntaxError(text, column, "invalid label selector") from None
    except LarkError as exc:  # pragma: no cover - other lark failures
        raise SelectorSyntaxError(text, 1, f"invalid label selector ({exc})") from None
    result = _ToIR().transform(tree)
    if not isinstance(result, ir.LabelSelector):  # an empty selector parses to None terms
        return ir.EVERYTHING
    return result


@dataclass(frozen=True, slots=True)
class PodQuery:
    """A pod selection from the command line: an optional namespace and a label selector."""

    namespace: str | None
    selector: ir.LabelSelector

    def matches(self, namespace: str, labels: Mapping[str, str]) -> bool:
        if self.namespace is not None and namespace != self.namespace:
            return False
        return self.selector.matches(labels)


def parse_pod_query(text: str) -> PodQuery:
    """``[namespace/]selector``; ``*/`` or no prefix means every namespace."""
    match = _NAMESPACE_PREFIX.match(text)
    namespace = None
    rest = text
    if match:
        namespace = None if match.group(1) == "*" else match.group(1)
        rest = text[match.end() :]
        try:
            return PodQuery(namespace, parse_label_selector(rest))
        except SelectorSyntaxError as exc:
            raise SelectorSyntaxError(text, exc.column + match.end(), "invalid selector") from None
    return PodQuery(namespace, parse_label_selector(rest))
