"""The Alibaba document's JSON writer: ``json.dumps(sort_keys=True, indent=2,
ensure_ascii=False)`` byte for byte for documents without ``Lines``; each item of a
``Lines`` on a line of its own, as ``json.dumps(value, sort_keys=True, ensure_ascii=False)``
writes it; and the permissions made as lines say what the mappings say."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from npc import ir
from npc.backends.alibaba.document import Permissions
from npc.backends.alibaba.jsontext import Lines, dumps, lines
from npc.backends.alibaba.plan import Rule

_SCALARS = st.none() | st.booleans() | st.integers() | st.text()
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=30,
)
_FLAT = st.dictionaries(st.text(max_size=8), st.text(max_size=8) | st.integers(), max_size=6)


def _standard(value: Any) -> str:
    return json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False)


def _plain(value: Any) -> Any:
    """``value`` with the items of each Lines read back."""
    if isinstance(value, Lines):
        return [json.loads(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


@given(_VALUES)
def test_same_text_as_json_dumps(value: Any) -> None:
    assert dumps(value) == _standard(value)


def test_tuples_and_escapes() -> None:
    for value in (
        {"b": ("x", []), "a": {}},
        {"quote\"\n\u00e9\u2028": "tab\t\x00"},
        [[], {}, [{}], {"x": {"y": "z"}}],
    ):
        assert dumps(value) == _standard(value)


@given(st.lists(_FLAT, max_size=5), st.dictionaries(st.text(max_size=3), _FLAT, max_size=3))
def test_lines_on_lines_of_their_own(items: list[dict[str, Any]], named: dict[str, Any]) -> None:
    value = {"list": lines(items), "nested": [{k: lines([v, v]) for k, v in named.items()}]}
    text = dumps(value)
    assert json.loads(text) == _plain(value)
    rows = [row.strip().removesuffix(",") for row in text.split("\n")]
    for item in [*items, *named.values()]:
        assert json.dumps(item, sort_keys=True, ensure_ascii=False) in rows


def test_not_a_document_value() -> None:
    with pytest.raises(TypeError):
        dumps({1: "one"})
    with pytest.raises(TypeError):
        dumps([1.5])


_DESCRIPTIONS = st.text(max_size=20).map(lambda s: (s,)) | st.just(())
_RULES = st.builds(
    Rule,
    st.sampled_from((4, 6)),
    st.sampled_from((None, ir.Protocol.TCP, ir.Protocol.UDP, "ICMP")),
    st.none() | st.tuples(st.integers(1, 100), st.integers(100, 65535)),
    st.integers(0, 2**32 - 1).map(lambda lo: (lo, lo)),
    _DESCRIPTIONS,
    st.integers(1, 100),
    st.sampled_from(("accept", "drop")),
)


@given(st.lists(_RULES, max_size=6), st.sampled_from(ir.DIRECTIONS))
def test_permission_lines_are_the_mappings(rules: list[Rule], direction: str) -> None:
    permissions = Permissions()
    for rule in rules:
        mapping = permissions.mapping(rule, ir.Direction(direction))
        text = permissions.line(rule, ir.Direction(direction))
        assert text == json.dumps(mapping, sort_keys=True, ensure_ascii=False)
