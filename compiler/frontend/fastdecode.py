"""Fast decoding plans: API-shaped dataclasses from well-formed plain data, or :class:`Anomaly`.

:class:`npc.frontend.decode.Decoder` tries a fast plan first; where the plan that reports
(in :mod:`npc.frontend.decode`) would record a problem, a fast plan raises :class:`Anomaly`
instead, and the decoder starts the object over with the plan that reports. Otherwise both
return equal values. Decoding a 10,000-pod snapshot is mostly well-formed objects, and this
is the frontend's hottest loop, so a struct's plan is one generated function with a line per
field (a type check inline, the constructor called with positional arguments), rather than
a loop over field descriptions with a call per field. The generated text uses nothing but
the shape's own field names, types and defaults; it is compiled once per shape and cached on
the dataclass (it is code, not data: the same for every load).

The shape helpers (:func:`shape`, :func:`fields`, :func:`zero`) are shared with the plans
that report.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, get_args, get_origin

__all__ = ["JSON_NAME", "Anomaly", "Fast", "FieldSpec", "fast_plan", "fields", "shape", "zero"]

#: The dataclass field metadata key holding a field's JSON name.
JSON_NAME = "json"

Fast = Callable[[Any], Any]


class Anomaly(Exception):
    """Something the plans that report would report: decode this object with them."""


_ANOMALY = Anomaly()


@dataclasses.dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field of a shape: attribute name, JSON name and type hint."""

    attr: str
    json: str
    hint: Any


def fields(cls: type) -> tuple[FieldSpec, ...]:
    """The fields of a shape (cached on the class)."""
    cached = cls.__dict__.get("__npc_fields__")
    if cached is not None:
        return typing.cast(tuple[FieldSpec, ...], cached)
    hints = typing.get_type_hints(cls)
    specs = tuple(
        FieldSpec(f.name, f.metadata.get(JSON_NAME) or f.name, hints[f.name])
        for f in dataclasses.fields(cls)
    )
    type.__setattr__(cls, "__npc_fields__", specs)
    return specs


def shape(tp: Any) -> tuple[str, Any]:
    """What a field type is: ``("struct", cls)``, ``("int-or-string", None)``, ``("any",
    None)``, ``("list", item)``, ``("map", item)`` or ``("scalar", type)`` (an optional type
    is its member's)."""
    while True:
        if dataclasses.is_dataclass(tp):
            return "struct", tp
        origin = get_origin(tp)
        if origin is typing.Union or origin is types.UnionType:
            members = [a for a in get_args(tp) if a is not type(None)]
            if len(members) == 1:
                tp = members[0]
                continue
            if set(members) == {int, str}:
                return "int-or-string", None
            raise TypeError(f"npc.frontend.decode: unsupported union {tp!r}")  # a bug in a shape
        if tp is Any:
            return "any", None
        if origin is tuple:
            return "list", get_args(tp)[0]
        if origin is Mapping or origin is dict:
            return "map", get_args(tp)[1]
        if tp in (str, bool, int):
            return "scalar", tp
        raise TypeError(f"npc.frontend.decode: unsupported field type {tp!r}")  # a bug in a shape


def zero(tp: Any) -> Any:
    """Go's zero value for a list item type (shared: the values are immutable)."""
    if dataclasses.is_dataclass(tp):
        return typing.cast(type, tp)()
    return {str: "", int: 0, bool: False}.get(tp)


def fast_plan(cls: type, strict: bool) -> Fast:
    """The fast plan of a shape: ``strict`` rejects unknown fields (as anomalies), lenient
    reads only the shape's fields."""
    cached = cls.__dict__.get("__npc_fast__")
    if cached is None:
        cached = {}
        type.__setattr__(cls, "__npc_fast__", cached)
    plan = cached.get(strict)
    if plan is None:
        plan = _struct(cls, strict, cached)
    return typing.cast(Fast, plan)


def _compile(tp: Any, strict: bool) -> Fast | None:
    """The fast plan of a field type; None for ``Any`` (taken as it is)."""
    kind, arg = shape(tp)
    if kind == "struct":
        return fast_plan(arg, strict)
    if kind == "list":
        return _list(arg, strict)
    if kind == "map":
        return _str_map if arg is str else _map(arg, strict)
    if kind == "scalar":
        return _scalar(arg)
    return _int_or_string if kind == "int-or-string" else None


def _int_or_string(value: Any) -> Any:
    if type(value) is str or type(value) is int:
        return value
    raise _ANOMALY


def _scalar(kind: type) -> Fast:
    def plan(value: Any) -> Any:
        if type(value) is kind:
            return value
        raise _ANOMALY

    return plan


def _list(item: Any, strict: bool) -> Fast:
    if shape(item)[0] == "scalar":
        return _scalar_list(item)
    child = _compile(item, strict)
    empty = zero(item)
    if child is None:
        return _any_list

    def plan(value: Any) -> Any:
        if type(value) is not list:
            raise _ANOMALY
        if None in value:
            return tuple([empty if element is None else child(element) for element in value])
        return tuple(map(child, value))

    return plan


def _any_list(value: Any) -> Any:
    if type(value) is not list:
        raise _ANOMALY
    return tuple(value)


def _scalar_list(kind: type) -> Fast:
    empty = zero(kind)

    def plan(value: Any) -> Any:
        if type(value) is not list:
            raise _ANOMALY
        nulls = False
        for element in value:
            if type(element) is not kind:
                if element is not None:
                    raise _ANOMALY
                nulls = True
        if nulls:
            return tuple([empty if element is None else element for element in value])
        return tuple(value)

    return plan


def _str_map(value: Any) -> Any:
    """``Mapping[str, str]`` (labels, annotations): a copy, once every entry is checked."""
    if type(value) is not dict:
        raise _ANOMALY
    for key, element in value.items():
        if type(key) is not str or type(element) is not str:
            return _STR_MAP_SLOW(value)
    return dict(value)


def _map(item: Any, strict: bool) -> Fast:
    child = _compile(item, strict)
    empty = "" if item is str else None

    def plan(value: Any) -> Any:
        if type(value) is not dict:
            raise _ANOMALY
        out: dict[str, Any] = {}
        for key, element in value.items():
            if type(key) is not str:
                raise _ANOMALY
            if element is None:
                if empty is not None:
                    out[key] = empty  # Go decodes `key:` (null) into the empty string
                continue
            out[key] = element if child is None else child(element)
        return out

    return plan


_STR_MAP_SLOW = _map(str, False)


def _plain(cls: type) -> bool:
    """Whether building ``cls`` is only setting its slots: a frozen, slotted dataclass with
    no ``__post_init__``, built by the ``__init__`` dataclasses wrote, of ``object``'s
    ``__new__``."""
    params = getattr(cls, "__dataclass_params__", None)
    return (
        params is not None
        and params.frozen
        and params.init
        and "__slots__" in cls.__dict__
        and not hasattr(cls, "__post_init__")
        and cls.__new__ is object.__new__  # type: ignore[comparison-overlap]
        and all(isinstance(_slot(cls, s.attr), types.MemberDescriptorType) for s in fields(cls))
    )


def _slot(cls: type, attr: str) -> Any:
    """The class attribute ``attr`` (a slot's descriptor), wherever in the MRO it is."""
    return next((k.__dict__[attr] for k in cls.__mro__ if attr in k.__dict__), None)


def _struct(cls: type, strict: bool, cache: dict[bool, Fast]) -> Fast:
    """Generate, compile and cache the plan of one shape."""
    # A shape may contain itself: until its plan is built, it is reached through the cache.
    def pending(value: Any) -> Any:
        return cache[strict](value)

    cache[strict] = pending
    specs = fields(cls)
    declared = {f.name: f for f in dataclasses.fields(cls)}
    env: dict[str, Any] = {"_cls": cls, "_A": _ANOMALY, "_known": frozenset(s.json for s in specs)}
    lines = [
        "def plan(value):",
        "    if type(value) is not dict:",
        "        raise _A",
    ]
    if strict:
        lines += ["    if not _known.issuperset(value):", "        raise _A  # an unknown field"]
    lines.append("    get = value.get")
    args = []
    for i, spec in enumerate(specs):
        f = declared[spec.attr]
        if not f.init or f.kw_only or f.default is dataclasses.MISSING:  # a bug in a shape
            raise TypeError(f"npc.frontend.decode: {cls.__name__}.{f.name} needs a plain default")
        var = f"v{i}"
        args.append(var)
        env[f"d{i}"] = f.default
        lines.append(f"    {var} = get({spec.json!r})")
        lines.append(f"    if {var} is None:")
        lines.append(f"        {var} = d{i}")
        kind, arg = shape(spec.hint)
        if kind == "scalar":
            env[f"t{i}"] = arg
            lines += [f"    elif type({var}) is not t{i}:", "        raise _A"]
        elif kind == "int-or-string":
            lines.append(f"    elif type({var}) is not str and type({var}) is not int:")
            lines.append("        raise _A")
        elif kind != "any":
            env[f"c{i}"] = _compile(spec.hint, strict)
            lines += ["    else:", f"        {var} = c{i}({var})"]
    if _plain(cls):
        # A plain frozen, slotted dataclass: fill its slots directly, as its generated
        # __init__ would (through object.__setattr__, one lookup per field slower).
        lines.append("    obj = _new(_cls)")
        for i, spec in enumerate(specs):
            env[f"s{i}"] = _slot(cls, spec.attr).__set__
            lines.append(f"    s{i}(obj, v{i})")
        lines.append("    return obj")
        env["_new"] = object.__new__
    else:
        lines.append(f"    return _cls({', '.join(args)})")
    namespace: dict[str, Any] = {}
    exec(compile("\n".join(lines), f"<npc fast plan {cls.__qualname__}>", "exec"), env, namespace)
    plan = typing.cast(Fast, namespace["plan"])
    cache[strict] = plan
    return plan
