"""The side table of source positions, recovered lazily (the slow path).

The fast path (:mod:`npc.frontend.yamlread`, the ``json`` module) keeps no positions at all. When
something must be reported, :class:`SourceMap` walks the source again, event by event, and
records the marks of exactly the paths asked for (a missing path falls back to its nearest
ancestor, so a missing field points at the mapping that lacks it). Subtrees nobody asked about
are skipped: in JSON in C (``raw_decode`` jumps over them), in YAML by counting events.

Requests are answered in batches (one walk per source, however many problems it has), and a
small source is indexed whole on the first single request, so repeated lookups stay cheap.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import yaml
from yaml import events as ev

from npc.errors import Diagnostic, Location, Path, format_path
from npc.frontend.source import AS_WRITTEN, Problem, Source
from npc.frontend.yamlread import MERGE, events, key_text

__all__ = ["Duplicate", "Request", "SourceMap"]

#: (source, document, path, at_key)
Request = tuple[int, int, Path, bool]

# Event kinds of the walk.
_SCALAR, _MAP, _SEQ, _END, _ALIAS, _DOC, _DOC_END = range(7)
_INDEX_LIMIT = 4_000_000  # sources up to this size are indexed whole on a single request

_JSON_TOKEN = re.compile(
    r'[ \t\r\n]*(?:("(?:[^"\\\x00-\x1f]|\\.)*")|([{}\[\]])|([,:])|([^\s{}\[\],:"]+))'
)


@dataclass(frozen=True, slots=True)
class Duplicate:
    """A repeated mapping key: where it repeats, where it was first, and the value it gets."""

    path: Path
    where: Location
    first: Location
    value: str | None


@dataclass(slots=True)
class _Found:
    line: int
    column: int
    key_line: int = -1
    key_column: int = -1
    text: str | None = None


class _Yaml:
    """Events of a YAML source (libyaml's parser, which never recurses)."""

    def __init__(self, text: str) -> None:
        self._events = events(text)

    def __iter__(self) -> Iterator[tuple[int, Any, int, int]]:
        try:
            for event in self._events:
                cls = event.__class__
                mark: Any = event.start_mark
                if cls is ev.ScalarEvent:
                    yield _SCALAR, event, mark.line, mark.column
                elif cls is ev.MappingStartEvent:
                    yield _MAP, None, mark.line, mark.column
                elif cls is ev.SequenceStartEvent:
                    yield _SEQ, None, mark.line, mark.column
                elif cls is ev.MappingEndEvent or cls is ev.SequenceEndEvent:
                    yield _END, None, mark.line, mark.column
                elif cls is ev.AliasEvent:
                    yield _ALIAS, None, mark.line, mark.column
                elif cls is ev.DocumentStartEvent:
                    yield _DOC, None, mark.line, mark.column
                elif cls is ev.DocumentEndEvent:
                    yield _DOC_END, None, mark.line, mark.column
        except yaml.YAMLError:
            return  # the fast path reported it; positions after it degrade

    @staticmethod
    def key(payload: Any) -> Any:
        try:
            return key_text(payload)
        except Exception:  # a key the fast path refused; it is never asked for
            return None

    @staticmethod
    def text(payload: Any) -> str:
        return str(payload.value)


class _Json:
    """Events of a JSON source: its documents' spans, tokenized; skipped subtrees are jumped
    over by the C decoder."""

    def __init__(self, text: str, spans: list[tuple[int, int]]) -> None:
        self._source = text
        self.spans = spans
        self.only: set[int] | None = None
        self._lines = [m.end() for m in re.finditer("\n", text)]
        self._pos = 0
        self._decoder = json.JSONDecoder()

    def _where(self, index: int) -> tuple[int, int]:
        line = bisect.bisect_right(self._lines, index)
        return line, index - (self._lines[line - 1] if line else 0)

    def __iter__(self) -> Iterator[tuple[int, Any, int, int]]:
        text = self._source
        for doc, (start, end) in enumerate(self.spans):
            line, column = self._where(start)
            yield _DOC, None, line, column
            if self.only is not None and doc not in self.only:
                yield _DOC_END, None, line, column
                continue
            self._pos = start
            while self._pos < end:
                m = _JSON_TOKEN.match(text, self._pos, end)
                if m is None or m.end() == self._pos:
                    break
                self._pos = m.end()
                string, bracket, _, literal = m.groups()
                index = m.start(1) if string else m.start(2) if bracket else m.start(4)
                if string is None and bracket is None and literal is None:
                    continue
                line, column = self._where(index)
                if bracket is not None:
                    kind = {"{": _MAP, "[": _SEQ}.get(bracket, _END)
                    self._open = index
                    yield kind, None, line, column
                else:
                    yield _SCALAR, string if string is not None else literal, line, column
            yield _DOC_END, None, *self._where(end)

    def skip(self) -> bool:
        """Jump over the container that was just opened (its end event is not produced)."""
        try:
            _, self._pos = self._decoder.raw_decode(self._source, self._open)
        except ValueError:
            return False
        return True

    @staticmethod
    def key(payload: Any) -> Any:
        return json.loads(payload) if payload.startswith('"') else payload

    @staticmethod
    def text(payload: Any) -> str:
        return str(payload)


def _prefixes(paths: Iterable[Path]) -> set[Path]:
    out: set[Path] = set()
    for path in paths:
        for i in range(len(path) + 1):
            out.add(path[:i])
    return out


class _Walker:
    """Walks one source's events and records the positions of the wanted paths."""

    def __init__(self, source: Any, name: str) -> None:
        self.source = source
        self.name = name

    def walk(
        self,
        wanted: dict[int, set[Path] | None],
        duplicates: set[int] = frozenset(),  # type: ignore[assignment]
    ) -> tuple[dict[int, dict[Path, _Found]], dict[int, list[Duplicate]]]:
        """``wanted`` maps a document to the paths asked for in it (None: every path)."""
        found: dict[int, dict[Path, _Found]] = {}
        dups: dict[int, list[Duplicate]] = {}
        last = max([*wanted, *duplicates], default=-1)
        doc = -1
        src = self.source
        if isinstance(src, _Json):
            src.only = {*wanted, *duplicates}
        events = iter(src)
        key_of, text_of = src.key, src.text
        skip = getattr(src, "skip", None)
        for kind, _, line, column in events:
            if kind == _DOC:
                doc += 1
                if doc > last:
                    break
                if doc not in wanted and doc not in duplicates:
                    continue
                prefixes = wanted.get(doc, set())
                every = prefixes is None or doc in duplicates
                table = found.setdefault(doc, {})
                self._document(
                    events,
                    table,
                    None if every else _prefixes(prefixes or ()),
                    dups.setdefault(doc, []) if doc in duplicates else None,
                    key_of,
                    text_of,
                    skip,
                    (line, column),
                )
        return found, dups

    def _document(
        self,
        events: Iterator[tuple[int, Any, int, int]],
        table: dict[Path, _Found],
        prefixes: set[Path] | None,
        dups: list[Duplicate] | None,
        key_of: Any,
        text_of: Any,
        skip: Any,
        start: tuple[int, int],
    ) -> None:
        table[()] = _Found(*start)
        # Frames: [is_map, path (None: not tracked), next index or pending key, key mark,
        # keys seen (duplicate search)]
        stack: list[list[Any]] = []
        pending_dup: Duplicate | None = None
        name = self.name
        for kind, payload, line, column in events:
            if kind == _DOC_END:
                return
            if kind == _END:
                stack.pop()
                continue
            frame = stack[-1] if stack else None
            path: Path | None
            key_mark = (-1, -1)
            if frame is None:
                path = ()
            elif frame[1] is None:
                path = None
            elif frame[0]:
                if frame[2] is _NONE:  # this node is a key
                    if kind != _SCALAR:  # a complex key (refused by the fast path)
                        frame[2] = _COMPLEX
                        frame[3] = (line, column)
                        if kind in (_MAP, _SEQ):
                            stack.append([False, None, 0, None, None])
                        continue
                    key = key_of(payload)
                    frame[2] = key
                    frame[3] = (line, column)
                    seen = frame[4]
                    if seen is not None and key is not MERGE and isinstance(key, str):
                        if key in seen:
                            first = seen[key]
                            pending_dup = Duplicate(
                                (*frame[1], key),
                                Location(name, line + 1, column + 1),
                                Location(name, first[0] + 1, first[1] + 1),
                                None,
                            )
                            dups.append(pending_dup)  # type: ignore[union-attr]
                        else:
                            seen[key] = (line, column)
                    continue
                key = frame[2]
                key_mark = frame[3]
                frame[2] = _NONE
                path = None if key is _COMPLEX or key is MERGE else (*frame[1], key)
            else:
                path = (*frame[1], frame[2])
                frame[2] += 1
            if pending_dup is not None and dups is not None:
                if kind == _SCALAR:
                    dups[-1] = Duplicate(
                        pending_dup.path, pending_dup.where, pending_dup.first, text_of(payload)
                    )
                pending_dup = None
            tracked = path is not None and (prefixes is None or path in prefixes)
            if tracked:
                assert path is not None
                table[path] = _Found(
                    line,
                    column,
                    key_mark[0],
                    key_mark[1],
                    text_of(payload) if kind == _SCALAR else None,
                )
            if kind in (_MAP, _SEQ):
                if not tracked and skip is not None and skip():
                    continue
                stack.append(
                    [
                        kind == _MAP,
                        path if tracked else None,
                        _NONE if kind == _MAP else 0,
                        None,
                        {} if tracked and dups is not None and kind == _MAP else None,
                    ]
                )


_NONE: Any = object()
_COMPLEX: Any = object()


class SourceMap:
    """Positions of paths in the sources, recovered on demand.

    Holds the sources; ``set_json_spans`` tells it where a JSON source's documents are.
    """

    def __init__(self, sources: list[Source]) -> None:
        self.sources = sources
        self._spans: dict[int, list[tuple[int, int]]] = {}
        self._cache: dict[tuple[int, int], dict[Path, _Found]] = {}
        self._asked: dict[tuple[int, int], set[Path]] = {}
        self._indexed: set[tuple[int, int]] = set()

    def set_json_spans(self, source: int, spans: list[tuple[int, int]]) -> None:
        """Record where each JSON document of a source starts and ends (character offsets)."""
        self._spans[source] = spans

    def _walker(self, source: int) -> _Walker:
        src = self.sources[source]
        spans = self._spans.get(source)
        events: Any = _Json(src.text, spans) if spans is not None else _Yaml(src.text)
        return _Walker(events, src.name)

    def _doc_start(self, source: int, document: int) -> Location:
        spans = self._spans.get(source)
        name = self.sources[source].name
        if spans is not None and document < len(spans):
            text = self.sources[source].text
            start = spans[document][0]
            line = text.count("\n", 0, start)
            return Location(name, line + 1, start - (text.rfind("\n", 0, start) + 1) + 1)
        return Location(name, 1, 1)

    def _answer(self, request: Request) -> tuple[Location, str | None]:
        source, document, path, at_key = request
        table = self._cache.get((source, document))
        if not table:
            return self._doc_start(source, document), None
        name = self.sources[source].name
        for i in range(len(path), -1, -1):
            hit = table.get(path[:i])
            if hit is None:
                continue
            exact = i == len(path)
            if at_key and exact and hit.key_line >= 0:
                return Location(name, hit.key_line + 1, hit.key_column + 1), hit.text
            return Location(name, hit.line + 1, hit.column + 1), hit.text if exact else None
        return self._doc_start(source, document), None

    def prepare(self, requests: Iterable[Request]) -> None:
        """Find the positions of many paths at once: one walk per source."""
        by_source: dict[int, dict[int, set[Path] | None]] = {}
        for source, document, path, _ in requests:
            key = (source, document)
            asked = self._asked.setdefault(key, set())
            if key in self._indexed or path in asked:
                continue
            asked.add(path)
            docs = by_source.setdefault(source, {})
            paths = docs.setdefault(document, set())
            assert paths is not None
            paths.add(path)
        for source, docs in by_source.items():
            found, _ = self._walker(source).walk(docs)
            for document, table in found.items():
                self._cache.setdefault((source, document), {}).update(table)

    def locate(self, source: int, document: int, path: Path, at_key: bool = False) -> Location:
        """Position of ``path`` in a document: the value's start, or its key's with ``at_key``.

        Falls back to the nearest ancestor that exists, so a missing required field points at
        the mapping that lacks it."""
        return self.located(source, document, path, at_key)[0]

    def located(
        self, source: int, document: int, path: Path, at_key: bool = False
    ) -> tuple[Location, str | None]:
        """:meth:`locate`, plus the scalar's text as written when the path is a scalar."""
        key = (source, document)
        if key not in self._indexed and path not in self._asked.get(key, ()):
            if len(self.sources[source].text) <= _INDEX_LIMIT:
                found, _ = self._walker(source).walk({document: None})
                self._cache[key] = found.get(document, {})
                self._indexed.add(key)
            else:
                self.prepare([(source, document, path, at_key)])
        return self._answer((source, document, path, at_key))

    def duplicates(self, source: int, document: int) -> list[Duplicate]:
        """Every repeated mapping key in a document, with both positions."""
        _, dups = self._walker(source).walk({}, {document})
        return dups.get(document, [])

    def diagnostic(self, problem: Problem) -> Diagnostic:
        """Turn a pending problem into a located diagnostic."""
        ref = problem.ref
        location, text = self.located(
            ref.source, ref.document, (*ref.root, *problem.path), problem.at_key
        )
        message, hint = problem.message, problem.hint
        if AS_WRITTEN in message or (hint is not None and AS_WRITTEN in hint):
            shown = text if text is not None else problem.fallback
            message = message.replace(AS_WRITTEN, shown)
            hint = hint.replace(AS_WRITTEN, shown) if hint is not None else None
        return Diagnostic(
            problem.code, problem.severity, message, format_path(problem.path), location, hint
        )

    def diagnostics(self, problems: Iterable[Problem]) -> list[Diagnostic]:
        """Locate many problems at once (one walk per source)."""
        items = list(problems)
        self.prepare(
            (p.ref.source, p.ref.document, (*p.ref.root, *p.path), p.at_key) for p in items
        )
        return [self.diagnostic(p) for p in items]
