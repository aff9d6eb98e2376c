"""Golden tests: ``golden/<case>/input.yaml`` (+ ``cluster.yaml``) against ``expected.*``.

For every registered target a case holds ``expected.<suffix>`` (the output) or
``expected.<suffix>.error`` (the diagnostics of a refusal). Targets that need a snapshot are
skipped for cases without ``cluster.yaml``. A missing expectation fails, and so does any file
the runner does not know (an orphan). Expectations change only with ``--update-golden``; on a
mismatch the output is written to ``actual.<suffix>`` for review.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import npc
from npc.errors import NpcError
from npc.targets import available, get_backend

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
INPUTS = ("input.yaml", "cluster.yaml")
NOTES = ("README.md",)


def _cases() -> list[Path]:
    return sorted(p for p in GOLDEN.iterdir() if p.is_dir() and (p / "input.yaml").exists())


def _targets(case: Path) -> list[str]:
    has_snapshot = (case / "cluster.yaml").exists()
    return [t for t in available() if has_snapshot or not get_backend(t).needs_snapshot]


def _render(case: Path, target: str) -> tuple[str, bool]:
    """(text, is_error) for one case and target."""
    sources = [
        npc.Source(name, (case / name).read_text(encoding="utf-8"))
        for name in INPUTS
        if (case / name).exists()
    ]
    try:
        artifact = npc.compile(sources, target)
    except NpcError as exc:
        return "\n".join(d.render() for d in exc.diagnostics) + "\n", True
    return artifact.text, False


PARAMS = [(c, t) for c in _cases() for t in _targets(c)]


@pytest.mark.parametrize(("case", "target"), PARAMS, ids=[f"{c.name}-{t}" for c, t in PARAMS])
def test_golden(case: Path, target: str, update_golden: bool) -> None:
    suffix = get_backend(target).suffix
    text, is_error = _render(case, target)
    expected = case / (f"expected.{suffix}.error" if is_error else f"expected.{suffix}")
    other = case / (f"expected.{suffix}" if is_error else f"expected.{suffix}.error")
    actual = case / f"actual.{suffix}"
    if update_golden:
        expected.write_text(text, encoding="utf-8")
        other.unlink(missing_ok=True)
        actual.unlink(missing_ok=True)
        return
    if not expected.exists():
        actual.write_text(text, encoding="utf-8")
        state = "was refused" if is_error else "produced output"
        pytest.fail(
            f"{case.name}: no {expected.name} ({target} {state}); see {actual}, then "
            "run pytest --update-golden and review the diff"
        )
    want = expected.read_text(encoding="utf-8")
    if text != want:
        actual.write_text(text, encoding="utf-8")
    else:
        actual.unlink(missing_ok=True)
    assert text == want, f"{case.name}: {target} output differs from {expected.name}; see {actual}"


def test_no_orphans() -> None:
    """Every file in a case is an input, a note, or an expectation of a known target."""
    suffixes = {get_backend(t).suffix for t in available()}
    known = set(INPUTS) | set(NOTES)
    for s in suffixes:
        known |= {f"expected.{s}", f"expected.{s}.error", f"actual.{s}"}
    orphans = [
        str(f.relative_to(GOLDEN))
        for case in GOLDEN.iterdir()
        if case.is_dir()
        for f in case.iterdir()
        if f.name not in known
    ]
    assert not orphans, f"orphan files in golden/: {orphans}"
    empty = [c.name for c in GOLDEN.iterdir() if c.is_dir() and not (c / "input.yaml").exists()]
    assert not empty, f"golden cases without input.yaml: {empty}"


def test_every_case_has_every_expectation() -> None:
    missing = []
    for case in _cases():
        for target in _targets(case):
            suffix = get_backend(target).suffix
            if not (
                (case / f"expected.{suffix}").exists()
                or (case / f"expected.{suffix}.error").exists()
            ):
                missing.append(f"{case.name}: expected.{suffix}")
    assert not missing, f"missing golden expectations: {missing}"
