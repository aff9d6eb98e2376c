"""The Calico selector grammar, its typed nodes, evaluation and quoting."""

from __future__ import annotations

import lark
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npc.rulesets.calico.selector import (
    All,
    And,
    Contains,
    EndsWith,
    Eq,
    Global,
    Has,
    In,
    Ne,
    Node,
    Not,
    NotIn,
    Or,
    SelectorQuotingError,
    SelectorSyntaxError,
    StartsWith,
    check_key,
    namespace_selector,
    parse_selector,
    quote,
)

PARSES = [
    ("", All()),
    ("   ", All()),
    ("all()", All()),
    ("all( )", All()),
    ("global()", Global()),
    ("has(app)", Has("app")),
    ("has( app )", Has("app")),
    ("app == 'web'", Eq("app", "web")),
    ('app=="web"', Eq("app", "web")),
    ("app != 'web'", Ne("app", "web")),
    ("a.b/c-d_e == ''", Eq("a.b/c-d_e", "")),
    ("app in { 'a', \"b\" }", In("app", ("a", "b"))),
    ("app in {'a',}", In("app", ("a",))),
    ("app in {}", In("app", ())),
    ("app not in { 'a' }", NotIn("app", ("a",))),
    ("app notin {'a'}", NotIn("app", ("a",))),
    ("app contains 'we'", Contains("app", "we")),
    ("app starts with 'w'", StartsWith("app", "w")),
    ("app startswith 'w'", StartsWith("app", "w")),
    ("app ends with 'b'", EndsWith("app", "b")),
    ("!has(app)", Not(Has("app"))),
    ("! has(app)", Not(Has("app"))),
    ("!!has(app)", Has("app")),
    ("!!!has(app)", Not(Has("app"))),
    ("has == 'x'", Eq("has", "x")),
    ("all == 'x'", Eq("all", "x")),
    ("in == 'x'", Eq("in", "x")),
    ("a == 'x' && b == 'y' && has(c)", And((Eq("a", "x"), Eq("b", "y"), Has("c")))),
    ("a == 'x' || b == 'y'", Or((Eq("a", "x"), Eq("b", "y")))),
    (
        "a == 'x' || b == 'y' && c == 'z'",
        Or((Eq("a", "x"), And((Eq("b", "y"), Eq("c", "z"))))),
    ),
    (
        "(a == 'x' || b == 'y') && c == 'z'",
        And((Or((Eq("a", "x"), Eq("b", "y"))), Eq("c", "z"))),
    ),
    ("!(a == 'x' && b == 'y')", Not(And((Eq("a", "x"), Eq("b", "y"))))),
    ("((has(a)))", Has("a")),
    ("\thas(a)\t", Has("a")),
    ('v == "it\'s"', Eq("v", "it's")),
    ("v == 'say \"hi\"'", Eq("v", 'say "hi"')),
    (
        "projectcalico.org/orchestrator == 'k8s' && app in { 'a', 'b' } && ! has(canary)",
        And(
            (
                Eq("projectcalico.org/orchestrator", "k8s"),
                In("app", ("a", "b")),
                Not(Has("canary")),
            )
        ),
    ),
]


@pytest.mark.parametrize(("text", "node"), PARSES, ids=[t or "empty" for t, _ in PARSES])
def test_parses(text: str, node: Node) -> None:
    assert parse_selector(text) == node


REJECTS = [
    ("app = 'web'", 5),
    ("app == web", 8),
    ("has (app)", 5),
    ("has(app", 8),
    ("app in 'a'", 8),
    ("app in {,}", 9),
    ("(has(a)", 8),
    ("has(a))", 7),
    ("has(a) && ", 11),
    ("app == 'web", 8),
    ("app == 'a'\n", 11),
    ("app & has(b)", 5),
    ("app ~= 'a'", 5),
    ("app == 'a' has(b)", 12),
    ("all", 4),
]


@pytest.mark.parametrize(("text", "column"), REJECTS, ids=[t for t, _ in REJECTS])
def test_rejects_with_column(text: str, column: int) -> None:
    with pytest.raises(SelectorSyntaxError) as info:
        parse_selector(text)
    assert info.value.column == column
    assert str(column) in str(info.value)


EVALUATIONS = [
    # (selector, labels, result): != and not in match objects without the label.
    ("app == 'web'", {}, False),
    ("app != 'web'", {}, True),
    ("app != 'web'", {"app": "web"}, False),
    ("app != 'web'", {"app": "db"}, True),
    ("app in { 'a', 'b' }", {}, False),
    ("app in { 'a', 'b' }", {"app": "b"}, True),
    ("app in {}", {"app": ""}, False),
    ("app not in { 'a' }", {}, True),
    ("app not in { 'a' }", {"app": "a"}, False),
    ("app not in {}", {"app": "a"}, True),
    ("app contains 'e'", {}, False),
    ("app contains 'e'", {"app": "web"}, True),
    ("app contains ''", {"app": ""}, True),
    ("app starts with 'we'", {"app": "web"}, True),
    ("app starts with 'eb'", {"app": "web"}, False),
    ("app ends with 'eb'", {"app": "web"}, True),
    ("has(app)", {"app": ""}, True),
    ("!has(app)", {"app": ""}, False),
    ("app == ''", {"app": ""}, True),
    ("app == ''", {}, False),
    ("all()", {}, True),
    ("", {"x": "y"}, True),
    ("global()", {}, True),
    ("a == '1' || b == '2' && c == '3'", {"a": "1"}, True),
    ("(a == '1' || b == '2') && c == '3'", {"a": "1"}, False),
    ("!(a == '1' && b == '2')", {"a": "1"}, True),
]


@pytest.mark.parametrize(("text", "labels", "result"), EVALUATIONS)
def test_evaluates_like_calico(text: str, labels: dict[str, str], result: bool) -> None:
    assert parse_selector(text).evaluate(labels) is result


def test_quote_picks_a_quote_the_value_lacks() -> None:
    assert quote("web") == "'web'"
    assert quote("") == "''"
    assert quote("it's") == '"it\'s"'
    assert quote('say "hi"') == "'say \"hi\"'"
    with pytest.raises(SelectorQuotingError, match="both"):
        quote('it\'s "both"')
    for value in ("web", "it's", 'a"b', "", "  spaced  ", "{a, b}", "x && y"):
        assert parse_selector(f"k == {quote(value)}").evaluate({"k": value})


def test_check_key() -> None:
    assert check_key("app.kubernetes.io/name") == "app.kubernetes.io/name"
    for bad in ("", "a b", "a'b", "a=b", "ä", "a(b)"):
        with pytest.raises(SelectorQuotingError):
            check_key(bad)


def test_namespace_selector_rewrites_like_libcalico() -> None:
    # getEndpointSelector: keys get the pcns. prefix, all() means "in some namespace",
    # global() "in no namespace".
    assert namespace_selector(parse_selector("env == 'prod'")) == Eq("pcns.env", "prod")
    assert namespace_selector(All()) == Has("projectcalico.org/namespace")
    assert namespace_selector(Global()) == Not(Has("projectcalico.org/namespace"))
    assert namespace_selector(parse_selector("!all() || has(team)")) == Or(
        (Not(Has("projectcalico.org/namespace")), Has("pcns.team"))
    )


# -- every transformed result is typed, whatever the input -----------------------------------


def _assert_typed(node: object) -> None:
    assert isinstance(node, Node), type(node)
    for sub in node.walk():
        assert not isinstance(sub, lark.Tree), sub
        assert isinstance(sub, Node), type(sub)
        for value in vars_of(sub):
            assert not isinstance(value, lark.Tree | lark.Token), (sub, value)


def vars_of(node: Node) -> list[object]:
    out: list[object] = []
    for name in getattr(node, "__slots__", ()):
        value = getattr(node, name)
        out.extend(value if isinstance(value, tuple) else [value])
    return out


@pytest.mark.parametrize("text", [t for t, _ in PARSES] + [t for t, _, _ in EVALUATIONS])
def test_no_raw_tree_survives(text: str) -> None:
    node = parse_selector(text)
    _assert_typed(node)
    assert all(type(v) is str for v in vars_of(node) if isinstance(v, str))


KEYS = st.sampled_from(["app", "tier", "a.b/c", "x-y_z"])
VALUES = st.sampled_from(["web", "db", "", "it's", 'say "hi"', "a b"])


def _leaves() -> st.SearchStrategy[Node]:
    return st.one_of(
        st.just(All()),
        st.builds(Has, KEYS),
        st.builds(Eq, KEYS, VALUES),
        st.builds(Ne, KEYS, VALUES),
        st.builds(Contains, KEYS, VALUES),
        st.builds(StartsWith, KEYS, VALUES),
        st.builds(EndsWith, KEYS, VALUES),
        st.builds(In, KEYS, st.lists(VALUES, max_size=3).map(tuple)),
        st.builds(NotIn, KEYS, st.lists(VALUES, max_size=3).map(tuple)),
    )


NODES = st.recursive(
    _leaves(),
    lambda inner: st.one_of(
        st.builds(Not, inner),
        st.builds(And, st.lists(inner, min_size=2, max_size=3).map(tuple)),
        st.builds(Or, st.lists(inner, min_size=2, max_size=3).map(tuple)),
    ),
    max_leaves=8,
)
LABELS = st.dictionaries(KEYS, VALUES, max_size=4)


@settings(max_examples=300, deadline=None)
@given(NODES, st.lists(LABELS, min_size=1, max_size=5))
def test_render_parses_back_to_the_same_meaning(
    node: Node, label_maps: list[dict[str, str]]
) -> None:
    parsed = parse_selector(node.render())
    _assert_typed(parsed)
    for labels in label_maps:
        assert parsed.evaluate(labels) == node.evaluate(labels)
    assert parse_selector(parsed.render()) == parsed
