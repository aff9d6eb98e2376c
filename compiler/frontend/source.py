"""Sources, and reading them into plain data fast (positions are recovered later, lazily).

YAML goes through :mod:`npc.frontend.yamlread` (libyaml events, resolved as kubectl resolves
them; safe
against deep nesting and alias bombs). JSON goes through the ``json`` module, which refuses
deep nesting itself (it raises ``RecursionError`` instead of overflowing the C stack), with a
duplicate-key check per object. Nothing records a position on this path: a clean file of
10,000 pods costs what parsing costs. :mod:`npc.frontend.positions` finds positions when
something has to be reported.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from npc.errors import Code, Diagnostic, Location, Origin, Path, Severity
from npc.frontend.yamlread import MAX_DEPTH, read_yaml

__all__ = [
    "AS_WRITTEN",
    "MAX_DEPTH",
    "Document",
    "ObjectRef",
    "ParseResult",
    "Problem",
    "Source",
    "parse",
]

#: Placeholder in a problem's message or hint for the value as written in the source (the
#: text ``no``, not Python's ``False``); replaced when the problem is located.
AS_WRITTEN = "\x00as-written\x00"

_BOM = "\ufeff"
#: JSON texts larger than this are checked for duplicate keys only where they hold policies.
_JSON_CHECK_LIMIT = 4_000_000
_SPACE = re.compile(r"[ \t\r\n]*")


@dataclass(frozen=True, slots=True)
class Source:
    """One input: a display name (a path, or ``<stdin>``) and its text."""

    name: str
    text: str

    @property
    def looks_like_json(self) -> bool:
        """JSON when named ``*.json`` or when the first non-blank character opens an object."""
        if self.name.endswith(".json"):
            return True
        return self.text.lstrip(" \t\r\n" + _BOM).startswith("{")


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """Where an object lives: a source, a document in it, and the path of the object inside
    the document (``("items", 3)`` for the fourth item of a ``List``)."""

    source: int
    document: int
    root: Path = ()

    def origin(self, path: Path = ()) -> Origin:
        """The origin of the field at ``path`` in this object (the object itself for ``()``)."""
        return Origin(self.source, self.document, (*self.root, *path))


@dataclass(frozen=True, slots=True)
class Problem:
    """A diagnostic whose position is not known yet: an object and a path relative to it.

    ``message`` and ``hint`` may contain :data:`AS_WRITTEN`, replaced by the
    value as written in the source (``fallback`` when it cannot be found)."""

    code: Code
    message: str
    ref: ObjectRef
    path: Path = ()
    hint: str | None = None
    at_key: bool = False
    severity: Severity = Severity.ERROR
    fallback: str = ""


@dataclass(slots=True)
class Document:
    """One parsed document of a source."""

    source: int
    index: int
    data: Any
    has_duplicates: bool = False


@dataclass(slots=True)
class ParseResult:
    """What :func:`parse` returns for one source."""

    documents: list[Document] = field(default_factory=list)
    problems: list[Diagnostic] = field(default_factory=list)
    #: (start, end) character offsets of each JSON document; None for YAML
    json_spans: list[tuple[int, int]] | None = None


def _error(
    code: Code, message: str, location: Location | None, hint: str | None = None
) -> Diagnostic:
    return Diagnostic(code, Severity.ERROR, message, "", location, hint)


def parse(index: int, source: Source) -> ParseResult:
    """Parse all documents of one source into plain data (the fast path).

    Errors come back with their position; documents before an error are kept.
    """
    if not source.looks_like_json:
        return _parse_yaml(index, source)
    result = _parse_json(index, source)
    if result.problems and not result.documents and not source.name.endswith(".json"):
        # `{apiVersion: v1, ...}` is YAML flow style, not broken JSON.
        as_yaml = _parse_yaml(index, source)
        if not as_yaml.problems:
            return as_yaml
    return result


def _parse_yaml(index: int, source: Source) -> ParseResult:
    result = ParseResult()
    read = read_yaml(source.text)
    for i, data in enumerate(read.documents):
        result.documents.append(Document(index, i, data, i in read.duplicates))
    for note in read.notes:
        result.problems.append(
            Diagnostic(
                note.code,
                note.severity,
                note.message,
                "",
                Location(source.name, note.line + 1, note.column + 1),
                note.hint,
            )
        )
    if read.error is not None:
        code, message, line, column, hint = read.error
        location = Location(source.name, line + 1, column + 1)
        result.problems.append(
            _error(code, message, location, hint or _yaml_hint(source, line, column, message))
        )
    return result


def _yaml_hint(source: Source, line: int, column: int, message: str) -> str | None:
    """A hint for libyaml's terse syntax errors, from the character it stopped at."""
    lines = source.text.splitlines()
    text = lines[line] if line < len(lines) else ""
    if "\t" in text[: column + 1] or (column < len(text) and text[column] == "\t"):
        return "YAML does not allow tabs for indentation; use spaces"
    if "mapping values are not allowed" in message:
        return (
            "check the indentation of this line and the one above, and quote values "
            "that contain ': '"
        )
    if "did not find expected key" in message or "did not find expected '-'" in message:
        return "check the indentation: items of one mapping or list must line up"
    if "found unexpected end" in message or "did not find expected ',' or" in message:
        return "a quote or bracket is not closed (or a comma is missing)"
    return None


def _parse_json(index: int, source: Source) -> ParseResult:
    result = ParseResult(json_spans=[])
    text = source.text
    duplicates = False

    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal duplicates
        obj = dict(pairs)
        if len(obj) != len(pairs):
            duplicates = True
        return obj

    checked = json.JSONDecoder(object_pairs_hook=pairs_hook)
    # A big text is machine output (`kubectl get -o json`): parse it at C speed, and check
    # for duplicate keys only the documents that hold objects decoded strictly.
    fast = len(text) > _JSON_CHECK_LIMIT
    # A text that names NetworkPolicy probably holds some: parse it checked once, rather
    # than fast and again checked (what is checked is the same: documents holding one).
    once = fast and "NetworkPolicy" in text
    decoder = json.JSONDecoder() if fast and not once else checked
    spans: list[tuple[int, int]] = []
    start = 1 if text.startswith(_BOM) else 0
    pos = _SPACE.match(text, start).end()  # type: ignore[union-attr]
    length = len(text)
    while pos < length:
        duplicates = False
        try:
            data, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            result.problems.append(
                _error(
                    Code.JSON_SYNTAX,
                    f"invalid JSON: {exc.msg}",
                    Location(source.name, exc.lineno, exc.colno),
                    _json_hint(exc),
                )
            )
            break
        except RecursionError:
            line = text.count("\n", 0, pos)
            result.problems.append(
                _error(
                    Code.TOO_DEEP,
                    "refusing input nested too deeply",
                    Location(source.name, line + 1, pos - (text.rfind("\n", 0, pos) + 1) + 1),
                    "Kubernetes objects nest fewer than 30 levels; is this file generated wrongly?",
                )
            )
            break
        if once and not _holds_policy(data):
            duplicates = False
        elif fast and not once and _holds_policy(data):
            checked.raw_decode(text, pos)
        result.documents.append(Document(index, len(spans), data, duplicates))
        spans.append((pos, end))
        pos = _SPACE.match(text, end).end()  # type: ignore[union-attr]
    result.json_spans = spans
    return result


def _holds_policy(data: Any) -> bool:
    """Whether a document holds a NetworkPolicy (directly or in a List)."""
    stack = [data]
    while stack:
        obj = stack.pop()
        if not isinstance(obj, dict):
            continue
        kind = obj.get("kind")
        if kind in ("NetworkPolicy", "NetworkPolicyList"):
            return True
        if isinstance(kind, str) and kind.endswith("List") and isinstance(obj.get("items"), list):
            stack.extend(obj["items"])
    return False


def _json_hint(exc: json.JSONDecodeError) -> str | None:
    if "Expecting property name enclosed in double quotes" in exc.msg:
        following = exc.doc[exc.pos : exc.pos + 1]
        if following == "}":
            return "JSON does not allow a comma before '}'"
        return "JSON keys need double quotes"
    if "Expecting value" in exc.msg and exc.doc[exc.pos : exc.pos + 1] in "]}":
        return "JSON does not allow a trailing comma"
    if "Expecting ',' delimiter" in exc.msg:
        return "a comma is missing between two items"
    return None
