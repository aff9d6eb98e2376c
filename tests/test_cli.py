"""The command line, through the real console scripts (``npc``, ``kubectl-npc``,
``python -m npc``), and a fuzz test that no input produces anything but an ``NpcError``."""

from __future__ import annotations

import contextlib
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import hypothesis.strategies as st
import pytest
import yaml
from hypothesis import HealthCheck, given, settings

import npc
import npc.cli
import npc.cli.app
from npc import targets
from npc.errors import NpcError
from tests.helpers import NAMED_POLICY as POLICY

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "golden"


def run(
    *args: str, stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    command = [str(BIN / "npc"), *args]
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run(
        command,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
        cwd=cwd,
    )


@pytest.fixture
def good(tmp_path: Path) -> Path:
    path = tmp_path / "good.yaml"
    path.write_text(POLICY.format(name="web"), encoding="utf-8")
    return path


@pytest.fixture
def bad(tmp_path: Path) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(POLICY.format(name="Web") + "  Ingress: []\n", encoding="utf-8")
    return path


# -- the three ways in ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [[str(BIN / "npc")], [str(BIN / "kubectl-npc")], [sys.executable, "-m", "npc"]],
    ids=["npc", "kubectl-npc", "python -m npc"],
)
def test_entry_points_version_and_help(command: list[str]) -> None:
    version = subprocess.run(
        [*command, "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert version.returncode == 0 and version.stdout == f"npc, version {npc.__version__}\n"
    shown = subprocess.run(
        [*command, "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert shown.returncode == 0 and "Examples:" in shown.stdout
    assert "npc validate -f policies/" in shown.stdout
    prog = "kubectl npc" if "kubectl-npc" in command[0] else "npc"
    usage = shown.stdout.splitlines()[0]  # the words around the name are click's
    assert f" {prog} " in f" {usage} " and ("kubectl" in usage) == (prog == "kubectl npc")


def test_subcommand_help_has_examples() -> None:
    for command in sorted(npc.cli.cli.commands):
        result = run(command, "--help")
        assert result.returncode == 0 and "Examples:" in result.stdout, command


#: Every command, with what it needs besides -f.
COMMANDS = {
    "validate": [],
    "compile": ["-t", "ir"],
    "apply": ["-t", "nft", "--dry-run"],
    "reach": [],
    "explain": [],
    "lint": [],
    "report": ["-o", "-"],
}


def test_every_command_is_listed() -> None:
    assert set(COMMANDS) == set(npc.cli.cli.commands)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_reports_alike(
    command: str, bad: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Invalid input: exit 2, nothing on stdout, compiler-style lines; a usage error: exit 2."""
    status = npc.cli.main([command, *COMMANDS[command], "-f", str(bad)])
    out, err = capsys.readouterr()
    assert (status, out) == (2, "")
    assert err.splitlines()[0].startswith(f'{bad}:4:9: error: metadata.name: invalid name "Web"')
    assert f'{bad}:8:3: error: spec.Ingress: unknown field "Ingress"' in err.splitlines()
    status = npc.cli.main([command, *COMMANDS[command], "-f", str(bad), "--no-such-option"])
    out, err = capsys.readouterr()
    assert (status, out) == (2, "") and "--no-such-option" in err


# -- validate ------------------------------------------------------------------------------------


def test_validate_ok_prints_one_summary_line(good: Path) -> None:
    result = run("validate", "-f", str(good))
    assert result.returncode == 0
    assert result.stdout == "valid: 1 policy in 1 namespace\n" and result.stderr == ""


def test_validate_counts_warnings(tmp_path: Path) -> None:
    path = tmp_path / "warn.yaml"
    path.write_text(
        POLICY.format(name="web") + "  policyTypes: [Egress]\n  ingress: [{}]\n", encoding="utf-8"
    )
    result = run("validate", "-f", str(path))
    assert result.returncode == 0
    assert result.stdout == "valid: 1 policy in 1 namespace; 1 warning\n"
    assert result.stderr.startswith(
        f"{path}:9:12: warning: spec.ingress: these ingress rules are ignored"
    )


def test_validate_invalid_exits_2_with_nothing_on_stdout(bad: Path) -> None:
    result = run("validate", "-f", str(bad))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        f'{bad}:4:9: error: metadata.name: invalid name "Web": a lowercase RFC 1123 subdomain must '
        "consist of lower case alphanumeric characters, '-' or '.', and must start and end with an "
        "alphanumeric character (e.g. 'example.com')",
        f'{bad}:8:3: error: spec.Ingress: unknown field "Ingress"',
        "  hint: did you mean `ingress`?",
    ]


def test_all_diagnostics_at_once_in_file_order(tmp_path: Path) -> None:
    first = tmp_path / "z.yaml"
    first.write_text(POLICY.format(name="a") + "  egres: []\n", encoding="utf-8")
    second = tmp_path / "a.yaml"
    second.write_text(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: Prod}\n---\nkind: [\n", encoding="utf-8"
    )
    result = run("validate", "-f", str(first), "-f", str(second))
    assert result.returncode == 2
    heads = [
        line.split(": ")[0] for line in result.stderr.splitlines() if not line.startswith("  ")
    ]
    assert heads == [f"{first}:8:3", f"{second}:3:18", f"{second}:6:1"]


def test_notes_for_skipped_kinds_only_with_verbose(tmp_path: Path) -> None:
    path = tmp_path / "mixed.yaml"
    path.write_text(
        POLICY.format(name="a") + "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
        encoding="utf-8",
    )
    quiet = run("validate", "-f", str(path))
    assert quiet.returncode == 0 and quiet.stderr == ""
    loud = run("-v", "validate", "-f", str(path))
    assert loud.returncode == 0
    assert loud.stderr == (
        f"{path}:10:7: info: kind: skipping ConfigMap (npc reads NetworkPolicy, Namespace, Pod, "
        "Service and Node)\n"
    )


def test_json_diagnostics(bad: Path) -> None:
    result = run("--diagnostics", "json", "validate", "-f", str(bad))
    assert result.returncode == 2 and result.stdout == ""
    records = [json.loads(line) for line in result.stderr.splitlines()]
    assert records[1] == {
        "code": "E201",
        "severity": "error",
        "file": str(bad),
        "line": 8,
        "column": 3,
        "path": "spec.Ingress",
        "message": 'unknown field "Ingress"',
        "hint": "did you mean `ingress`?",
    }
    assert records[0]["path"] == "metadata.name" and records[0]["code"] == "E208"


def test_colour_is_optional(bad: Path) -> None:
    plain = run("--color", "never", "validate", "-f", str(bad))
    assert "\x1b[" not in plain.stderr
    coloured = run("--color", "always", "validate", "-f", str(bad))
    assert "\x1b[31m\x1b[1merror:\x1b[0m" in coloured.stderr


# -- compile -------------------------------------------------------------------------------------


def test_compile_writes_atomically(tmp_path: Path, good: Path) -> None:
    out = tmp_path / "out" / "ir.yaml"
    out.parent.mkdir()
    result = run("compile", "--target", "ir", "-f", str(good), "-o", str(out))
    assert result.returncode == 0 and result.stdout == "" and result.stderr == ""
    to_stdout = run("compile", "--target", "ir", "-f", str(good))
    assert out.read_text(encoding="utf-8") == to_stdout.stdout and "web" in to_stdout.stdout
    assert sorted(p.name for p in out.parent.iterdir()) == ["ir.yaml"]  # no temp file left


def test_compile_failure_writes_nothing(tmp_path: Path, bad: Path) -> None:
    out = tmp_path / "ir.yaml"
    result = run("compile", "--target", "ir", "-f", str(bad), "-o", str(out))
    assert result.returncode == 2 and result.stdout == ""
    assert not out.exists() and list(tmp_path.iterdir()) == [bad]


def test_compile_failure_leaves_an_existing_file_untouched(tmp_path: Path, bad: Path) -> None:
    out = tmp_path / "ir.yaml"
    out.write_text("previous output\n", encoding="utf-8")
    os.utime(out, (1_000_000_000, 1_000_000_000))
    result = run("compile", "--target", "ir", "-f", str(bad), "-o", str(out))
    assert result.returncode == 2
    assert out.read_text(encoding="utf-8") == "previous output\n"
    assert out.stat().st_mtime == 1_000_000_000


def test_compile_keeps_the_mode_of_an_existing_file(tmp_path: Path, good: Path) -> None:
    out = tmp_path / "ir.yaml"
    out.write_text("old\n", encoding="utf-8")
    out.chmod(0o600)
    assert run("compile", "--target", "ir", "-f", str(good), "-o", str(out)).returncode == 0
    assert out.stat().st_mode & 0o777 == 0o600 and out.read_text(encoding="utf-8") != "old\n"


def test_compile_to_an_unwritable_place_is_a_clean_error(tmp_path: Path, good: Path) -> None:
    result = run("compile", "--target", "ir", "-f", str(good), "-o", str(tmp_path / "no" / "x"))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"npc: error: cannot write {tmp_path / 'no' / 'x'}: No such file or directory",
        "  hint: nothing was written",
    ]


def test_an_empty_output_path_is_a_usage_error(tmp_path: Path, good: Path) -> None:
    result = run("compile", "--target", "ir", "-f", str(good), "-o", "", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (2, "")
    assert any("--output" in e and "an empty path" in e for e in result.stderr.splitlines())
    assert list(tmp_path.iterdir()) == [good]


def test_unknown_target_lists_the_available_ones(good: Path) -> None:
    result = run("compile", "--target", "nope", "-f", str(good))
    assert result.returncode == 2 and result.stdout == ""
    available = ", ".join(targets.available())
    assert f"unknown target 'nope'; available: {available}" in result.stderr


def test_usage_errors_exit_2() -> None:
    result = run("validate")
    assert result.returncode == 2 and "-f" in result.stderr
    assert run("frobnicate").returncode == 2


# -- failures that are not the input's fault ------------------------------------------------------


def test_an_unexpected_exception_is_a_one_line_internal_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], good: Path
) -> None:
    def explode(*_: object) -> None:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(npc.cli.app, "load", explode)
    status = npc.cli.main(["validate", "-f", str(good)])
    captured = capsys.readouterr()
    assert status == 1 and captured.out == ""
    assert captured.err == "npc: internal error: RuntimeError: boom (please report this bug)\n"


def test_input_text_cannot_break_the_one_line_format(tmp_path: Path) -> None:
    path = tmp_path / "ns.yaml"
    path.write_text(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: |\n    a\tb\n", encoding="utf-8"
    )
    result = run("validate", "-f", str(path))
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    escaped = 'invalid name "a\\tb\\n": '
    assert line.startswith(f"{path}:4:9: error: metadata.name: {escaped}")


def test_the_library_error_carries_every_diagnostic(bad: Path) -> None:
    with pytest.raises(npc.ValidationError) as info:
        npc.load(npc.read_sources([str(bad)]))
    assert len(info.value.errors) == 2
    assert str(info.value).endswith("(and 1 more errors)")


# -- no traceback, whatever the input ------------------------------------------------------------

_GOLDEN_INPUTS = sorted(GOLDEN.glob("*/*.yaml"))
_YAMLISH = st.text(
    alphabet=st.sampled_from(
        [*"abc:-[]{}&*!|>'\"#%@`,?\t\n \\0123456789.~<=", "\ufeff", "\x85", "é"]
    ),
    max_size=120,
)


def _render(d: npc.Diagnostic) -> None:
    lines = d.render().split("\n")
    assert len(lines) <= 2 and all(line.isprintable() for line in lines), lines
    assert len(lines) == 1 or lines[1].startswith("  hint: ")


def _assert_only_npc_errors(sources: list[npc.Source]) -> None:
    try:
        bundle = npc.load(sources)
    except NpcError as exc:
        for d in exc.diagnostics:
            _render(d)
        return
    for d in bundle.diagnostics:
        _render(d)
    for policy in bundle.policies:
        bundle.locate(policy.origin)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_YAMLISH, st.sampled_from(["f.yaml", "f.json", "<stdin>"]))
def test_fuzz_random_yamlish_text(text: str, name: str) -> None:
    _assert_only_npc_errors([npc.Source(name, text)])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(_GOLDEN_INPUTS),
    st.lists(
        st.tuples(
            st.integers(min_value=0), st.sampled_from(["delete", "insert", "swap", "dup"]), _YAMLISH
        ),
        min_size=1,
        max_size=4,
    ),
    st.booleans(),
)
def test_fuzz_mutated_golden_inputs(
    path: Path, edits: list[tuple[int, str, str]], as_json: bool
) -> None:
    text = path.read_text(encoding="utf-8")
    if as_json:
        with contextlib.suppress(yaml.YAMLError, TypeError, ValueError):
            text = "\n".join(json.dumps(d) for d in yaml.safe_load_all(text))
    lines = text.splitlines(keepends=True) or [""]
    for position, action, fragment in edits:
        i = position % len(lines)
        if action == "delete" and len(lines) > 1:
            del lines[i]
        elif action == "insert":
            cut = position % (len(lines[i]) + 1)
            lines[i] = lines[i][:cut] + fragment + lines[i][cut:]
        elif action == "swap":
            j = (position // 7) % len(lines)
            lines[i], lines[j] = lines[j], lines[i]
        else:
            lines.insert(i, lines[i])
    _assert_only_npc_errors([npc.Source("f.json" if as_json else "f.yaml", "".join(lines))])


def test_fuzz_random_structures_through_the_decoder() -> None:
    # Well-formed YAML of the wrong shapes at every level of a policy and a pod.
    rng = random.Random(2)
    values = [
        "null",
        "1",
        "-1",
        "1.5",
        "yes",
        "x",
        "[]",
        "{}",
        "[1, {a: b}]",
        "{a: [1]}",
        '""',
        "~",
    ]
    fields = [
        "metadata",
        "metadata.name",
        "metadata.labels",
        "metadata.labels.a",
        "spec",
        "spec.podSelector",
        "spec.podSelector.matchLabels",
        "spec.podSelector.matchExpressions",
        "spec.ingress",
        "spec.ingress.0",
        "spec.ingress.0.from",
        "spec.ingress.0.from.0.ipBlock",
        "spec.ingress.0.from.0.ipBlock.except",
        "spec.ingress.0.ports.0.port",
        "spec.egress.0.to.0",
        "spec.policyTypes",
        "spec.policyTypes.0",
        "status",
        "spec.containers.0.ports.0",
    ]
    for _ in range(400):
        data: dict[str, object] = {
            "apiVersion": rng.choice(["networking.k8s.io/v1", "v1"]),
            "kind": rng.choice(["NetworkPolicy", "Pod", "Namespace", "Service", "Node"]),
        }
        for _ in range(rng.randint(1, 4)):
            parts = rng.choice(fields).split(".")
            node: object = data
            for part in parts[:-1]:
                assert isinstance(node, dict)
                node = node.setdefault(part, {})  # type: ignore[assignment]
                if not isinstance(node, dict):
                    break
            else:
                assert isinstance(node, dict)
                node[parts[-1]] = rng.choice(values)
        text = (
            json.dumps(data)
            .replace('"[', "[")
            .replace(']"', "]")
            .replace('"{', "{")
            .replace('}"', "}")
        )
        _assert_only_npc_errors([npc.Source("f.yaml", text)])
