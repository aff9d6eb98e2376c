"""The Alibaba document's JSON writer is ``json.dumps(sort_keys=True, indent=2,
ensure_ascii=False)`` byte for byte, for every JSON value (and falls back to it for what
it does not write itself)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from npc.backends.alibaba.jsontext import dumps

_SCALARS = st.none() | st.booleans() | st.integers() | st.text() | st.floats(allow_nan=False)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=30,
)


def _standard(value: Any) -> str:
    return json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False)


@given(_VALUES)
def test_same_text_as_json_dumps(value: Any) -> None:
    assert dumps(value) == _standard(value)


def test_tuples_non_string_keys_and_escapes() -> None:
    for value in (
        {"b": ("x", []), "a": {}},
        {1: "one", 2: ["two"]},
        {"quote\"\n\u00e9\u2028": "tab\t\x00"},
        [[], {}, [{}], {"x": {"y": "z"}}],
    ):
        assert dumps(value) == _standard(value)
