"""Strict decoding of plain data into API-shaped dataclasses, as ``--validate=strict`` does.

The shapes are frozen dataclasses (see :mod:`npc.frontend.k8s.api`) whose fields carry their
JSON names.
The decoder never stops at the first problem: it records every unknown field (with a
did-you-mean), every wrong type (with a hint: YAML reads ``yes`` as a boolean, ``"80"`` is a
string), substitutes the field's default and remembers the *broken* path, so that validation
later does not add noise about a field that could not be read.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from collections.abc import Callable, Hashable, Mapping
from typing import Any, TypeVar

from npc.errors import Code, Key, Path, Severity
from npc.frontend.fastdecode import JSON_NAME, Anomaly, fast_plan, fields, shape, zero
from npc.frontend.source import AS_WRITTEN, ObjectRef, Problem

__all__ = ["Decoder", "did_you_mean", "json_field", "type_name"]

T = TypeVar("T")



def json_field(name: str | None = None, default: Any = None) -> Any:
    """A dataclass field decoded from JSON key ``name`` (default: the attribute name)."""
    return dataclasses.field(default=default, metadata={JSON_NAME: name} if name else {})


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


class Decoder:
    """Decodes one object; collects :class:`~npc.frontend.source.Problem` s and broken paths.

    ``strict`` reports unknown fields (NetworkPolicy); snapshot objects (pods, namespaces)
    are decoded leniently, reading only the fields npc uses. ``clean`` is shared by the
    decoders of one load: the parts that validation found clean (see :meth:`validate_once`).
    ``fast=False`` always decodes with the plan that reports (for tests that compare the
    two plans).
    """

    def __init__(
        self,
        ref: ObjectRef,
        *,
        strict: bool = True,
        clean: set[Hashable] | None = None,
        fast: bool = True,
    ) -> None:
        self.ref = ref
        self.strict = strict
        self.fast = fast
        self.clean: set[Hashable] = set() if clean is None else clean
        self.problems: list[Problem] = []
        self.broken: set[Path] = set()
        # For each mapping with unknown fields, the fields they look like typos of: "x is
        # required" is noise when x is right there, misspelt (strict decoding in the API server
        # would have stopped before validation).
        self.typos: dict[Path, set[str]] = {}

    def problem(
        self,
        code: Code,
        message: str,
        path: Path,
        hint: str | None = None,
        *,
        at_key: bool = False,
        severity: Severity = Severity.ERROR,
        fallback: str = "",
    ) -> None:
        """Record a problem, unless it lies under a path that could not be decoded (the
        decoding error already said what is wrong there). ``message`` and ``hint`` may use
        :data:`~npc.frontend.source.AS_WRITTEN` for the value as written (``fallback``
        otherwise)."""
        if self.broken and self.is_broken(path):
            return
        if self.typos and code is Code.REQUIRED and self._misspelt(path):
            return
        self.problems.append(
            Problem(code, message, self.ref, path, hint, at_key, severity, fallback)
        )

    def _misspelt(self, path: Path) -> bool:
        """Whether a required ``path`` is missing because it was misspelt (or, for a struct
        that needs one of several fields, because one of them was)."""
        if self.typos.get(path):
            return True
        return bool(path) and path[-1] in self.typos.get(path[:-1], ())

    def validate_once(self, key: Hashable, check: Callable[[], None]) -> None:
        """Run ``check`` (a validation reporting into this decoder) unless a part of an
        object with this ``key`` (its kind and its value as decoded: strings, numbers,
        tuples) validated without a single problem before, in this load: then validating it
        again would report nothing wherever it stands. ``key`` is remembered as clean when
        ``check`` added no problem and nothing could have been held back (no broken or
        misspelt path in this object: then every problem found was recorded)."""
        if key in self.clean:
            return
        before = len(self.problems)
        check()
        if len(self.problems) == before and not self.broken and not self.typos:
            self.clean.add(key)

    @property
    def failed(self) -> bool:
        return bool(self.problems) and any(p.severity is Severity.ERROR for p in self.problems)

    def decode(self, cls: type[T], value: Any, path: Path = ()) -> T:
        """Decode ``value`` as ``cls``; never raises on bad input.

        A well-formed object (nothing to report) is decoded by the fast plan
        (:mod:`npc.frontend.fastdecode`); at the first thing that is not, the object is
        decoded again by the plan that reports, from the start, so problems and results are
        the same."""
        if value is not None and self.fast:
            try:
                return typing.cast(T, fast_plan(cls, self.strict)(value))
            except Anomaly:
                pass
        result = None if value is None else _compile(cls)(self, value, path)
        if result is None:
            return cls()
        return typing.cast(T, result)

    def is_broken(self, path: Path) -> bool:
        """True when ``path`` or one of its ancestors could not be decoded."""
        return any(path[: len(b)] == b for b in self.broken)

    def wrong(self, value: Any, expected: str, path: Path, hint: str | None = None) -> None:
        """Report a value of the wrong type (and mark its path broken)."""
        if hint is None:
            if isinstance(value, list) and "mapping" in expected:
                hint = "remove the leading '- ': this field is a single mapping, not a list"
            elif isinstance(value, dict) and "list" in expected:
                hint = "start each item of a list with '- '"
        scalar = isinstance(value, str | int | float | bool)
        got = type_name(value)
        if isinstance(value, str):
            got += f" ({value!r})"
        elif scalar:
            got += f" ({AS_WRITTEN})"
        self.problem(
            Code.WRONG_TYPE,
            f"expected {expected}, got {got}",
            path,
            hint,
            fallback=_as_text(value),
        )
        self.broken.add(path)  # after reporting: the report itself must not be suppressed

    def unknown(self, cls: type, key: Any, path: Path) -> None:
        """Report a field the shape does not have, with a did-you-mean."""
        name = str(key)
        known = [s.json for s in fields(cls)]
        hint: str | None = None
        guess = did_you_mean(name, known)
        if guess is not None:
            hint = f"did you mean `{guess}`?"
            self.typos.setdefault(path, set()).add(guess)
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


# -- compiled decoders ----------------------------------------------------------------------
#
# Each type gets a plan: a function (decoder, value, path) -> decoded value, or None when the
# value could not be read (the problem is recorded). Plans never see None values. They are
# compiled once per type (cached on the dataclass), because decoding a 10,000-pod snapshot
# visits hundreds of thousands of fields.

_Plan = Callable[[Decoder, Any, Path], Any]


def _any(dec: Decoder, value: Any, path: Path) -> Any:
    return value


def _string(dec: Decoder, value: Any, path: Path) -> Any:
    if type(value) is str:
        return value
    return dec.wrong(value, "a string", path, _quote_hint(value))


def _boolean(dec: Decoder, value: Any, path: Path) -> Any:
    if type(value) is bool:
        return value
    return dec.wrong(value, "a boolean (true or false)", path)


def _integer(dec: Decoder, value: Any, path: Path) -> Any:
    if type(value) is int:
        return value
    hint = None
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        hint = f"remove the quotes: {value.strip()}"
    return dec.wrong(value, "an integer", path, hint)


def _int_or_string(dec: Decoder, value: Any, path: Path) -> Any:
    # IntOrString: the only real union in the Kubernetes API.
    if type(value) is str or type(value) is int:
        return value
    return dec.wrong(value, "a port number or a port name", path, _quote_hint(value))


def _compile(tp: Any) -> _Plan:
    kind, arg = shape(tp)
    if kind == "struct":
        return _struct_plan(arg)
    if kind == "list":
        return _list_plan(arg)
    if kind == "map":
        return _map_plan(arg)
    plans: dict[Any, _Plan] = {str: _string, bool: _boolean, int: _integer}
    return {"int-or-string": _int_or_string, "any": _any}.get(kind) or plans[arg]


def _struct_plan(cls: type) -> _Plan:
    cached = cls.__dict__.get("__npc_plan__")
    if cached is not None:
        return typing.cast(_Plan, cached)
    by_json: dict[str, tuple[str, _Plan]] = {}
    ordered: list[tuple[str, tuple[str, _Plan]]] = []

    def plan(dec: Decoder, value: Any, path: Path) -> Any:
        if type(value) is not dict:
            return dec.wrong(value, "a mapping", path)
        kwargs: dict[str, Any] = {}
        if not dec.strict:
            # Lenient (snapshot objects): visit only the fields the shape has; a pod from
            # `kubectl get` has many more, all ignored.
            for key, (attr, child) in ordered:
                element = value.get(key)
                if element is None:
                    continue
                decoded = element if child is _any else child(dec, element, (*path, key))
                if decoded is not None:
                    kwargs[attr] = decoded
            return cls(**kwargs)
        for key, element in value.items():
            entry = by_json.get(key) if type(key) is str else None
            if entry is None:
                if dec.strict:
                    dec.unknown(cls, key, path)
                continue
            if element is None:
                continue  # Go leaves a null field at its zero value
            attr, child = entry
            decoded = element if child is _any else child(dec, element, (*path, key))
            if decoded is not None:
                kwargs[attr] = decoded
        return cls(**kwargs)

    type.__setattr__(cls, "__npc_plan__", plan)
    by_json.update({s.json: (s.attr, _compile(s.hint)) for s in fields(cls)})
    ordered.extend(by_json.items())
    return plan


def _list_plan(item: Any) -> _Plan:
    child = _compile(item)
    empty = zero(item)

    def plan(dec: Decoder, value: Any, path: Path) -> Any:
        if type(value) is not list:
            return dec.wrong(value, "a list", path)
        out = []
        for i, element in enumerate(value):
            decoded = None if element is None else child(dec, element, (*path, i))
            # Keep indices aligned with the source: an unreadable item becomes its zero value
            # (as Go decodes null), and its path is already marked broken.
            out.append(empty if decoded is None else decoded)
        return tuple(out)

    return plan


def _map_plan(item: Any) -> _Plan:
    child = _compile(item)

    def plan(dec: Decoder, value: Any, path: Path) -> Any:
        if type(value) is not dict:
            return dec.wrong(value, "a mapping", path)
        out: dict[str, Any] = {}
        for key, element in value.items():
            if type(key) is not str:
                dec.problem(
                    Code.WRONG_TYPE,
                    f"keys must be strings, got {type_name(key)} ({key!r})",
                    (*path, Key(str(key))),
                    _quote_hint(key),
                    at_key=True,
                    fallback=_as_text(key),
                )
                continue
            if element is None:
                if item is str:
                    out[key] = ""  # Go decodes `key:` (null) into the empty string
                continue
            decoded = child(dec, element, (*path, Key(key)))
            if decoded is not None:
                out[key] = decoded
        return out

    return plan


def _as_text(value: Any) -> str:
    """A scalar as YAML or JSON would print it (the fallback for :data:`AS_WRITTEN`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _quote_hint(value: Any) -> str | None:
    if isinstance(value, bool):
        return (
            f"YAML reads unquoted yes/no/on/off/y/n/true/false as booleans; quote the value if "
            f'you mean the word: "{AS_WRITTEN}"'
        )
    if isinstance(value, int | float):
        return f'quote it to make it a string: "{AS_WRITTEN}"'
    return None
