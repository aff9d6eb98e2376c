"""kubectl's YAML dialect: how plain scalars resolve, and writing YAML that reads back the same.

kubectl turns YAML into JSON with ``sigs.k8s.io/yaml``, which resolves plain (unquoted)
scalars as goyaml v2 does, YAML 1.1 flavoured: ``y``/``yes``/``on`` are booleans, ``0x1F`` and
``017`` are integers, ``1e3`` a number, timestamps stay strings, and a number reaches the API
server as ``json.Marshal`` prints it (``80.0`` arrives as ``80``).

The reader (:mod:`npc.frontend.yamlread`) uses these rules to accept and reject what kubectl
does. The
writers (:func:`dump`, :func:`dump_all`) use them so that everything npc emits as YAML (Calico
policies, test fixtures) reads back as written in kubectl, calicoctl and PyYAML alike: PyYAML's
own dumper quotes only what PyYAML would misread, and would write ``team: y`` or
``hash: 0907761820`` unquoted.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import yaml

__all__ = [
    "NUMERIC_START",
    "SPECIAL_KEYS",
    "WORDS",
    "dump",
    "dump_all",
    "json_number",
    "resolve_number",
    "resolve_plain",
    "safe_dump",
]

# goyaml v2's resolve table: these exact words, when plain, are not strings.
WORDS: Mapping[str, Any] = MappingProxyType(
    {
        **dict.fromkeys(("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE"), True),
        **dict.fromkeys(("on", "On", "ON"), True),
        **dict.fromkeys(("n", "N", "no", "No", "NO", "false", "False", "FALSE"), False),
        **dict.fromkeys(("off", "Off", "OFF"), False),
        **dict.fromkeys(("", "~", "null", "Null", "NULL"), None),
        **dict.fromkeys((".nan", ".NaN", ".NAN"), math.nan),
        **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), math.inf),
        **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), -math.inf),
    }
)
_NOT_A_WORD = object()
# Plain keys that are not simply themselves (resolved words, and the merge key).
SPECIAL_KEYS = frozenset((*WORDS, "<<"))
NUMERIC_START = frozenset("+-0123456789.")
# Go's strconv.ParseInt(s, 0, 64) syntax (underscores were removed before).
_GO_INT = re.compile(r"([-+]?)(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)")
_GO_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_DOT_FLOAT = re.compile(r"\.[0-9]+([eE][-+]?[0-9]+)?")
_INT64 = 1 << 63
_UINT64 = 1 << 64
_BASES = MappingProxyType({"x": 16, "X": 16, "o": 8, "O": 8, "b": 2, "B": 2})


def json_number(value: float) -> int | float:
    """What the API server reads after ``json.Marshal(float64)``: integral values up to 1e21
    are printed without a fraction, so they arrive as integers."""
    if value.is_integer() and abs(value) < 1e21:
        return int(value)
    return value


def resolve_number(text: str) -> tuple[str, Any]:
    """A plain scalar that starts like a number, resolved as goyaml v2 does: ``("int", n)``,
    ``("float", x)``, or ``("str", text)`` when Go would not read it as a number."""
    if text[0] == ".":
        if _DOT_FLOAT.fullmatch(text):
            return "float", float(text)
        return "str", text
    plain = text.replace("_", "") if "_" in text else text
    m = _GO_INT.fullmatch(plain)
    if m:
        sign, digits = m.groups()
        if len(digits) > 1 and digits[0] == "0":
            base = _BASES.get(digits[1], 8)
            body = digits[2:] if digits[1] in _BASES else digits[1:]
            number = int(body, base)
        else:
            number = int(digits)
        number = -number if sign == "-" else number
        if -_INT64 <= number < _INT64 or (not sign and number < _UINT64):
            return "int", number
    if _GO_FLOAT.fullmatch(plain):
        number_f = float(plain)
        if not math.isinf(number_f):  # Go's ParseFloat fails with ErrRange: a string then
            return "float", number_f
    return "str", text


def resolve_plain(text: str) -> Any:
    """The value of a plain (unquoted, untagged) scalar, as kubectl sends it to the API server."""
    word = WORDS.get(text, _NOT_A_WORD)
    if word is not _NOT_A_WORD:
        return word
    if text[0] not in NUMERIC_START:
        return text
    kind, value = resolve_number(text)
    return json_number(value) if kind == "float" else value


# YAML 1.1 readers (PyYAML among them) take some ``a:b`` for base-60 numbers: port ranges in
# Calico output are always quoted, whatever the reader.
_COLON_NUMBER = re.compile(r"[0-9_]+(:[0-9_]+)+")


# libyaml's emitter when PyYAML was built with it: it writes the same bytes as PyYAML's
# pure-Python emitter (PyYAML's is a port of it) about five times faster, which matters for
# the megabytes of Calico YAML a large cluster makes. The representer (below) stays Python.
_SafeDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Dumper(_SafeDumper):  # type: ignore[valid-type,misc]
    """The safe dumper, quoting what kubectl would misread, and without anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    risky = bool(value) and (resolve_plain(value) != value or _COLON_NUMBER.fullmatch(value))
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="'" if risky else None)


_Dumper.add_representer(str, _represent_str)


def dump(data: Any, **kwargs: Any) -> str:
    """``yaml.safe_dump`` that kubectl reads back as written (keyword arguments as PyYAML's)."""
    text: str = yaml.dump(data, Dumper=_Dumper, **kwargs)
    return text


def dump_all(documents: list[Any], **kwargs: Any) -> str:
    """:func:`dump` for a multi-document stream."""
    nodes = _Nodes.of(documents, kwargs, kubectl=True)
    if nodes is not None:
        text: str = yaml.serialize_all(nodes, Dumper=_Dumper, **kwargs)
        return text
    text = yaml.dump_all(documents, Dumper=_Dumper, **kwargs)
    return text


def safe_dump(data: Any, **kwargs: Any) -> str:
    """``yaml.dump(data, Dumper=yaml.CSafeDumper, **kwargs)`` (``SafeDumper`` without
    libyaml), the same text: PyYAML's own quoting, anchors for objects met twice."""
    nodes = _Nodes.of([data], kwargs, kubectl=False)
    if nodes is not None:
        text: str = yaml.serialize_all(nodes, Dumper=_SafeDumper, **kwargs)
        return text
    text = yaml.dump(data, Dumper=_SafeDumper, **kwargs)
    return text


#: The arguments of :func:`dump_all` that only the representer reads (the rest go to
#: ``yaml.serialize_all``, which the representer's ``dump_all`` calls too).
_REPRESENTER_ARGS = frozenset({"sort_keys", "default_flow_style", "default_style"})


class _NotPlain(Exception):
    """A value :class:`_Nodes` leaves to PyYAML's representer."""


class _Nodes:
    """The nodes :class:`_Dumper`'s representer makes of plain data (``dict``, ``list``,
    ``str``, ``int``, ``bool``, None), made without its per-object dispatch and alias
    bookkeeping, and deciding each distinct string's quoting once: a Calico stream of
    10,000 pods has a million scalars. Anything else (a float, a tuple) is left to the
    representer itself, for the whole stream."""

    def __init__(self, sort_keys: bool, flow_style: bool | None, kubectl: bool) -> None:
        self.sort_keys = sort_keys
        self.flow_style = flow_style
        self.kubectl = kubectl  # quoting as kubectl reads (_Dumper), else as PyYAML's safe one
        self.styles: dict[str, str | None] = {}
        #: As SafeRepresenter (not _Dumper, which ignores aliases): a mapping or list met
        #: again in one document is the same node, which the serializer anchors.
        self.seen: dict[int, yaml.Node] = {}

    @classmethod
    def of(
        cls, documents: list[Any], kwargs: dict[str, Any], *, kubectl: bool
    ) -> list[yaml.Node] | None:
        """The documents' nodes, taking the representer's arguments out of ``kwargs``; None
        (``kwargs`` untouched) when a document holds something else than plain data, or
        the arguments ask for what this does not do."""
        flow_style = kwargs.get("default_flow_style", False)
        if kwargs.get("default_style") is not None or flow_style is None:
            return None
        maker = cls(bool(kwargs.get("sort_keys", True)), flow_style, kubectl)
        nodes = []
        try:
            for document in documents:
                maker.seen.clear()  # the representer forgets objects after each document
                nodes.append(maker.node(document))
        except _NotPlain:
            return None
        for name in _REPRESENTER_ARGS:
            kwargs.pop(name, None)
        return nodes

    def node(self, value: Any) -> yaml.Node:
        kind = type(value)
        if kind is str:
            if not self.kubectl:
                return yaml.ScalarNode("tag:yaml.org,2002:str", value)
            style = self.styles.get(value, "")
            if style == "":
                risky = bool(value) and (
                    resolve_plain(value) != value or _COLON_NUMBER.fullmatch(value)
                )
                style = self.styles[value] = "'" if risky else None
            return yaml.ScalarNode("tag:yaml.org,2002:str", value, style=style)
        if not self.kubectl and (kind is dict or kind is list):
            found = self.seen.get(id(value))
            if found is not None:
                return found
        if kind is dict:
            items = list(value.items())
            if self.sort_keys:
                with contextlib.suppress(TypeError):  # as PyYAML: unsortable keys stay
                    items = sorted(items)
            pairs: list[tuple[yaml.Node, yaml.Node]] = []
            mapping = yaml.MappingNode("tag:yaml.org,2002:map", pairs, flow_style=self.flow_style)
            if not self.kubectl:
                self.seen[id(value)] = mapping  # before its items, as the representer does
            pairs.extend((self.node(k), self.node(v)) for k, v in items)
            return mapping
        if kind is list:
            entries: list[yaml.Node] = []
            sequence = yaml.SequenceNode(
                "tag:yaml.org,2002:seq", entries, flow_style=self.flow_style
            )
            if not self.kubectl:
                self.seen[id(value)] = sequence
            entries.extend(self.node(v) for v in value)
            return sequence
        if kind is bool:
            return yaml.ScalarNode("tag:yaml.org,2002:bool", "true" if value else "false")
        if kind is int:
            return yaml.ScalarNode("tag:yaml.org,2002:int", str(value))
        if value is None:
            return yaml.ScalarNode("tag:yaml.org,2002:null", "null")
        raise _NotPlain
