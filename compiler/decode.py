"""Strict decoding of plain data into API-shaped dataclasses, as ``--validate=strict`` does.

The shapes are frozen dataclasses (see :mod:`npc.k8s.api`) whose fields carry their JSON names.
The decoder never stops at the first problem: it records every unknown field (with a
did-you-mean), every wrong type (with a hint: YAML reads ``yes`` as a boolean, ``"80"`` is a
string), substitutes the field's default and remembers the *broken* path, so that validation
later does not add noise about a field that could not be read.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar, get_args, get_origin

from npc.errors import Code, Key, Path, Severity
from npc.source import ObjectRef, Problem

__all__ = ["Decoder", "did_you_mean", "json_field", "type_name"]

T = TypeVar("T")

_JSON = "json"
_HINTS = "npc_hints"


def json_field(name: str | None = None, default: Any = None) -> Any:
    """A dataclass field decoded from JSON key ``name`` (default: the attribute name)."""
    return dataclasses.field(default=default, metadata={_JSON: name} if name else {})


def type_name(value: Any) -> str:
    """How a YAML/JSON value's type reads in an error message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "a number"
    if isinstance(value, float):
        return "a decimal number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def did_you_mean(word: str, choices: typing.Iterable[str]) -> str | None:
    """The closest known word: case-insensitive equality first, then edit similarity."""
    options = list(choices)
    for option in options:
        if option.lower() == word.lower():
            return option
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.75)
    return close[0] if close else None


@dataclasses.dataclass(frozen=True, slots=True)
class _FieldSpec:
    attr: str
    json: str
    hint: Any


def _fields(cls: type) -> tuple[_FieldSpec, ...]:
    cached = cls.__dict__.get("__npc_fields__")
    if cached is not None:
        return typing.cast(tuple[_FieldSpec, ...], cached)
    hints = typing.get_type_hints(cls)
    specs = tuple(
        _FieldSpec(f.name, f.metadata.get(_JSON) or f.name, hints[f.name])
        for f in dataclasses.fields(cls)
    )
    type.__setattr__(cls, "__npc_fields__", specs)
    return specs


class Decoder:
    """Decodes one object; collects :class:`~npc.source.Problem` s and broken paths.

    ``strict`` reports unknown fields (NetworkPolicy); snapshot objects (pods, namespaces)
    are decoded leniently, reading only the fields npc uses.
    """

    def __init__(self, ref: ObjectRef, *, strict: bool = True) -> None:
        self.ref = ref
        self.strict = strict
        self.problems: list[Problem] = []
        self.broken: set[Path] = set()

    def problem(
        self,
        code: Code,
        message: str,
        path: Path,
        hint: str | None = None,
        *,
        at_key: bool = False,
        severity: Severity = Severity.ERROR,
    ) -> None:
        """Record a problem, unless it lies under a path that could not be decoded (the
        decoding error already said what is wrong there)."""
        if self.broken and self.is_broken(path):
            return
        self.problems.append(Problem(code, message, self.ref, path, hint, at_key, severity))

    @property
    def failed(self) -> bool:
        return any(p.severity is Severity.ERROR for p in self.problems)

    def decode(self, cls: type[T], value: Any, path: Path = ()) -> T:
        """Decode ``value`` as ``cls``; never raises on bad input."""
        result = self._value(cls, value, path)
        if result is None:
            return cls()
        return typing.cast(T, result)

    def is_broken(self, path: Path) -> bool:
        """True when ``path`` or one of its ancestors could not be decoded."""
        return any(path[: len(b)] == b for b in self.broken)

    # -- the type walk --------------------------------------------------------------------

    def _value(self, tp: Any, value: Any, path: Path) -> Any:
        if value is None:
            return None
        origin = get_origin(tp)
        if origin is typing.Union or origin is types.UnionType:
            return self._union(tp, value, path)
        if tp is Any:
            return value
        if dataclasses.is_dataclass(tp):
            return self._struct(typing.cast(type, tp), value, path)
        if origin is tuple:
            return self._list(get_args(tp)[0], value, path)
        if origin is Mapping or origin is dict:
            return self._map(get_args(tp)[1], value, path)
        if tp is str:
            if isinstance(value, str):
                return value
            return self._wrong(value, "a string", path, _quote_hint(value))
        if tp is bool:
            if isinstance(value, bool):
                return value
            return self._wrong(value, "a boolean (true or false)", path)
        if tp is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            hint = None
            if isinstance(value, str) and value.strip().lstrip("-").isdigit():
                hint = f"remove the quotes: {value.strip()}"
            return self._wrong(value, "an integer", path, hint)
        raise TypeError(f"npc.decode: unsupported field type {tp!r}")  # a bug in a shape

    def _union(self, tp: Any, value: Any, path: Path) -> Any:
        members = [a for a in get_args(tp) if a is not type(None)]
        if len(members) == 1:
            return self._value(members[0], value, path)
        # IntOrString: the only real union in the Kubernetes API.
        if set(members) == {int, str}:
            if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
                return value
            return self._wrong(value, "a port number or a port name", path, _quote_hint(value))
        raise TypeError(f"npc.decode: unsupported union {tp!r}")

    def _wrong(self, value: Any, expected: str, path: Path, hint: str | None = None) -> None:
        if hint is None:
            if isinstance(value, list) and "mapping" in expected:
                hint = "remove the leading '- ': this field is a single mapping, not a list"
            elif isinstance(value, dict) and "list" in expected:
                hint = "start each item of a list with '- '"
        shown = value if isinstance(value, str | int | float | bool) else None
        got = type_name(value) + (f" ({shown!r})" if shown is not None else "")
        self.problem(Code.WRONG_TYPE, f"expected {expected}, got {got}", path, hint)
        self.broken.add(path)  # after reporting: the report itself must not be suppressed

    def _list(self, item: Any, value: Any, path: Path) -> tuple[Any, ...] | None:
        if not isinstance(value, list):
            self._wrong(value, "a list", path)
            return None
        out = []
        for i, element in enumerate(value):
            decoded = self._value(item, element, (*path, i))
            # Keep indices aligned with the source: an unreadable item becomes its zero value
            # (as Go decodes null), and its path is already marked broken.
            out.append(_zero(item) if decoded is None else decoded)
        return tuple(out)

    def _map(self, item: Any, value: Any, path: Path) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self._wrong(value, "a mapping", path)
            return None
        out: dict[str, Any] = {}
        for key, element in value.items():
            if not isinstance(key, str):
                self.problem(
                    Code.WRONG_TYPE,
                    f"keys must be strings, got {type_name(key)} ({key!r})",
                    (*path, Key(str(key))),
                    _quote_hint(key),
                    at_key=True,
                )
                continue
            decoded = self._value(item, element, (*path, Key(key)))
            if decoded is not None:
                out[key] = decoded
            elif element is None and item is str:
                out[key] = ""  # Go decodes `key:` (null) into the empty string
        return out

    def _struct(self, cls: type, value: Any, path: Path) -> Any:
        if not isinstance(value, dict):
            return self._wrong(value, "a mapping", path)
        specs = _fields(cls)
        by_json = {s.json: s for s in specs}
        kwargs: dict[str, Any] = {}
        for key, element in value.items():
            spec = by_json.get(key) if isinstance(key, str) else None
            if spec is None:
                if self.strict:
                    self._unknown(cls, key, path)
                continue
            decoded = self._value(spec.hint, element, (*path, key))
            if decoded is not None:
                kwargs[spec.attr] = decoded
        return cls(**kwargs)

    def _unknown(self, cls: type, key: Any, path: Path) -> None:
        name = str(key)
        fields = [s.json for s in _fields(cls)]
        hint: str | None = None
        guess = did_you_mean(name, fields)
        if guess is not None:
            hint = f"did you mean `{guess}`?"
        else:
            hints: Mapping[str, str] = getattr(cls, "__npc_hints__", {})
            hint = hints.get(name) or hints.get("*")
            if hint is not None:
                hint = hint.format(key=name)
        self.problem(
            Code.UNKNOWN_FIELD,
            f'unknown field "{name}"',
            (*path, name),
            hint,
            at_key=True,
        )


def _zero(tp: Any) -> Any:
    """Go's zero value for a list item type."""
    if dataclasses.is_dataclass(tp):
        return typing.cast(type, tp)()
    return {str: "", int: 0, bool: False}.get(tp)


def _quote_hint(value: Any) -> str | None:
    if isinstance(value, bool):
        return (
            "YAML reads unquoted true/false/yes/no/on/off as a boolean; quote the value "
            "if you mean the word"
        )
    if isinstance(value, int | float):
        return f'quote it to make it a string: "{value}"'
    return None
