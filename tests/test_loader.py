"""Reading input as kubectl does: documents, JSON, Lists, files and directories, encodings,
syntax errors, unsafe input, YAML's surprises, and where every diagnostic points."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
import yaml
from hypothesis import given, settings

import npc
from npc import ir, kubeyaml
from npc.errors import Code, Diagnostic, InputError, NpcError, Severity
from npc.frontend.yamlread import read_yaml, resolve_plain
from tests.helpers import NAMED_POLICY as POLICY

BIN = Path(sys.executable).parent

NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: prod\n"


def doc(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def load(text: str, name: str = "in.yaml") -> npc.Bundle:
    return npc.load([npc.Source(name, text)])


def problems(text: str, name: str = "in.yaml") -> list[Diagnostic]:
    """The diagnostics of an input that is rejected (errors, warnings and notes)."""
    with pytest.raises(NpcError) as info:
        load(text, name)
    return list(info.value.diagnostics)


def where(d: Diagnostic) -> str:
    assert d.location is not None, d.render()
    return f"{d.location.file}:{d.location.line}:{d.location.column}"


def at(text: str, needle: str, name: str = "in.yaml") -> str:
    """``name:line:column`` of the first occurrence of ``needle`` in ``text``."""
    index = text.index(needle)
    line = text.count("\n", 0, index) + 1
    return f"{name}:{line}:{index - (text.rfind(chr(10), 0, index) + 1) + 1}"


# -- documents, JSON and Lists -------------------------------------------------------------------


def test_multi_document_yaml_keeps_positions_per_document() -> None:
    text = "\n---\n".join([POLICY.format(name="a"), NAMESPACE, "", POLICY.format(name="b")])
    bundle = load(text)
    assert [p.name for p in bundle.policies] == ["a", "b"]
    assert bundle.snapshot is not None and [n.name for n in bundle.snapshot.namespaces] == ["prod"]
    broken = text.replace("name: b", "name: B")
    (d,) = problems(broken)
    assert where(d) == "in.yaml:21:9" and d.path == "metadata.name"


def test_json_single_object_and_concatenated_stream() -> None:
    one = json.dumps(yaml.safe_load(POLICY.format(name="a")), indent=2)
    assert [p.name for p in load(one, "p.json").policies] == ["a"]
    two = one + "\n" + json.dumps(yaml.safe_load(POLICY.format(name="b")))
    assert [p.name for p in load(two, "p.json").policies] == ["a", "b"]
    # A problem in the second document points into it (line 12, where it starts).
    second = json.dumps(yaml.safe_load(POLICY.format(name="B")))
    (d,) = problems(one + "\n" + second, "p.json")
    assert d.path == "metadata.name"
    assert where(d) == f"p.json:12:{second.index(chr(34) + 'B') + 1}"


def test_json_positions_of_keys_values_and_list_items() -> None:
    text = doc(
        """
        {
          "apiVersion": "v1",
          "kind": "List",
          "items": [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod"}},
            {
              "apiVersion": "networking.k8s.io/v1",
              "kind": "NetworkPolicy",
              "metadata": {"name": "web", "namespace": "prod"},
              "spec": {
                "podSelector": {"matchLabels": {"app": "-web"}},
                "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8",
                                               "except": ["11.0.0.0/8"]}}]}],
                "egres": []
              }
            }
          ]
        }
        """
    )
    found = problems(text, "list.json")
    assert [(where(d), d.path) for d in found] == [
        (at(text, '"-web"', "list.json"), "spec.podSelector.matchLabels[app]"),
        (at(text, '"11.0.0.0/8"', "list.json"), "spec.ingress[0].from[0].ipBlock.except[0]"),
        (at(text, '"egres"', "list.json"), "spec.egres"),
    ]
    assert found[2].hint == "did you mean `egress`?"


def test_json_duplicate_keys_and_syntax_errors() -> None:
    text = '{"apiVersion": "v1", "kind": "Namespace",\n "metadata": {"name": "a", "name": "b"}}'
    (d,) = problems(text, "ns.json")
    assert d.code is Code.DUPLICATE_KEY and where(d) == "ns.json:2:28" and d.path == "metadata.name"
    assert "first at line 2" in d.message
    (d,) = problems('{"apiVersion": "v1",\n  "kind": "Namespace",}', "ns.json")
    assert d.code is Code.JSON_SYNTAX and where(d) == "ns.json:2:23"
    assert d.hint == "JSON does not allow a comma before '}'"


def test_yaml_flow_style_that_starts_like_json_is_yaml() -> None:
    text = "{apiVersion: v1, kind: Namespace, metadata: {name: prod}}\n"
    bundle = load(text)
    assert bundle.snapshot is not None and bundle.snapshot.namespaces[0].name == "prod"


def test_lists_typed_lists_and_nested_lists() -> None:
    text = doc(
        """
        apiVersion: v1
        kind: List
        items:
        - apiVersion: networking.k8s.io/v1
          kind: NetworkPolicyList
          items:
          - metadata: {name: a, namespace: prod}
            spec: {podSelector: {}}
        - apiVersion: v1
          kind: List
          items:
          - apiVersion: v1
            kind: Namespace
            metadata: {name: prod}
          - apiVersion: v1
            kind: ConfigMap
            metadata: {name: skipped}
        """
    )
    bundle = load(text)
    assert [p.name for p in bundle.policies] == ["a"]
    assert bundle.snapshot is not None and len(bundle.snapshot.namespaces) == 1
    (note,) = bundle.diagnostics
    assert note.severity is Severity.INFO and where(note) == "in.yaml:16:11"
    assert note.path == "kind"  # relative to the ConfigMap, not items[1].items[1].kind


# -- files, directories, stdin ---------------------------------------------------------------------


def test_directories_are_read_recursively_in_lexical_order(tmp_path: Path) -> None:
    for rel in ["b/2.yaml", "a.yaml", "c.json", "b/1.yml", "skip.txt", "a0/x.yaml", "D.YAML"]:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}" if rel.endswith("json") else "# empty\n", encoding="utf-8")
    names = [
        Path(s.name).relative_to(tmp_path).as_posix() for s in npc.read_sources([str(tmp_path)])
    ]
    # kubectl's walk: lexical by name, a directory's files where the directory sorts.
    assert names == ["a.yaml", "a0/x.yaml", "b/1.yml", "b/2.yaml", "c.json"]


def test_an_explicit_file_is_read_whatever_its_name(tmp_path: Path) -> None:
    path = tmp_path / "policy.txt"
    path.write_text(POLICY.format(name="a"), encoding="utf-8")
    assert [p.name for p in npc.load(npc.read_sources([str(path)])).policies] == ["a"]


def test_unreadable_inputs_are_all_reported(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError) as info:
        npc.read_sources([str(tmp_path / "missing.yaml"), str(tmp_path / "empty")])
    messages = [d.message for d in info.value.diagnostics]
    assert messages == [
        f"{tmp_path / 'missing.yaml'}: No such file or directory",
        f"{tmp_path / 'empty'}: no .yaml, .yml or .json files in this directory",
    ]


def test_a_path_the_os_refuses_is_an_input_error() -> None:
    with pytest.raises(InputError) as info:
        npc.read_sources(["a\x00b.yaml"])
    assert [d.message for d in info.value.diagnostics] == ["'a\\x00b.yaml': not a valid path"]


def test_stdin_through_the_cli() -> None:
    result = subprocess.run(
        [str(BIN / "npc"), "validate", "-f", "-"],
        input=(POLICY.format(name="a") + "---\n" + NAMESPACE).encode(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (
        result.stdout.decode() == "valid: 1 policy in 1 namespace; snapshot: 1 namespace, 0 pods\n"
    )
    result = subprocess.run(
        [str(BIN / "npc"), "validate", "-f", "-"],
        input=b"kind: NetworPolicy\n",
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.decode().startswith("<stdin>:1:1: error: apiVersion: Object 'apiVersion'")


# -- empty documents, encodings ------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["", "   \n", "# nothing here\n", "---\n", "---\n---\n...\n", "null\n"]
)
def test_empty_inputs_load_with_a_warning(text: str) -> None:
    bundle = load(text)
    assert len(bundle.policies) == 0 and bundle.snapshot is None
    (d,) = bundle.diagnostics
    assert d.severity is Severity.WARNING and d.message == "no Kubernetes objects in this input"


def test_empty_documents_between_objects_are_skipped() -> None:
    text = "---\n" + POLICY.format(name="a") + "---\n---\n# comment\n---\n" + NAMESPACE + "---\n"
    bundle = load(text)
    assert len(bundle.policies) == 1 and bundle.diagnostics == ()


def test_byte_order_marks(tmp_path: Path) -> None:
    text = "kind: NetworPolicy\napiVersion: networking.k8s.io/v1\nmetadata: {name: a}\n"
    (tmp_path / "bom8.yaml").write_bytes(b"\xef\xbb\xbf" + text.encode())
    (tmp_path / "bom16.yaml").write_bytes(text.encode("utf-16"))
    (tmp_path / "bom.json").write_bytes(
        b"\xef\xbb\xbf" + json.dumps(yaml.safe_load(NAMESPACE)).encode()
    )
    sources = npc.read_sources([str(tmp_path)])
    found = problems_of(sources)
    # The BOM is not a column: `kind`'s value starts at column 7 of line 1 in both files.
    assert [
        (Path(d.location.file).name, d.location.line, d.location.column)
        for d in found
        if d.location
    ] == [
        ("bom16.yaml", 1, 7),
        ("bom8.yaml", 1, 7),
    ]
    # The library accepts a BOM in text it is given, too.
    bundle = npc.load([npc.Source("x.json", "\ufeff" + json.dumps(yaml.safe_load(NAMESPACE)))])
    assert bundle.snapshot is not None


def problems_of(sources: list[npc.Source]) -> list[Diagnostic]:
    with pytest.raises(NpcError) as info:
        npc.load(sources)
    return list(info.value.diagnostics)


def test_non_utf8_input_points_at_the_byte(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: caf\xe9\n")
    with pytest.raises(InputError) as info:
        npc.read_sources([str(path)])
    (d,) = info.value.diagnostics
    assert where(d) == f"{path}:4:12"
    assert "byte 0xe9" in d.message and d.hint is not None and "UTF-8" in d.hint


# -- syntax errors ---------------------------------------------------------------------------------


def test_yaml_syntax_error_keeps_the_documents_before_it() -> None:
    text = (
        POLICY.format(name="a")
        + "  Ingress: []\n---\n"
        + NAMESPACE
        + "---\nkind: [unclosed\n---\n"
        + POLICY.format(name="B")
    )
    found = problems(text)
    assert [(where(d), d.code) for d in found] == [
        ("in.yaml:8:3", Code.UNKNOWN_FIELD),  # the first document is still validated
        ("in.yaml:16:1", Code.YAML_SYNTAX),  # nothing after the error is read
    ]
    assert "invalid YAML" in found[1].message
    assert found[1].hint is not None and "bracket is not closed" in found[1].hint


@pytest.mark.parametrize(
    ("text", "position", "hint"),
    [
        ("apiVersion: v1\nkind: Namespace\nmetadata:\n\tname: x\n", "4:1", "tabs"),
        (
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n labels: {}\n",
            "5:2",
            "indentation",
        ),
        (
            "apiVersion: v1\nkind: Namespace\nmetadata: name: x\n",
            "3:15",
            "quote values that contain ': '",
        ),
        ("apiVersion: v1\nkind: 'Namespace\n", "3:1", "not closed"),
    ],
)
def test_yaml_syntax_errors_have_positions_and_hints(text: str, position: str, hint: str) -> None:
    (d,) = problems(text)
    assert d.code is Code.YAML_SYNTAX and where(d) == f"in.yaml:{position}", d.render()
    assert d.hint is not None and hint in d.hint, d.render()


def test_crlf_line_endings() -> None:
    text = POLICY.format(name="Bad").replace("\n", "\r\n")
    (d,) = problems(text)
    assert where(d) == "in.yaml:4:9"


# -- unsafe input --------------------------------------------------------------------------------


def test_alias_bomb_is_refused_quickly() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    start = time.perf_counter()
    (d,) = problems("\n".join(lines) + "\n")
    assert time.perf_counter() - start < 5
    assert d.code is Code.ALIAS_BOMB and "billion laughs" in (d.hint or "")


def test_aliases_and_merge_keys_are_expanded() -> None:
    text = doc(
        """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: &meta
          name: web
          namespace: prod
          labels: &labels {app: web}
        spec:
          <<: {podSelector: {matchLabels: *labels}, policyTypes: [Ingress]}
          ingress:
          - from: &peers
            - podSelector: {matchLabels: {role: client}}
          - from: *peers
            ports: [{port: 80}]
        """
    )
    (policy,) = load(text).policies
    assert policy.pod_selector.matches({"app": "web"}) and not policy.pod_selector.matches({})
    assert policy.ingress is not None and policy.ingress[0].peers == policy.ingress[1].peers


def test_undefined_and_recursive_aliases_are_errors() -> None:
    (d,) = problems("a: *nope\n")
    assert (
        d.code is Code.YAML_SYNTAX and "undefined alias" in d.message and where(d) == "in.yaml:1:4"
    )
    (d,) = problems("a: &x [1, *x]\n")
    assert "refers to a node that contains it" in d.message


def _run_npc(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "npc"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        **kwargs,
    )


@pytest.mark.parametrize(
    ("kind", "make"),
    [
        ("flow", lambda n: "a: " + "[" * n + "]" * n + "\n"),
        ("flow-mapping", lambda n: "a: " + "{a: " * n + "1" + "}" * n + "\n"),
        ("block", lambda n: "".join(" " * i + "a:\n" for i in range(n)) + " " * n + "a: 1\n"),
        ("compact-sequence", lambda n: "- " * n + "x\n"),
        # Brackets inside strings must not fool the guard into allowing the real nesting.
        ("quoted-brackets", lambda n: "a: " + '["]", ' * n + "]" * n + "\n"),
    ],
)
def test_absurd_nesting_is_refused_quickly_without_crashing(
    tmp_path: Path, kind: str, make: Any
) -> None:
    """Exit 2 with one located error, no crash, no output, quickly. Whether npc's own depth
    guard or libyaml's (PyYAML 6.0.4 and later) refuses first, and in whose words, is not
    npc's promise, so the wording is not asserted."""
    # In a subprocess: a C stack overflow would kill pytest, here it fails the test.
    path = tmp_path / f"{kind}.yaml"
    depth = 3_000 if kind == "block" else 100_000
    text = make(depth)
    path.write_text(text, encoding="utf-8")
    start = time.perf_counter()
    result = _run_npc(["validate", "-f", str(path)])
    assert time.perf_counter() - start < 30
    assert result.returncode == 2, (result.returncode, result.stderr[-500:])
    assert result.stdout == "" and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1, result.stderr[-500:]
    located = re.fullmatch(r"(.+):(\d+):(\d+): error: .+", errors[0])
    assert located is not None, errors[0]
    assert located[1] == str(path)
    line, column = int(located[2]), int(located[3])
    assert 1 <= line <= text.count("\n") and column >= 1


def test_absurd_json_nesting_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}", encoding="utf-8")
    result = _run_npc(["validate", "-f", str(path)])
    assert result.returncode == 2, result.stderr[-500:]
    assert f"{path}:1:1: error: refusing input nested too deeply" in result.stderr


def test_nesting_within_the_limit_is_fine() -> None:
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: " + "[" * 150 + "]" * 150
    bundle = load(text)
    assert bundle.diagnostics[0].severity is Severity.INFO


# -- YAML's surprises, read as kubectl reads them -------------------------------------------------


def test_timestamps_stay_strings() -> None:
    text = doc(
        """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata:
          name: web
          creationTimestamp: 2024-01-01T00:00:00Z
        spec:
          podSelector: {matchLabels: {since: 2024-01-01}}
        """
    )
    (policy,) = load(text).policies
    assert policy.pod_selector.matches({"since": "2024-01-01"})


@pytest.mark.parametrize("word", ["no", "yes", "on", "off", "y", "n", "True", "FALSE"])
def test_the_norway_problem_gets_a_hint(word: str) -> None:
    text = POLICY.format(name="web").replace(
        "podSelector: {}", f"podSelector:\n    matchLabels:\n      country: {word}"
    )
    (d,) = problems(text)
    assert where(d) == "in.yaml:9:16" and d.path == "spec.podSelector.matchLabels[country]"
    assert d.message == f"expected a string, got a boolean ({word})"
    assert d.hint is not None and f'quote the value if you mean the word: "{word}"' in d.hint


def test_keys_are_converted_as_kubectl_converts_them() -> None:
    text = POLICY.format(name="web").replace(
        "podSelector: {}",
        "podSelector:\n    matchLabels:\n      80: a\n      yes: b\n      0x1F: c",
    )
    bundle = load(text)
    (policy,) = bundle.policies
    assert policy.pod_selector.matches({"80": "a", "true": "b", "31": "c"})
    assert [(where(d), d.message) for d in bundle.diagnostics] == [
        ("in.yaml:10:7", 'key yes is read as "true", as kubectl reads it'),
        ("in.yaml:11:7", 'key 0x1F is read as "31", as kubectl reads it'),
    ]
    (d,) = problems(text.replace("80: a", "1.5: a"))
    assert d.code is Code.YAML_SYNTAX and "unsupported mapping key 1.5" in d.message


@pytest.mark.parametrize(
    ("written", "port"), [("80.0", 80), ("0x50", 80), ("1_0", 10), ("0120", 80)]
)
def test_numbers_are_what_the_api_server_receives(written: str, port: int) -> None:
    # kubectl sends `80.0` as 80 and reads 0x50 and 0120 (octal) as 80, like goyaml v2.
    text = POLICY.format(name="web") + f"  ingress:\n  - ports:\n    - port: {written}\n"
    (policy,) = load(text).policies
    assert policy.ingress is not None
    ports = policy.ingress[0].ports
    assert isinstance(ports, ir.PortSet)
    assert [r.start for e in ports.entries for r in e.ranges] == [port]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("y", True),
        ("NO", False),
        ("~", None),
        ("", None),
        ("Null", None),
        ("012", 10),
        ("0o12", 10),
        ("0x1F", 31),
        ("0b101", 5),
        ("-0x10", -16),
        ("1_000", 1000),
        ("08", 8),
        ("1e3", 1000),
        ("1.5", 1.5),
        (".5", 0.5),
        ("+7", 7),
        ("2024-01-01", "2024-01-01"),
        ("1:30", "1:30"),
        ("1e400", "1e400"),
        ("0x", "0x"),
        (".", "."),
        ("-", "-"),
        ("v1.0", "v1.0"),
        ("<<", "<<"),
        ("١٢", "١٢"),
    ],
)
def test_plain_scalars_resolve_like_goyaml_v2(text: str, value: Any) -> None:
    got = resolve_plain(text) if text else None
    assert got == value and type(got) is type(value)


# -- where diagnostics point -----------------------------------------------------------------------


def test_keys_versus_values() -> None:
    text = POLICY.format(name="web").replace(
        "podSelector: {}", "podSelector:\n    matchLabels:\n      Bad_Key-: ok\n      good: -bad"
    )
    found = problems(text)
    # A bad key points at the key, a bad value at the value; an unknown field at its key.
    assert [(where(d), d.path) for d in found] == [
        ("in.yaml:9:7", "spec.podSelector.matchLabels[Bad_Key-]"),
        ("in.yaml:10:13", "spec.podSelector.matchLabels[good]"),
    ]


def test_bundle_locate_finds_policies_rules_and_missing_fields() -> None:
    text = (
        NAMESPACE
        + "---\n"
        + doc(
            """
        apiVersion: v1
        kind: List
        items:
        - apiVersion: v1
          kind: Namespace
          metadata: {name: other}
        - apiVersion: networking.k8s.io/v1
          kind: NetworkPolicy
          metadata: {name: web, namespace: prod}
          spec:
            podSelector: {}
            ingress:
            - {}
            - from: [{podSelector: {}}]
        """
        )
    )
    bundle = load(text)
    (policy,) = bundle.policies
    assert policy.ingress is not None
    assert str(bundle.locate(policy.origin)) == "in.yaml:12:3"
    assert str(bundle.locate(policy.ingress[1].origin)) == "in.yaml:19:7"
    missing = ir.Origin(0, 1, ("items", 1, "spec", "egress", 0))
    assert str(bundle.locate(missing)) == "in.yaml:16:5"  # the nearest ancestor: spec
    assert bundle.locate(None) is None


def test_bundle_locate_in_json() -> None:
    text = json.dumps(yaml.safe_load(POLICY.format(name="web") + "  ingress: [{}]\n"), indent=1)
    bundle = load(text, "p.json")
    (policy,) = bundle.policies
    assert policy.ingress is not None
    assert str(bundle.locate(policy.ingress[0].origin)) == "p.json:11:4"
    assert str(bundle.locate(policy.origin)) == "p.json:1:1"


def test_diagnostics_come_in_source_order() -> None:
    # A syntax error in the second file and a validation error in the first: file order wins.
    with pytest.raises(NpcError) as info:
        npc.load([npc.Source("a.yaml", POLICY.format(name="A")), npc.Source("b.yaml", "a: [\n")])
    assert [d.location.file for d in info.value.diagnostics if d.location] == ["a.yaml", "b.yaml"]


# -- properties ----------------------------------------------------------------------------------


_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
_data = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def _as_kubectl_sends(value: Any) -> Any:
    """What reaches the API server: integral floats below 1e21 become integers, and integers
    beyond 64 bits were floats on the way (goyaml v2 parses them as float64)."""
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        value = float(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)
    if isinstance(value, list):
        return [_as_kubectl_sends(v) for v in value]
    if isinstance(value, dict):
        return {k: _as_kubectl_sends(v) for k, v in value.items()}
    return value


@settings(max_examples=150, deadline=None)
@given(_data, st.sampled_from([None, True, False]))
def test_yaml_reader_round_trips(data: Any, flow: bool | None) -> None:
    text = kubeyaml.dump(data, default_flow_style=flow)
    read = read_yaml(text)
    assert read.error is None, (text, read.error)
    assert read.documents == [_as_kubectl_sends(data)]


@settings(max_examples=100, deadline=None)
@given(st.lists(_data, min_size=1, max_size=3))
def test_multi_document_yaml_round_trips(documents: list[Any]) -> None:
    text = kubeyaml.dump_all(documents, explicit_start=True)
    assert read_yaml(text).documents == [_as_kubectl_sends(d) for d in documents]


def test_the_reader_agrees_with_pyyaml_on_a_real_manifest() -> None:
    root = Path(__file__).resolve().parent.parent
    for path in sorted((root / "golden").glob("*/*.yaml")) + sorted(
        (root / "examples").glob("*/*.yaml")
    ):
        text = path.read_text(encoding="utf-8")
        assert read_yaml(text).documents == list(yaml.load_all(text, Loader=yaml.CSafeLoader)), path


def test_no_environment_leaks_into_positions() -> None:
    # Positions are computed from the text alone: same answer with another working directory.
    before = [where(d) for d in problems(POLICY.format(name="X"))]
    cwd = os.getcwd()
    try:
        os.chdir("/")
        assert [where(d) for d in problems(POLICY.format(name="X"))] == before
    finally:
        os.chdir(cwd)
