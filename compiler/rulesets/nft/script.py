"""An nft script parsed (``grammar/nft.lark``) into frozen syntax objects with positions.

This is the structure only: words keep their text, and the reader (:mod:`.read`) decides what
they mean. A syntax error is an :class:`~npc.errors.InputError` at the offending token.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lark import Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from npc.errors import Code, Diagnostic, InputError, Location, Severity
from npc.grammar import parser

__all__ = [
    "SChain",
    "SCommand",
    "SElement",
    "SElements",
    "SField",
    "SHook",
    "SMatch",
    "SNop",
    "SRule",
    "SSet",
    "SSetItem",
    "SSetRef",
    "STable",
    "SValue",
    "SVerdict",
    "SVmap",
    "Script",
    "Word",
    "parse_script",
]


@dataclass(frozen=True, slots=True)
class Word:
    """One token of text where it was written."""

    text: str
    location: Location

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class SValue:
    """A value, possibly a concatenation ``a . b . c``."""

    parts: tuple[Word, ...]

    @property
    def location(self) -> Location:
        return self.parts[0].location


@dataclass(frozen=True, slots=True)
class SVerdict:
    kind: str
    location: Location
    target: Word | None = None


@dataclass(frozen=True, slots=True)
class SElement:
    key: SValue
    data: SVerdict | SValue | None = None


@dataclass(frozen=True, slots=True)
class SElements:
    """``{ a, b . c, d : accept }``."""

    items: tuple[SElement, ...]
    location: Location


@dataclass(frozen=True, slots=True)
class SSetRef:
    name: Word


@dataclass(frozen=True, slots=True)
class SField:
    """``ip saddr``: an expression's two words."""

    first: Word
    second: Word

    @property
    def name(self) -> str:
        return f"{self.first.text} {self.second.text}"


@dataclass(frozen=True, slots=True)
class SMatch:
    fields: tuple[SField, ...]
    op: str | None
    rhs: tuple[SValue, ...] | SSetRef | SElements
    location: Location


@dataclass(frozen=True, slots=True)
class SVmap:
    fields: tuple[SField, ...]
    target: SSetRef | SElements
    location: Location


@dataclass(frozen=True, slots=True)
class SNop:
    kind: str
    location: Location


SStatement = SMatch | SVmap | SVerdict | SNop


@dataclass(frozen=True, slots=True)
class SRule:
    statements: tuple[SStatement, ...]
    location: Location
    comment: str = ""


@dataclass(frozen=True, slots=True)
class SHook:
    type: Word
    hook: Word
    priority: tuple[Word | None, int]
    location: Location
    device: bool = False


@dataclass(frozen=True, slots=True)
class SChain:
    name: Word
    hooks: tuple[SHook, ...]
    policies: tuple[SVerdict, ...]
    rules: tuple[SRule, ...]
    location: Location


@dataclass(frozen=True, slots=True)
class SSetItem:
    """One line of a set's body: ``type``, ``flags``, ``elements``, ``comment``..."""

    kind: str
    words: tuple[Word, ...]
    location: Location
    elements: SElements | None = None


@dataclass(frozen=True, slots=True)
class SSet:
    name: Word
    is_map: bool
    items: tuple[SSetItem, ...]
    location: Location


@dataclass(frozen=True, slots=True)
class STable:
    """``table FAMILY NAME { ... }`` (``chains`` and ``sets`` in written order)."""

    family: Word
    name: Word
    chains: tuple[SChain, ...]
    sets: tuple[SSet, ...]
    location: Location
    others: tuple[SSetItem, ...] = ()


@dataclass(frozen=True, slots=True)
class SCommand:
    """``table F N`` (create if missing), ``delete table``, ``flush table``, ``flush ruleset``."""

    kind: str
    location: Location
    family: Word | None = None
    name: Word | None = None


@dataclass(frozen=True, slots=True)
class Script:
    """A whole file: its commands, in order."""

    name: str
    commands: tuple[STable | SCommand, ...]


def _at(meta: Any, file: str) -> Location:
    return Location(file, getattr(meta, "line", 1), getattr(meta, "column", 1))


@v_args(meta=True)
class _ToSyntax(Transformer[Token, Any]):
    """Lark tree -> syntax objects. Every grammar rule has a method here: a test walks the
    results and fails on any tree left untransformed."""

    def __init__(self, file: str) -> None:
        super().__init__()
        self.file = file

    def _word(self, token: Token) -> Word:
        return Word(str(token), Location(self.file, token.line or 1, token.column or 1))

    def _family_name(self, meta: Any, words: Sequence[Token]) -> tuple[Word, Word]:
        if len(words) == 1:  # nft(8): "when no address family is specified, ip is used"
            return Word("ip", _at(meta, self.file)), self._word(words[0])
        return self._word(words[0]), self._word(words[1])

    def start(self, meta: Any, items: list[Any]) -> tuple[Any, ...]:
        return tuple(items)

    def _command(self, kind: str, meta: Any, words: list[Token]) -> SCommand:
        family, name = self._family_name(meta, words)
        return SCommand(kind, _at(meta, self.file), family, name)

    def table_cmd(self, meta: Any, words: list[Token]) -> SCommand:
        return self._command("table", meta, words)

    def delete_table(self, meta: Any, words: list[Token]) -> SCommand:
        return self._command("delete table", meta, words)

    def flush_table(self, meta: Any, words: list[Token]) -> SCommand:
        return self._command("flush table", meta, words)

    def flush_ruleset(self, meta: Any, words: list[Token]) -> SCommand:
        family = self._word(words[0]) if words else None
        return SCommand("flush ruleset", _at(meta, self.file), family)

    def table_block(self, meta: Any, items: list[Any]) -> STable:
        words = [i for i in items if isinstance(i, Token)]
        family, name = self._family_name(meta, words)
        return STable(
            family,
            name,
            tuple(i for i in items if isinstance(i, SChain)),
            tuple(i for i in items if isinstance(i, SSet)),
            _at(meta, self.file),
            tuple(i for i in items if isinstance(i, SSetItem)),
        )

    def table_comment(self, meta: Any, items: list[Token]) -> SSetItem:
        return SSetItem("comment", (self._word(items[0]),), _at(meta, self.file))

    def table_flags(self, meta: Any, items: list[tuple[Word, ...]]) -> SSetItem:
        return SSetItem("flags", items[0], _at(meta, self.file))

    def chain_block(self, meta: Any, items: list[Any]) -> SChain:
        return SChain(
            self._word(items[0]),
            tuple(i for i in items[1:] if isinstance(i, SHook)),
            tuple(i for i in items[1:] if isinstance(i, SVerdict)),
            tuple(i for i in items[1:] if isinstance(i, SRule)),
            _at(meta, self.file),
        )

    def hook(self, meta: Any, items: list[Any]) -> SHook:
        device = any(i is True for i in items)
        rest = [i for i in items if i is not True]
        return SHook(
            self._word(rest[0]), self._word(rest[1]), rest[2], _at(meta, self.file), device
        )

    def device(self, meta: Any, items: list[Any]) -> bool:
        return True

    def prio_word(self, meta: Any, items: list[Token]) -> tuple[Word | None, int]:
        return self._prio(items[0], 1, None)

    def prio_negative(self, meta: Any, items: list[Token]) -> tuple[Word | None, int]:
        return self._prio(items[0], -1, None)

    def prio_offset(self, meta: Any, items: list[Token]) -> tuple[Word | None, int]:
        return self._prio(items[2], 1, items[0])

    def prio_offset_negative(self, meta: Any, items: list[Token]) -> tuple[Word | None, int]:
        return self._prio(items[1], -1, items[0])

    def _prio(self, number: Token, sign: int, base: Token | None) -> tuple[Word | None, int]:
        if base is None and not str(number).isdigit():
            return self._word(number), 0  # a named priority: ``filter``
        if not str(number).isdigit():
            raise _error(self._word(number).location, f'priority offset "{number}" is not a number')
        return (self._word(base) if base is not None else None), sign * int(str(number))

    def policy(self, meta: Any, items: list[Token]) -> SVerdict:
        return SVerdict(str(items[0]), _at(meta, self.file))

    def chain_comment(self, meta: Any, items: list[Token]) -> SNop:
        return SNop("comment", _at(meta, self.file))

    def set_block(self, meta: Any, items: list[Any]) -> SSet:
        return SSet(self._word(items[0]), False, tuple(items[1:]), _at(meta, self.file))

    def map_block(self, meta: Any, items: list[Any]) -> SSet:
        return SSet(self._word(items[0]), True, tuple(items[1:]), _at(meta, self.file))

    def _item(self, kind: str, meta: Any, items: list[Any]) -> SSetItem:
        words: list[Word] = []
        for i in items:
            if isinstance(i, Token):
                words.append(self._word(i))
            elif isinstance(i, tuple):
                words.extend(i)
        elements = next((i for i in items if isinstance(i, SElements)), None)
        return SSetItem(kind, tuple(words), _at(meta, self.file), elements)

    def set_type(self, meta: Any, items: list[Any]) -> SSetItem:
        item = self._item("type", meta, items)
        return item if len(items) == 1 else SSetItem("map type", item.words, item.location)

    def set_typeof(self, meta: Any, items: list[Any]) -> SSetItem:
        return self._item("typeof", meta, items)

    def set_flags(self, meta: Any, items: list[Any]) -> SSetItem:
        return self._item("flags", meta, items)

    def set_elements(self, meta: Any, items: list[Any]) -> SSetItem:
        return self._item("elements", meta, items)

    def set_comment(self, meta: Any, items: list[Any]) -> SSetItem:
        return self._item("comment", meta, items)

    def set_size(self, meta: Any, items: list[Any]) -> SSetItem:
        return self._item("size", meta, items)

    def set_policy(self, meta: Any, items: list[Any]) -> SSetItem:
        return self._item("policy", meta, items)

    def set_timeout(self, meta: Any, items: list[Any]) -> SSetItem:
        return self._item("timeout", meta, items)

    def set_gc_interval(self, meta: Any, items: list[Any]) -> SSetItem:
        return self._item("gc-interval", meta, items)

    def set_auto_merge(self, meta: Any, items: list[Any]) -> SSetItem:
        return self._item("auto-merge", meta, items)

    def set_counter(self, meta: Any, items: list[Any]) -> SSetItem:
        return self._item("counter", meta, items)

    def key_type(self, meta: Any, items: list[Token]) -> tuple[Word, ...]:
        return tuple(self._word(i) for i in items)

    def words(self, meta: Any, items: list[Token]) -> tuple[Word, ...]:
        return tuple(self._word(i) for i in items)

    def elements(self, meta: Any, items: list[SElement]) -> SElements:
        return SElements(tuple(items), _at(meta, self.file))

    def element(self, meta: Any, items: list[Any]) -> SElement:
        return SElement(items[0], items[1] if len(items) > 1 else None)

    def rule(self, meta: Any, items: list[Any]) -> SRule:
        comment = str(items[-1])[1:-1] if isinstance(items[-1], Token) else ""
        statements = tuple(i for i in items if not isinstance(i, Token))
        return SRule(statements, _at(meta, self.file), comment)

    def counter(self, meta: Any, items: list[Any]) -> SNop:
        return SNop("counter", _at(meta, self.file))

    def counter_args(self, meta: Any, items: list[Any]) -> None:
        return None

    def log(self, meta: Any, items: list[Any]) -> SNop:
        return SNop("log", _at(meta, self.file))

    def log_prefix(self, meta: Any, items: list[Any]) -> None:
        return None

    def log_level(self, meta: Any, items: list[Any]) -> None:
        return None

    def reject(self, meta: Any, items: list[Any]) -> SVerdict:
        return SVerdict("reject", _at(meta, self.file))

    def reject_with(self, meta: Any, items: list[Any]) -> None:
        return None

    def match(self, meta: Any, items: list[Any]) -> SMatch:
        op = str(items[1]) if len(items) == 3 else None
        return SMatch(items[0], op, items[-1], _at(meta, self.file))

    def verdict_map(self, meta: Any, items: list[Any]) -> SVmap:
        return SVmap(items[0], items[1], _at(meta, self.file))

    def selector(self, meta: Any, items: list[SField]) -> tuple[SField, ...]:
        return tuple(items)

    def field(self, meta: Any, items: list[Token]) -> SField:
        return SField(self._word(items[0]), self._word(items[1]))

    def values(self, meta: Any, items: list[SValue]) -> tuple[SValue, ...]:
        return tuple(items)

    def set_ref(self, meta: Any, items: list[Token]) -> SSetRef:
        return SSetRef(self._word(items[0]))

    def value(self, meta: Any, items: list[Token]) -> SValue:
        return SValue(tuple(self._word(i) for i in items))

    def accept(self, meta: Any, items: list[Any]) -> SVerdict:
        return SVerdict("accept", _at(meta, self.file))

    def drop(self, meta: Any, items: list[Any]) -> SVerdict:
        return SVerdict("drop", _at(meta, self.file))

    def return_(self, meta: Any, items: list[Any]) -> SVerdict:
        return SVerdict("return", _at(meta, self.file))

    def continue_(self, meta: Any, items: list[Any]) -> SVerdict:
        return SVerdict("continue", _at(meta, self.file))

    def jump(self, meta: Any, items: list[Token]) -> SVerdict:
        return SVerdict("jump", _at(meta, self.file), self._word(items[0]))

    def goto(self, meta: Any, items: list[Token]) -> SVerdict:
        return SVerdict("goto", _at(meta, self.file), self._word(items[0]))


_LAST_WORD = re.compile(r"([^\s{};,]+)\s*$")


def _error(location: Location, message: str, hint: str | None = None) -> InputError:
    return InputError(
        [Diagnostic(Code.INVALID_VALUE, Severity.ERROR, message, location=location, hint=hint)]
    )


def parse_script(name: str, text: str) -> Script:
    """Parse one nft file; a syntax this reader does not model is an InputError at the token
    where it starts (never skipped)."""
    try:
        tree = parser("nft").parse(text)
    except UnexpectedInput as exc:
        line, column = max(exc.line, 1), max(exc.column, 1)
        word = None
        if isinstance(exc, UnexpectedToken) and exc.token.type in ("WORD", "STRING"):
            word = str(exc.token)
        elif isinstance(exc, UnexpectedToken | UnexpectedEOF):
            # a statement cut short (``masquerade`` then the end of the line): name the word
            # before the separator, where the construct starts
            before = text.splitlines()[line - 1][: column - 1] if text.splitlines() else ""
            found = _LAST_WORD.search(before)
            if found is not None:
                word, column = found.group(1), found.start(1) + 1
        elif isinstance(exc, UnexpectedCharacters):
            pos = exc.pos_in_stream or 0
            word = text[pos] if pos < len(text) else None
        what = f'"{word}"' if word else "this"
        raise _error(
            Location(name, line, column),
            f"nft: {what} is a construct this reader does not model (or a syntax error)",
            hint="the nft judge reads tables, chains, sets, maps and the statements listed in "
            "npc.rulesets.nft; anything else is refused rather than skipped",
        ) from None
    return Script(name, _ToSyntax(name).transform(tree))
