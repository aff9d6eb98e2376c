"""Reading YAML and JSON documents fast, and finding source positions only when needed.

The fast path parses with libyaml (``CSafeLoader``) or the ``json`` module into plain Python
data and records nothing per node. Positions live in a side table, :class:`SourceMap`, which
re-composes a file's node tree only when something in it has to be reported; a clean file of
10,000 pods therefore costs what libyaml costs, plus one duplicate-key check per mapping.

Unsafe input is refused before the parser sees it: nesting deeper than :data:`MAX_DEPTH`
(libyaml's composer recurses in C and crashes on deep input) and alias bombs (documents that
expand to far more nodes than they contain).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from npc.errors import Code, Diagnostic, Location, Path, Severity, format_path

__all__ = [
    "MAX_DEPTH",
    "Document",
    "ObjectRef",
    "ParseResult",
    "Problem",
    "Source",
    "SourceMap",
    "parse",
]

#: Deepest nesting accepted. Kubernetes objects stay well below 30 levels.
MAX_DEPTH = 200
#: A document may expand through aliases to at most this many times its distinct nodes.
MAX_ALIAS_EXPANSION = 100
_ALIAS_SLACK = 10_000

_YamlLoader: type[yaml.SafeLoader]
try:
    _YamlLoader = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _YamlLoader = yaml.SafeLoader


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
        stripped = self.text.lstrip()
        return stripped.startswith("{")


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """Where an object lives: a source, a document in it, and the path of the object inside
    the document (``("items", 3)`` for the fourth item of a ``List``)."""

    source: int
    document: int
    root: Path = ()


@dataclass(frozen=True, slots=True)
class Problem:
    """A diagnostic whose position is not known yet: an object and a path relative to it."""

    code: Code
    message: str
    ref: ObjectRef
    path: Path = ()
    hint: str | None = None
    at_key: bool = False
    severity: Severity = Severity.ERROR


@dataclass(slots=True)
class Document:
    """One parsed document of a source."""

    source: int
    index: int
    data: Any
    has_duplicates: bool = False


class _StrictYamlLoader(_YamlLoader):  # type: ignore[misc,valid-type]
    """libyaml loader that notices duplicate keys and keeps timestamps as strings.

    Kubernetes decodes YAML through JSON, so ``2024-01-01`` is a string to it, never a date.
    Duplicate keys are only *noticed* here (a length comparison per mapping); their exact
    positions are found later, on the slow path.
    """

    duplicates_seen = False

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        own = node.value  # flatten_mapping() deletes merge keys from this very list
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        if len(mapping) < len(own):
            self.duplicates_seen = True
        return mapping


_StrictYamlLoader.add_constructor(
    "tag:yaml.org,2002:timestamp", _StrictYamlLoader.construct_yaml_str
)

# A line that nests MAX_DEPTH block levels: indentation or compact "- " / "? " indicators.
_DEEP_BLOCK = re.compile(rf"^(?:[ \t]|[-?:][ \t]){{{MAX_DEPTH}}}", re.MULTILINE)
_BRACKETS = re.compile(r"[\[\]{}]")
# Something that could be an alias (``*name`` where a node may start); false positives only
# cost a safety walk.
_MAYBE_ALIAS = re.compile(r"(?:^|[\s\[{,])\*[^\s,\[\]{}]")


def _too_deep(text: str) -> bool:
    """Conservative, C-speed check that the text cannot nest deeper than MAX_DEPTH."""
    if _DEEP_BLOCK.search(text):
        return True
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return False
    depth = 0
    for match in _BRACKETS.finditer(text):
        if match.group() in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif depth:
            depth -= 1
    return False


def _expansion(data: Any) -> tuple[int, int]:
    """(expanded node count, distinct node count) of a constructed document.

    Aliases make the constructed data a DAG; this counts it both ways without recursion.
    """
    sizes: dict[int, int] = {}
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
        for c in children:
            total += max(sizes.get(id(c), 1), 1) if isinstance(c, dict | list) else 1
        sizes[oid] = total
    root = sizes.get(id(data), 1)
    return root, len(sizes)


class SourceMap:
    """The side table of positions, built lazily per source and per document.

    Holds the sources; composes a source's node tree the first time a position inside it is
    asked for, then walks paths through it.
    """

    def __init__(self, sources: list[Source]) -> None:
        self.sources = sources
        self._nodes: dict[int, list[yaml.Node | None]] = {}
        self._offsets: dict[int, list[tuple[int, int]]] = {}

    def set_document_offsets(self, source: int, offsets: list[tuple[int, int]]) -> None:
        """Record where each JSON document starts (line, column; 0-based)."""
        self._offsets[source] = offsets

    def _documents(self, source: int) -> list[yaml.Node | None]:
        if source in self._nodes:
            return self._nodes[source]
        src = self.sources[source]
        nodes: list[yaml.Node | None] = []
        offsets = self._offsets.get(source)
        try:
            if offsets is not None:
                # JSON: each document composed on its own text (a concatenated JSON stream is
                # not one YAML stream), then shifted to its real place.
                for line, column in offsets:
                    nodes.append(_compose_at(src.text, line, column))
            else:
                nodes = list(yaml.compose_all(src.text, Loader=_YamlLoader))
        except yaml.YAMLError:
            pass  # positions degrade to document starts; the data was already parsed
        self._nodes[source] = nodes
        return nodes

    def locate(self, source: int, document: int, path: Path, at_key: bool = False) -> Location:
        """Position of ``path`` in a document: the value's start, or its key's with ``at_key``.

        Falls back to the nearest ancestor that exists, so a missing required field points at
        the mapping that lacks it."""
        name = self.sources[source].name
        docs = self._documents(source)
        node = docs[document] if document < len(docs) else None
        if node is None:
            line, column = self._doc_start(source, document)
            return Location(name, line + 1, column + 1)
        mark = node.start_mark
        for i, seg in enumerate(path):
            found = _child(node, seg)
            if found is None:
                break
            key_node, node = found
            last = i == len(path) - 1
            mark = key_node.start_mark if (at_key and last and key_node) else node.start_mark
        return Location(name, mark.line + 1, mark.column + 1)

    def diagnostic(self, problem: Problem) -> Diagnostic:
        """Turn a pending problem into a located diagnostic."""
        ref = problem.ref
        location = self.locate(ref.source, ref.document, (*ref.root, *problem.path), problem.at_key)
        return Diagnostic(
            problem.code,
            problem.severity,
            problem.message,
            format_path(problem.path),
            location,
            problem.hint,
        )

    def _doc_start(self, source: int, document: int) -> tuple[int, int]:
        offsets = self._offsets.get(source)
        if offsets is not None and document < len(offsets):
            return offsets[document]
        return (0, 0)

    def duplicates(
        self, source: int, document: int
    ) -> Iterator[tuple[Path, Location, Location, str | None]]:
        """Every duplicate mapping key in a document: (path of the repeat, where it is, where
        the key was first seen, the repeated value when it is a scalar)."""
        docs = self._documents(source)
        if document >= len(docs) or docs[document] is None:
            return
        name = self.sources[source].name
        stack: list[tuple[yaml.Node, Path]] = [(docs[document], ())]  # type: ignore[list-item]
        seen_nodes: set[int] = set()
        while stack:
            node, path = stack.pop()
            if id(node) in seen_nodes:
                continue
            seen_nodes.add(id(node))
            if isinstance(node, yaml.MappingNode):
                first: dict[str, yaml.Node] = {}
                for key_node, value_node in node.value:
                    if isinstance(key_node, yaml.ScalarNode):
                        k = key_node.value
                        if k in first:
                            where = key_node.start_mark
                            orig = first[k].start_mark
                            yield (
                                (*path, k),
                                Location(name, where.line + 1, where.column + 1),
                                Location(name, orig.line + 1, orig.column + 1),
                                value_node.value
                                if isinstance(value_node, yaml.ScalarNode)
                                else None,
                            )
                        else:
                            first[k] = key_node
                        stack.append((value_node, (*path, k)))
            elif isinstance(node, yaml.SequenceNode):
                stack.extend((child, (*path, i)) for i, child in enumerate(node.value))


def _child(node: yaml.Node, seg: str | int) -> tuple[yaml.Node | None, yaml.Node] | None:
    if isinstance(seg, int):
        if isinstance(node, yaml.SequenceNode) and 0 <= seg < len(node.value):
            return None, node.value[seg]
        return None
    if isinstance(node, yaml.MappingNode):
        hit: tuple[yaml.Node | None, yaml.Node] | None = None
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == str(seg):
                hit = (key_node, value_node)  # the last occurrence wins, as in the data
        return hit
    return None


def _compose_at(text: str, line: int, column: int) -> yaml.Node | None:
    """Compose the JSON document starting at (line, column) and shift its marks there."""
    lines = text.splitlines(keepends=True)
    start = sum(len(x) for x in lines[:line]) + column
    decoder = json.JSONDecoder()
    _, end = decoder.raw_decode(text, start)
    node = yaml.compose(text[start:end], Loader=_YamlLoader)
    if node is None:
        return None
    stack = [node]
    seen: set[int] = set()
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        for mark in (n.start_mark, n.end_mark):
            if mark.line == 0:
                mark.column += column
            mark.line += line
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                stack.extend((k, v))
        elif isinstance(n, yaml.SequenceNode):
            stack.extend(n.value)
    return node


@dataclass(slots=True)
class ParseResult:
    """What :func:`parse` returns for one source."""

    documents: list[Document] = field(default_factory=list)
    problems: list[Diagnostic] = field(default_factory=list)
    json_offsets: list[tuple[int, int]] | None = None


def _error(code: Code, message: str, location: Location | None, hint: str | None) -> Diagnostic:
    return Diagnostic(code, Severity.ERROR, message, "", location, hint)


def parse(index: int, source: Source) -> ParseResult:
    """Parse all documents of one source into plain data (the fast path).

    Syntax errors come back with the parser's position; documents before the error are kept.
    """
    result = ParseResult()
    text = source.text
    if _too_deep(text):
        result.problems.append(
            _error(
                Code.TOO_DEEP,
                f"refusing input nested deeper than {MAX_DEPTH} levels",
                Location(source.name, 1, 1),
                "Kubernetes objects nest fewer than 30 levels; is this file generated wrongly?",
            )
        )
        return result
    if source.looks_like_json:
        _parse_json(index, source, result)
    else:
        _parse_yaml(index, source, result)
    return result


def _parse_yaml(index: int, source: Source, result: ParseResult) -> None:
    text = source.text
    check_aliases = bool(_MAYBE_ALIAS.search(text))
    loader = _StrictYamlLoader(text)
    doc = 0
    try:
        while loader.check_data():
            loader.duplicates_seen = False
            data = loader.get_data()
            if check_aliases:
                expanded, distinct = _expansion(data)
                if expanded > MAX_ALIAS_EXPANSION * distinct + _ALIAS_SLACK:
                    result.problems.append(
                        _error(
                            Code.ALIAS_BOMB,
                            f"document {doc + 1} expands through YAML aliases to {expanded} "
                            f"nodes from {distinct}; refusing it",
                            Location(source.name, 1, 1),
                            "this looks like an alias bomb ('billion laughs')",
                        )
                    )
                    data = None
            result.documents.append(Document(index, doc, data, loader.duplicates_seen))
            doc += 1
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = Location(source.name, mark.line + 1, mark.column + 1) if mark else None
        message = exc.problem or str(exc)
        if exc.context and exc.problem:
            message = (
                f"{exc.context}: {exc.problem}"
                if "while" not in exc.context
                else (f"{exc.problem} ({exc.context})")
            )
        result.problems.append(
            _error(Code.YAML_SYNTAX, f"invalid YAML: {message}", loc, _yaml_hint(exc))
        )
    except yaml.YAMLError as exc:
        result.problems.append(_error(Code.YAML_SYNTAX, f"invalid YAML: {exc}", None, None))
    finally:
        loader.dispose()


def _yaml_hint(exc: yaml.MarkedYAMLError) -> str | None:
    problem = exc.problem or ""
    if "found character '\\t'" in problem:
        return "YAML does not allow tabs for indentation; use spaces"
    if "mapping values are not allowed here" in problem:
        return "check the indentation of this line and the one above (a missing space after ':'?)"
    if "found unhashable key" in problem:
        return "a key must be a plain string"
    return None


def _parse_json(index: int, source: Source, result: ParseResult) -> None:
    text = source.text
    duplicates = [False]

    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(pairs)
        if len(obj) != len(pairs):
            duplicates[0] = True
        return obj

    decoder = json.JSONDecoder(object_pairs_hook=pairs_hook)
    offsets: list[tuple[int, int]] = []
    pos = 0
    doc = 0
    length = len(text)
    ws = re.compile(r"\s*")
    while True:
        match = ws.match(text, pos)
        pos = match.end() if match else pos
        if pos >= length:
            break
        duplicates[0] = False
        try:
            data, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            result.problems.append(
                _error(
                    Code.JSON_SYNTAX,
                    f"invalid JSON: {exc.msg}",
                    Location(source.name, exc.lineno, exc.colno),
                    None,
                )
            )
            break
        line = text.count("\n", 0, pos)
        column = pos - (text.rfind("\n", 0, pos) + 1)
        offsets.append((line, column))
        result.documents.append(Document(index, doc, data, duplicates[0]))
        doc += 1
        pos = end
    result.json_offsets = offsets
