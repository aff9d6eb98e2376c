"""Calico selectors: parsing into typed nodes, evaluation over label maps, safe quoting.

The grammar is ``grammar/calico_selector.lark`` and follows libcalico-go's tokenizer and
parser exactly (``lib/selector``): ``==``, ``!=``, ``in {...}``, ``not in {...}``,
``contains``, ``starts with``, ``ends with``, ``has(k)``, ``all()``, ``global()``, ``!``,
``&&``, ``||`` and parentheses. The empty selector selects everything, like ``all()``.

Evaluation is Calico's: ``k != 'v'`` and ``k not in {...}`` match objects *without* the label
``k`` (as Kubernetes' ``NotIn`` does); every other comparison needs the label. ``global()``
evaluates true on labels; its meaning ("no namespace") is applied where a namespace selector
is rewritten (:func:`namespace_selector`).

Calico strings have no escapes: a value is written between ``'`` or ``"``, whichever it does
not contain (:func:`quote`); a value holding both cannot be written at all, and label keys
must use Calico's identifier characters (:func:`check_key`). Both raise
:class:`SelectorQuotingError` rather than produce a selector with another meaning.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import ClassVar

from lark import Token, Transformer, v_args
from lark.exceptions import (
    LarkError,
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
)

from npc.grammar import parser
from npc.rulesets.calico.syntax import SelectorQuotingError, check_key, quote

__all__ = [
    "All",
    "And",
    "Contains",
    "EndsWith",
    "Eq",
    "Global",
    "Has",
    "In",
    "LabelOp",
    "Ne",
    "Node",
    "Not",
    "NotIn",
    "Or",
    "SelectorQuotingError",
    "SelectorSyntaxError",
    "StartsWith",
    "check_key",
    "namespace_selector",
    "parse_selector",
    "quote",
]

#: The label Calico puts on every workload endpoint, holding its namespace.
NAMESPACE_LABEL = "projectcalico.org/namespace"


class SelectorSyntaxError(ValueError):
    """A selector Calico would reject; ``column`` is 1-based."""

    def __init__(self, text: str, column: int, message: str) -> None:
        self.text = text
        self.column = column
        super().__init__(f"{message} at column {column}: {text!r}")


# -- nodes --------------------------------------------------------------------------------


class Node(abc.ABC):
    """A parsed Calico selector (or part of one)."""

    __slots__ = ()

    @abc.abstractmethod
    def evaluate(self, labels: Mapping[str, str]) -> bool:
        """Whether an object with these labels is selected."""

    @abc.abstractmethod
    def children(self) -> tuple[Node, ...]:
        """Direct sub-expressions."""

    @abc.abstractmethod
    def render(self) -> str:
        """Calico text that parses back to an equal node."""

    @abc.abstractmethod
    def prefixed(self, prefix: str) -> Node:
        """The same selector with ``prefix`` put before every label key (Calico's
        ``PrefixVisitor``, used to match namespace labels copied onto endpoints)."""

    def walk(self) -> Iterator[Node]:
        """This node and every node below it, depth first."""
        yield self
        for child in self.children():
            yield from child.walk()

    def __str__(self) -> str:
        return self.render()


@dataclass(frozen=True, slots=True)
class All(Node):
    """``all()`` (and the empty selector): everything."""

    def evaluate(self, labels: Mapping[str, str]) -> bool:
        return True

    def children(self) -> tuple[Node, ...]:
        return ()

    def render(self) -> str:
        return "all()"

    def prefixed(self, prefix: str) -> Node:
        return self


@dataclass(frozen=True, slots=True)
class Global(Node):
    """``global()``: only meaningful as a namespace selector (non-namespaced objects)."""

    def evaluate(self, labels: Mapping[str, str]) -> bool:
        return True

    def children(self) -> tuple[Node, ...]:
        return ()

    def render(self) -> str:
        return "global()"

    def prefixed(self, prefix: str) -> Node:
        return self


@dataclass(frozen=True, slots=True)
class Has(Node):
    """``has(key)``."""

    key: str

    def evaluate(self, labels: Mapping[str, str]) -> bool:
        return self.key in labels

    def children(self) -> tuple[Node, ...]:
        return ()

    def render(self) -> str:
        return f"has({self.key})"

    def prefixed(self, prefix: str) -> Node:
        return Has(prefix + self.key)


@dataclass(frozen=True, slots=True)
class LabelOp(Node):
    """A comparison of one label with one string."""

    key: str
    value: str
    op: ClassVar[str] = ""

    def children(self) -> tuple[Node, ...]:
        return ()

    def render(self) -> str:
        return f"{self.key} {self.op} {quote(self.value)}"

    def prefixed(self, prefix: str) -> Node:
        return type(self)(prefix + self.key, self.value)


@dataclass(frozen=True, slots=True)
class Eq(LabelOp):
    """``key == 'value'`` (needs the label)."""

    op: ClassVar[str] = "=="

    def evaluate(self, labels: Mapping[str, str]) -> bool:
        return labels.get(self.key) == self.value


@dataclass(frozen=True, slots=True)
class Ne(LabelOp):
    """``key != 'value'`` (true without the label)."""

    op: ClassVar[str] = "!="

    def evaluate(self, labels: Mapping[str, str]) -> bool:
        return labels.get(self.key) != self.value


@dataclass(frozen=True, slots=True)
class Contains(LabelOp):
    """``key contains 'part'``."""

    op: ClassVar[str] = "contains"

    def evaluate(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        return value is not None and self.value in value


@dataclass(frozen=True, slots=True)
class StartsWith(LabelOp):
    """``key starts with 'prefix'``."""

    op: ClassVar[str] = "starts with"

    def evaluate(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        return value is not None and value.startswith(self.value)


@dataclass(frozen=True, slots=True)
class EndsWith(LabelOp):
    """``key ends with 'suffix'``."""

    op: ClassVar[str] = "ends with"

    def evaluate(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        return value is not None and value.endswith(self.value)


@dataclass(frozen=True, slots=True)
class In(Node):
    """``key in { 'a', 'b' }`` (needs the label; the empty set matches nothing)."""

    key: str
    values: tuple[str, ...]

    def evaluate(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        return value is not None and value in self.values

    def children(self) -> tuple[Node, ...]:
        return ()

    def render(self) -> str:
        return f"{self.key} in {_render_set(self.values)}"

    def prefixed(self, prefix: str) -> Node:
        return In(prefix + self.key, self.values)


@dataclass(frozen=True, slots=True)
class NotIn(Node):
    """``key not in { 'a', 'b' }`` (true without the label)."""

    key: str
    values: tuple[str, ...]

    def evaluate(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        return value is None or value not in self.values

    def children(self) -> tuple[Node, ...]:
        return ()

    def render(self) -> str:
        return f"{self.key} not in {_render_set(self.values)}"

    def prefixed(self, prefix: str) -> Node:
        return NotIn(prefix + self.key, self.values)


@dataclass(frozen=True, slots=True)
class Not(Node):
    """``!operand``."""

    operand: Node

    def evaluate(self, labels: Mapping[str, str]) -> bool:
        return not self.operand.evaluate(labels)

    def children(self) -> tuple[Node, ...]:
        return (self.operand,)

    def render(self) -> str:
        inner = self.operand.render()
        if isinstance(self.operand, And | Or):
            inner = f"({inner})"
        return f"!{inner}"

    def prefixed(self, prefix: str) -> Node:
        return Not(self.operand.prefixed(prefix))


@dataclass(frozen=True, slots=True)
class And(Node):
    """``a && b && ...`` (two or more operands)."""

    operands: tuple[Node, ...]

    def evaluate(self, labels: Mapping[str, str]) -> bool:
        return all(o.evaluate(labels) for o in self.operands)

    def children(self) -> tuple[Node, ...]:
        return self.operands

    def render(self) -> str:
        return " && ".join(
            f"({o.render()})" if isinstance(o, And | Or) else o.render() for o in self.operands
        )

    def prefixed(self, prefix: str) -> Node:
        return And(tuple(o.prefixed(prefix) for o in self.operands))


@dataclass(frozen=True, slots=True)
class Or(Node):
    """``a || b || ...`` (two or more operands)."""

    operands: tuple[Node, ...]

    def evaluate(self, labels: Mapping[str, str]) -> bool:
        return any(o.evaluate(labels) for o in self.operands)

    def children(self) -> tuple[Node, ...]:
        return self.operands

    def render(self) -> str:
        return " || ".join(
            f"({o.render()})" if isinstance(o, Or) else o.render() for o in self.operands
        )

    def prefixed(self, prefix: str) -> Node:
        return Or(tuple(o.prefixed(prefix) for o in self.operands))


def _render_set(values: tuple[str, ...]) -> str:
    if not values:
        return "{}"
    return "{ " + ", ".join(quote(v) for v in values) + " }"


# -- parsing ------------------------------------------------------------------------------


def _string(token: Token) -> str:
    return str(token)[1:-1]


@v_args(inline=True)
class _ToNodes(Transformer[Token, Node]):
    """Parse tree -> nodes. Every rule of the grammar has a method here (a test checks that
    no raw ``lark.Tree`` survives)."""

    def start(self, expr: Node | None = None) -> Node:
        return All() if expr is None else expr

    def or_(self, *operands: Node) -> Node:
        return Or(operands)

    def and_(self, *operands: Node) -> Node:
        return And(operands)

    def negated(self, *items: Token | Node) -> Node:
        # Leading `!`s collapse to one boolean, as upstream's parser does.
        nots = len(items) - 1
        operand = items[-1]
        assert isinstance(operand, Node)
        return Not(operand) if nots % 2 else operand

    def has(self, _has: Token, key: Token) -> Node:
        return Has(str(key))

    def all_(self, _token: Token) -> Node:
        return All()

    def global_(self, _token: Token) -> Node:
        return Global()

    def eq(self, key: Token, value: Token) -> Node:
        return Eq(str(key), _string(value))

    def ne(self, key: Token, value: Token) -> Node:
        return Ne(str(key), _string(value))

    def contains(self, key: Token, value: Token) -> Node:
        return Contains(str(key), _string(value))

    def starts_with(self, key: Token, value: Token) -> Node:
        return StartsWith(str(key), _string(value))

    def ends_with(self, key: Token, value: Token) -> Node:
        return EndsWith(str(key), _string(value))

    def in_(self, key: Token, values: tuple[str, ...]) -> Node:
        return In(str(key), values)

    def not_in(self, key: Token, values: tuple[str, ...]) -> Node:
        return NotIn(str(key), values)

    def string_set(self, *values: Token) -> tuple[str, ...]:
        return tuple(_string(v) for v in values)


def parse_selector(text: str) -> Node:
    """Parse a Calico selector; raises :class:`SelectorSyntaxError` where Calico would."""
    try:
        tree = parser("calico_selector").parse(text)
    except UnexpectedCharacters as exc:
        raise SelectorSyntaxError(text, exc.column, "unexpected character") from None
    except UnexpectedInput as exc:
        at_end = isinstance(exc, UnexpectedEOF) or (
            isinstance(exc, UnexpectedToken) and exc.token.type == "$END"
        )
        column = exc.column if isinstance(exc.column, int) and exc.column > 0 else 1
        if at_end:
            column = len(text) + 1
        message = "unexpected end of selector" if at_end else "invalid Calico selector"
        raise SelectorSyntaxError(text, column, message) from None
    except LarkError as exc:  # pragma: no cover - other lark failures
        raise SelectorSyntaxError(text, 1, f"invalid Calico selector ({exc})") from None
    result = _ToNodes().transform(tree)
    assert isinstance(result, Node)
    return result


def namespace_selector(node: Node, prefix: str = "pcns.") -> Node:
    """A rule's ``namespaceSelector`` as Calico applies it to endpoints.

    Namespace labels reach endpoints with the ``pcns.`` prefix (through the namespace's
    profile), so every key gets it; ``all()`` becomes "in some namespace" and ``global()``
    "in no namespace" (libcalico-go ``getEndpointSelector``)."""
    return _namespace_nodes(node.prefixed(prefix))


def _namespace_nodes(node: Node) -> Node:
    if isinstance(node, All):
        return Has(NAMESPACE_LABEL)
    if isinstance(node, Global):
        return Not(Has(NAMESPACE_LABEL))
    if isinstance(node, Not):
        return Not(_namespace_nodes(node.operand))
    if isinstance(node, And):
        return And(tuple(_namespace_nodes(o) for o in node.operands))
    if isinstance(node, Or):
        return Or(tuple(_namespace_nodes(o) for o in node.operands))
    return node
