"""Reading YAML the way kubectl does, fast and safely, from libyaml's event stream.

kubectl turns YAML into JSON with ``sigs.k8s.io/yaml``, which resolves plain scalars as goyaml
v2 does (YAML 1.1 flavoured): ``y``/``yes``/``on`` are booleans, ``0x1F`` and ``017`` are
integers, timestamps stay strings, and a number is whatever ``json.Marshal`` makes of it (so
``80.0`` reaches the API server as ``80``). Non-string keys become strings (``80:`` is ``"80"``,
``yes:`` is ``"true"``). This module reproduces that, so npc accepts and rejects what kubectl
does.

It builds plain Python data straight from libyaml's events (the C parser keeps its own stack,
so no input can overflow the C stack), which is several times faster than PyYAML's
``CSafeLoader`` (whose composer and resolver dominate its run time). On the way it measures
nesting (refused beyond :data:`MAX_DEPTH`), notices duplicate keys (their positions are found
later, on the slow path), expands merge keys and aliases, and refuses alias bombs.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml import events as ev

from npc.errors import Code, Severity
from npc.kubeyaml import (
    NUMERIC_START,
    SPECIAL_KEYS,
    WORDS,
    json_number,
    resolve_number,
    resolve_plain,
)

__all__ = [
    "MAX_DEPTH",
    "ReadNote",
    "YamlRead",
    "events",
    "expansion",
    "key_text",
    "read_yaml",
    "resolve_plain",
]

#: Deepest nesting accepted. Kubernetes objects stay well below 30 levels.
MAX_DEPTH = 200
# Alias limits as goyaml v2 (kubectl's parser) sets them: nodes reached through aliases may
# be 99% of a small document's nodes, falling to 10% from 4,000,000 nodes on.
_ALIAS_RATIO_LOW, _ALIAS_RATIO_HIGH = 400_000, 4_000_000


def _allowed_alias_ratio(nodes: int) -> float:
    if nodes <= _ALIAS_RATIO_LOW:
        return 0.99
    if nodes >= _ALIAS_RATIO_HIGH:
        return 0.10
    return 0.99 - 0.89 * (nodes - _ALIAS_RATIO_LOW) / (_ALIAS_RATIO_HIGH - _ALIAS_RATIO_LOW)


try:
    from yaml._yaml import CParser as _Parser
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml.loader import BaseLoader as _Parser  # type: ignore[assignment]

_NOT_A_WORD = object()
_TAG = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = (f"{_TAG}{t}" for t in ("str", "int", "float", "bool", "null"))
_BINARY, _TIMESTAMP, _MERGE_TAG = f"{_TAG}binary", f"{_TAG}timestamp", f"{_TAG}merge"


def _resolve(text: str) -> tuple[str, Any]:
    """(kind, value) of a plain scalar, as goyaml v2 resolves it."""
    word = WORDS.get(text, _NOT_A_WORD)
    if word is not _NOT_A_WORD:
        if word is None:
            return "null", None
        return ("bool" if isinstance(word, bool) else "float"), word
    if text[0] in NUMERIC_START:
        return resolve_number(text)
    return "str", text


class ReadError(Exception):
    """A problem that stops reading the source (the documents before it are kept)."""

    def __init__(self, code: Code, message: str, mark: Any, hint: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.mark = mark
        self.hint = hint


def _short(tag: str) -> str:
    return "!!" + tag[len(_TAG) :] if tag.startswith(_TAG) else tag


def _tagged(tag: str, text: str, mark: Any) -> Any:
    """A scalar with an explicit tag (``!!int "80"``); unknown tags leave the text a string."""
    if tag in (_STR, "!", _TIMESTAMP):
        return text
    if tag == _BINARY:
        try:
            return base64.b64decode(text.replace("\n", ""), validate=True).decode(
                "utf-8", "replace"
            )
        except (binascii.Error, ValueError):
            raise ReadError(
                Code.YAML_SYNTAX, "!!binary value contains invalid base64 data", mark
            ) from None
    wanted = {_INT: "int", _FLOAT: "float", _BOOL: "bool", _NULL: "null"}.get(tag)
    if wanted is None:
        return text
    resolved: tuple[str, Any] = _resolve(text) if text else ("null", None)
    kind, value = resolved
    if kind == "int" and wanted == "float":
        kind, value = "float", float(value)
    if kind != wanted:
        raise ReadError(
            Code.YAML_SYNTAX,
            f"cannot decode {_short(_TAG + kind)} `{text}` as a {_short(tag)}",
            mark,
            f"remove the tag {_short(tag)}, or fix the value",
        )
    return json_number(value) if kind == "float" else value


class _Merge:
    """The plain key ``<<``: the value is merged into the mapping."""


MERGE = _Merge()


def key_text(event: ev.ScalarEvent) -> str | _Merge | Any:
    """The string a scalar key becomes in kubectl's JSON, or :data:`MERGE`.

    Returns the resolved non-string value (None, a float) when kubectl cannot convert it."""
    text = event.value
    if event.implicit[0]:
        if text == "<<":
            return MERGE
        value = resolve_plain(text) if text else None
    elif event.tag is not None and event.tag != "!":
        if event.tag == _MERGE_TAG and text == "<<":
            return MERGE
        value = _tagged(event.tag, text, event.start_mark)
    else:
        return text
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return value


@dataclass(slots=True)
class ReadNote:
    """A warning found while reading, at a 0-based line and column."""

    code: Code
    message: str
    line: int
    column: int
    hint: str | None = None
    severity: Severity = Severity.WARNING


@dataclass(slots=True)
class YamlRead:
    """What :func:`read_yaml` returns for one text."""

    documents: list[Any] = field(default_factory=list)
    #: indices of documents that repeat a key in some mapping
    duplicates: set[int] = field(default_factory=set)
    notes: list[ReadNote] = field(default_factory=list)
    #: the problem that stopped reading, if any: (code, message, line, column, hint)
    error: tuple[Code, str, int, int, str | None] | None = None


def expansion(data: Any) -> tuple[int, int]:
    """(expanded node count, distinct node count) of a document's data.

    Aliases make the data a DAG; this counts it both ways (as a tree, and each node once)
    without recursion."""
    sizes: dict[int, int] = {}
    distinct = 0 if isinstance(data, dict | list) else 1
    stack: list[tuple[Any, bool]] = [(data, False)]
    while stack:
        obj, done = stack.pop()
        if not isinstance(obj, dict | list):
            continue
        oid = id(obj)
        if oid in sizes and not done:
            continue
        children = list(obj.values()) if isinstance(obj, dict) else obj
        if not done:
            sizes[oid] = -1
            stack.append((obj, True))
            stack.extend((c, False) for c in children if isinstance(c, dict | list))
            continue
        total = 1
        distinct += 1
        for c in children:
            if isinstance(c, dict | list):
                total += max(sizes.get(id(c), 1), 1)
            else:
                total += 1
                distinct += 1
        sizes[oid] = total
    return sizes.get(id(data), 1), distinct


_NO_KEY: Any = object()
_COMPLEX_HINT = "a key must be a plain string"


def _merge_into(target: dict[str, Any], sources: list[Any], mark: Any) -> None:
    """Apply ``<<`` merges: explicit keys win, and earlier merged mappings win over later."""
    merged: dict[str, Any] = {}
    for value in reversed(sources):
        items = value if isinstance(value, list) else [value]
        for item in reversed(items):
            if not isinstance(item, dict):
                raise ReadError(
                    Code.YAML_SYNTAX,
                    "a merge key (<<) needs a mapping or a list of mappings",
                    mark,
                )
            merged.update(item)
    explicit = dict(target)
    target.clear()
    target.update(merged)
    target.update(explicit)


def read_yaml(text: str) -> YamlRead:
    """Read every document of a YAML text into plain data (the fast path)."""
    result = YamlRead()
    try:
        parser = _Parser(text)
    except UnicodeEncodeError as exc:  # a lone surrogate: text from a library caller
        line = text.count("\n", 0, exc.start)
        column = exc.start - (text.rfind("\n", 0, exc.start) + 1)
        result.error = (
            Code.UNREADABLE,
            f"invalid character {text[exc.start]!r}: not Unicode text",
            line,
            column,
            None,
        )
        return result
    try:
        _read(parser, result)
    except ReadError as exc:
        mark = exc.mark
        line, column = (mark.line, mark.column) if mark is not None else (0, 0)
        result.error = (exc.code, exc.message, line, column, exc.hint)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line, mark.column) if mark is not None else (0, 0)
        result.error = (Code.YAML_SYNTAX, _syntax_message(exc), line, column, None)
    except yaml.YAMLError as exc:  # pragma: no cover - libyaml errors always carry marks
        result.error = (Code.YAML_SYNTAX, f"invalid YAML: {exc}", 0, 0, None)
    finally:
        parser.dispose()
    return result


def events(text: str) -> Iterator[Any]:
    """libyaml's events for a text (its parser keeps its own stack: no input overflows ours).

    Raises ``yaml.YAMLError`` where the text stops being YAML."""
    parser = _Parser(text)
    try:
        while True:
            event = parser.get_event()
            yield event
            if isinstance(event, ev.StreamEndEvent):
                return
    finally:
        parser.dispose()


def _syntax_message(exc: yaml.MarkedYAMLError) -> str:
    problem = exc.problem or str(exc)
    if exc.context:
        if "while" in exc.context:
            return f"invalid YAML: {problem} ({exc.context})"
        return f"invalid YAML: {exc.context}: {problem}"
    return f"invalid YAML: {problem}"


def _read(parser: Any, result: YamlRead) -> None:
    """The event loop. Hot: every node of a 10,000-pod snapshot passes here."""
    get = parser.get_event
    scalar_t, map_t, seq_t = ev.ScalarEvent, ev.MappingStartEvent, ev.SequenceStartEvent
    map_end_t, seq_end_t, alias_t = ev.MappingEndEvent, ev.SequenceEndEvent, ev.AliasEvent
    doc_start_t, stream_end_t = ev.DocumentStartEvent, ev.StreamEndEvent
    documents = result.documents
    # The open container, whether it is a mapping, the pending key (mappings), and the
    # merge sources of the open mapping; parents wait on the stack.
    stack: list[tuple[Any, bool, Any, list[Any] | None]] = []
    cur: Any = None
    is_map = False
    key: Any = _NO_KEY
    merges: list[Any] | None = None
    anchors: dict[str, Any] = {}
    aliased = False
    doc = -1
    doc_mark: Any = None
    root: Any = None

    while True:
        event = get()
        cls = event.__class__
        if cls is scalar_t:
            if is_map and key is _NO_KEY:
                if event.implicit[0] and event.anchor is None:
                    text = event.value
                    if text and text[0] not in NUMERIC_START and text not in SPECIAL_KEYS:
                        key = text  # the common case: a plain word
                        continue
                key = _scalar_key(event, result)
                if event.anchor is not None:
                    anchors[event.anchor] = key
                continue
            if event.implicit[0]:
                text = event.value
                value = resolve_plain(text) if text else None
            elif event.tag is not None:
                value = _tagged(event.tag, event.value, event.start_mark)
            else:
                value = event.value
            if event.anchor is not None:
                anchors[event.anchor] = value
        elif cls is map_t or cls is seq_t:
            if is_map and key is _NO_KEY:
                raise ReadError(
                    Code.YAML_SYNTAX,
                    "a mapping or list cannot be a key",
                    event.start_mark,
                    _COMPLEX_HINT,
                )
            new: Any = {} if cls is map_t else []
            if event.anchor is not None:
                anchors[event.anchor] = new
            stack.append((cur, is_map, key, merges))
            if len(stack) > MAX_DEPTH:
                raise ReadError(
                    Code.TOO_DEEP,
                    f"refusing input nested deeper than {MAX_DEPTH} levels",
                    event.start_mark,
                    "Kubernetes objects nest fewer than 30 levels; is this file generated wrongly?",
                )
            cur, is_map, key, merges = new, cls is map_t, _NO_KEY, None
            continue
        elif cls is map_end_t or cls is seq_end_t:
            value = cur
            if merges is not None:
                _merge_into(value, merges, event.start_mark)
            cur, is_map, key, merges = stack.pop()
        elif cls is alias_t:
            if event.anchor not in anchors:
                raise ReadError(
                    Code.YAML_SYNTAX,
                    f"found undefined alias {event.anchor!r}",
                    event.start_mark,
                    "define the anchor (&name) before its alias (*name)",
                )
            value = anchors[event.anchor]
            if isinstance(value, dict | list) and (
                value is cur or any(value is frame[0] for frame in stack)
            ):
                raise ReadError(
                    Code.YAML_SYNTAX,
                    f"alias *{event.anchor} refers to a node that contains it",
                    event.start_mark,
                )
            aliased = True
            if is_map and key is _NO_KEY:
                raise ReadError(
                    Code.YAML_SYNTAX, "an alias cannot be a key", event.start_mark, _COMPLEX_HINT
                )
        elif cls is doc_start_t:
            doc += 1
            doc_mark = event.start_mark
            anchors = {}
            aliased = False
            root = None
            continue
        elif cls is ev.DocumentEndEvent:
            if aliased:
                root = _check_expansion(root, doc, doc_mark, result)
            documents.append(root)
            continue
        elif cls is stream_end_t:
            return
        else:
            continue  # stream start
        # A complete value: put it where it belongs.
        if is_map:
            if key is MERGE:
                if merges is None:
                    merges = []
                merges.append(value)
            else:
                if key in cur:
                    result.duplicates.add(doc)
                cur[key] = value
            key = _NO_KEY
        elif cur is not None:
            cur.append(value)
        else:
            root = value


def _scalar_key(event: ev.ScalarEvent, result: YamlRead) -> Any:
    """A mapping key that is not a plain word: convert it as sigs.k8s.io/yaml does."""
    key = key_text(event)
    if key is MERGE or isinstance(key, str):
        if isinstance(key, str) and event.implicit[0] and key != event.value:
            mark: Any = event.start_mark
            result.notes.append(
                ReadNote(
                    Code.CONVERTED_KEY,
                    f'key {event.value} is read as "{key}", as kubectl reads it',
                    mark.line,
                    mark.column,
                    f'quote the key if you mean the text: "{event.value}"',
                )
            )
        return key
    what = "null" if key is None else "a non-integer number"
    raise ReadError(
        Code.YAML_SYNTAX,
        f"unsupported mapping key {event.value or '(empty)'}: it is read as {what}, "
        f"which cannot be a key",
        event.start_mark,
        f'quote it to make it a string: "{event.value}"',
    )


def _check_expansion(root: Any, doc: int, mark: Any, result: YamlRead) -> Any:
    expanded, distinct = expansion(root)
    aliased = expanded - distinct
    if aliased <= 100 or expanded <= 1000 or aliased / expanded <= _allowed_alias_ratio(expanded):
        return root
    result.notes.append(
        ReadNote(
            Code.ALIAS_BOMB,
            f"document {doc + 1} expands through YAML aliases to {expanded} nodes from "
            f"{distinct}; refusing it",
            mark.line,
            mark.column,
            "this looks like an alias bomb ('billion laughs')",
            Severity.ERROR,
        )
    )
    return None
