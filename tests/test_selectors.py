"""kubectl label-selector syntax (``npc reach --from/--to``): parsing into the IR, errors with
their column, and no raw ``lark.Tree`` (or ``Token``) surviving the transformer. Also: every
grammar the package ships builds as an LALR parser with positions."""

from __future__ import annotations

import dataclasses
from importlib import resources

import hypothesis.strategies as st
import lark
import pytest
from hypothesis import given, settings

from npc import ir
from npc.frontend.selectors import (
    PodQuery,
    SelectorSyntaxError,
    parse_label_selector,
    parse_pod_query,
)
from npc.grammar import parser

IN, NOT_IN = ir.Operator.IN, ir.Operator.NOT_IN
EXISTS, DOES_NOT_EXIST = ir.Operator.EXISTS, ir.Operator.DOES_NOT_EXIST

PARSES = [
    ("", ()),
    ("app=web", (ir.Requirement("app", IN, ("web",)),)),
    ("app==web", (ir.Requirement("app", IN, ("web",)),)),
    ("app = web", (ir.Requirement("app", IN, ("web",)),)),
    ("app=", (ir.Requirement("app", IN, ("",)),)),
    ("app!=web", (ir.Requirement("app", NOT_IN, ("web",)),)),
    ("app!=", (ir.Requirement("app", NOT_IN, ("",)),)),
    ("tier in (a, b)", (ir.Requirement("tier", IN, ("a", "b")),)),
    ("tier notin (b,a)", (ir.Requirement("tier", NOT_IN, ("a", "b")),)),
    ("canary", (ir.Requirement("canary", EXISTS),)),
    ("!canary", (ir.Requirement("canary", DOES_NOT_EXIST),)),
    ("app.kubernetes.io/name=x", (ir.Requirement("app.kubernetes.io/name", IN, ("x",)),)),
    # The operator words are keys and values where a key or value is expected.
    ("in=notin", (ir.Requirement("in", IN, ("notin",)),)),
    (
        "app=web,tier in (a,b),!canary,env!=prod,release",
        (
            ir.Requirement("app", IN, ("web",)),
            ir.Requirement("canary", DOES_NOT_EXIST),
            ir.Requirement("env", NOT_IN, ("prod",)),
            ir.Requirement("release", EXISTS),
            ir.Requirement("tier", IN, ("a", "b")),
        ),
    ),
]


GRAMMARS = sorted(
    f.name.removesuffix(".lark")
    for f in resources.files("npc.grammar").iterdir()
    if f.name.endswith(".lark")
)


def test_grammars_are_shipped() -> None:
    assert GRAMMARS == ["calico_selector", "iptables", "label_selector", "nft"]


@pytest.mark.parametrize("name", GRAMMARS)
def test_every_grammar_is_lalr_with_positions(name: str) -> None:
    built = parser(name)
    assert built.options.parser == "lalr"
    assert built.options.propagate_positions
    assert parser(name) is built  # built once per process


def _assert_typed(value: object) -> None:
    """Only IR dataclasses, tuples, enums and plain ``str`` (a lark Token is a str subclass)."""
    assert not isinstance(value, lark.Tree | lark.Token), repr(value)
    if isinstance(value, ir.Operator):
        return
    if isinstance(value, str):
        assert type(value) is str, repr(value)
    elif isinstance(value, tuple):
        for item in value:
            _assert_typed(item)
    elif dataclasses.is_dataclass(value):
        assert type(value).__module__ in (ir.__name__, PodQuery.__module__), type(value)
        for f in dataclasses.fields(value):
            _assert_typed(getattr(value, f.name))
    else:
        assert value is None, type(value)


@pytest.mark.parametrize(("text", "requirements"), PARSES, ids=[t or "empty" for t, _ in PARSES])
def test_parses_to_the_ir(text: str, requirements: tuple[ir.Requirement, ...]) -> None:
    selector = parse_label_selector(text)
    _assert_typed(selector)
    assert selector.requirements == requirements


@pytest.mark.parametrize(
    ("text", "column"),
    [
        (",", 1),
        ("app=web,,", 9),
        ("app in (a,b", 12),
        ("app in ()", 9),
        ("app==web,=x", 10),
        ("a b", 3),
        ("app=we b", 8),
        ("-app", 1),
    ],
)
def test_syntax_errors_point_at_the_column(text: str, column: int) -> None:
    with pytest.raises(SelectorSyntaxError) as info:
        parse_label_selector(text)
    assert info.value.column == column


@pytest.mark.parametrize(
    ("text", "namespace", "selector"),
    [
        ("shop/app=web", "shop", "app=web"),
        ("shop/", "shop", ""),
        ("*/app=web", None, "app=web"),
        ("app=web", None, "app=web"),
        ("app.kubernetes.io/name=x", None, "app.kubernetes.io/name=x"),
    ],
)
def test_pod_query_namespace_prefix(text: str, namespace: str | None, selector: str) -> None:
    query = parse_pod_query(text)
    _assert_typed(query)
    assert (query.namespace, str(query.selector)) == (namespace, selector)


def test_pod_query_errors_count_the_prefix() -> None:
    with pytest.raises(SelectorSyntaxError) as info:
        parse_pod_query("shop/app in (a")
    assert info.value.column == len("shop/app in (a") + 1


KEYS = st.sampled_from(["app", "tier", "in", "notin", "a.b/c", "app.kubernetes.io/name", "x_1"])
VALUES = st.sampled_from(["web", "db", "in", "a_b", "1", "x.y-z"])
REQUIREMENTS = st.one_of(
    st.builds(ir.Requirement, KEYS, st.just(EXISTS)),
    st.builds(ir.Requirement, KEYS, st.just(DOES_NOT_EXIST)),
    st.builds(
        ir.Requirement,
        KEYS,
        st.sampled_from([IN, NOT_IN]),
        st.lists(VALUES, min_size=1, max_size=3).map(tuple),
    ),
    # An empty value can be written only alone: `app=` / `app!=`.
    st.builds(ir.Requirement, KEYS, st.sampled_from([IN, NOT_IN]), st.just(("",))),
)
LABELS = st.dictionaries(KEYS, st.sampled_from(["web", "db", "in", "", "a_b"]), max_size=4)


@settings(max_examples=300, deadline=None)
@given(st.lists(REQUIREMENTS, max_size=5), st.lists(LABELS, min_size=1, max_size=5))
def test_kubectl_syntax_parses_back_typed_and_equal(
    requirements: list[ir.Requirement], label_maps: list[dict[str, str]]
) -> None:
    """Every selector the IR prints parses back to an equal selector with the same meaning,
    built of IR objects only (a rule the transformer missed would leave a lark.Tree)."""
    selector = ir.LabelSelector((), tuple(requirements))
    parsed = parse_label_selector(str(selector))
    _assert_typed(parsed)
    assert parsed == selector
    for labels in label_maps:
        assert parsed.matches(labels) == selector.matches(labels)
