"""npc's YAML output reads back as written, in kubectl's dialect and in PyYAML's."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

import npc
from npc import kubeyaml
from npc.frontend.yamlread import read_yaml
from tests.helpers import source

TRICKY = [
    "y",
    "n",
    "Yes",
    "off",
    "~",
    "null",
    "0907",
    "0x1F",
    "1e3",
    "80.0",
    ".5",
    ".nan",
    "+.inf",
    "1_000",
    "8000:9000",
    "1:30",
    "<<",
    "true",
    "ok",
    "a: b",
    "- x",
    "#c",
    "",
]


def _read(text: str) -> object:
    result = read_yaml(text)
    assert result.error is None and not result.notes
    return result.documents[0]


@pytest.mark.parametrize("value", TRICKY)
def test_tricky_strings_round_trip(value: str) -> None:
    text = kubeyaml.dump({"v": value, value or "k": "x"})
    assert _read(text) == {"v": value, value or "k": "x"}
    assert yaml.safe_load(text) == {"v": value, value or "k": "x"}


@given(st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=12), max_size=4))
def test_round_trip_property(data: dict[str, str]) -> None:
    text = kubeyaml.dump(data)
    assert _read(text) == data


def test_calico_namespaced_output_keeps_namespace_names_strings() -> None:
    # Namespaces may be called `y` or `0907`: goyaml v2 would read those bare as a boolean
    # and a number, so calicoctl would see another object.
    policies = "\n---\n".join(
        f"""apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: p, namespace: "{ns}"}}
spec: {{podSelector: {{}}}}"""
        for ns in ("y", "0907")
    )
    for scope in ("namespaced", "global"):
        out = npc.compile([source(policies)], "calico", {"calico_scope": scope}).text
        result = read_yaml(out)
        assert result.error is None
        docs = result.documents
        names = {(d["metadata"].get("namespace"), d["metadata"]["name"]) for d in docs}
        if scope == "namespaced":
            assert names == {("y", "p"), ("0907", "p")}
        else:
            assert {n for _, n in names} == {"y.p", "0907.p"}


_PLAIN = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=20,
)


@given(_PLAIN, st.booleans(), st.booleans())
def test_dump_all_writes_what_dump_writes(data: object, sort_keys: bool, flow: bool) -> None:
    """dump_all builds plain data's nodes itself (a stream of 10,000 pods' policies is
    large): the text is the representer's, as dump (one document) writes it."""
    options = {"sort_keys": sort_keys, "default_flow_style": flow, "width": 4096}
    assert kubeyaml.dump_all([data], explicit_start=True, **options) == kubeyaml.dump(
        data, explicit_start=True, **options
    )
    mixed = [data, {"f": 1.5}]  # a float: the whole stream goes through the representer
    assert kubeyaml.dump_all(mixed, **options) == "".join(
        kubeyaml.dump(d, explicit_start=i > 0, **options) for i, d in enumerate(mixed)
    )


#: What kubeyaml.safe_dump writes with: libyaml's emitter when PyYAML has it.
_SAFE = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


@given(_PLAIN, st.booleans(), st.booleans())
def test_safe_dump_is_yaml_safe_dump(data: object, sort_keys: bool, flow: bool) -> None:
    options = {"sort_keys": sort_keys, "default_flow_style": flow, "width": 100}
    assert kubeyaml.safe_dump(data, **options) == yaml.dump(data, Dumper=_SAFE, **options)


def test_safe_dump_anchors_objects_met_twice() -> None:
    shared = {"a": [1, "x"]}
    data = {"one": shared, "two": shared, "list": [shared["a"], shared["a"]], "f": None}
    for options in ({"sort_keys": False}, {"default_flow_style": False}, {}):
        assert kubeyaml.safe_dump(data, **options) == yaml.dump(data, Dumper=_SAFE, **options)
    assert "&id001" in kubeyaml.safe_dump(data)
