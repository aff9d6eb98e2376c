"""Golden tests: ``golden/<case>/input.yaml`` (+ ``cluster.yaml``) against ``expected.*``.

For every registered target a case holds ``expected.<suffix>`` (the output) or
``expected.<suffix>.error`` (the diagnostics of a refusal); a target whose output is several
files (iptables: the rules and ``.ipset``) has one ``expected.<suffix><companion>`` per
further file. Targets that need a snapshot are
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
#: Options per target. The golden clusters put isolated pods on shared nodes, which the
#: alibaba target refuses by default (ECS does not filter same-node pod traffic); the golden
#: files show its rules, with that traffic left to another enforcer.
OPTIONS: dict[str, dict[str, str]] = {"alibaba": {"same_node": "trust"}}


def _cases() -> list[Path]:
    return sorted(p for p in GOLDEN.iterdir() if p.is_dir() and (p / "input.yaml").exists())


def _targets(case: Path) -> list[str]:
    has_snapshot = (case / "cluster.yaml").exists()
    return [t for t in available() if has_snapshot or not get_backend(t).needs_snapshot]


def _render(case: Path, target: str) -> tuple[dict[str, str], bool]:
    """({file suffix: text}, is_error) for one case and target (suffix "" for the main file,
    and for the diagnostics of a refusal)."""
    sources = [
        npc.Source(name, (case / name).read_text(encoding="utf-8"))
        for name in INPUTS
        if (case / name).exists()
    ]
    try:
        artifact = npc.compile(sources, target, OPTIONS.get(target))
    except NpcError as exc:
        return {"": "\n".join(d.render() for d in exc.diagnostics) + "\n"}, True
    return dict(artifact.files) or {"": artifact.text}, False


PARAMS = [(c, t) for c in _cases() for t in _targets(c)]


@pytest.mark.parametrize(("case", "target"), PARAMS, ids=[f"{c.name}-{t}" for c, t in PARAMS])
def test_golden(case: Path, target: str, update_golden: bool) -> None:
    backend = get_backend(target)
    suffix = backend.suffix
    files, is_error = _render(case, target)
    assert is_error or set(files) == {"", *backend.companions}
    outputs = [f"expected.{suffix}{part}" for part in ("", *backend.companions)]
    error = f"expected.{suffix}.error"
    if update_golden:
        for name in (*outputs, error, *(n.replace("expected.", "actual.") for n in outputs)):
            (case / name).unlink(missing_ok=True)
        for part, text in files.items():
            name = error if is_error else f"expected.{suffix}{part}"
            (case / name).write_text(text, encoding="utf-8")
        return
    for part, text in files.items():
        expected = case / (error if is_error else f"expected.{suffix}{part}")
        actual = case / f"actual.{suffix}{part}"
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
        assert text == want, (
            f"{case.name}: {target} output differs from {expected.name}; see {actual}"
        )


def test_no_orphans() -> None:
    """Every file in a case is an input, a note, or an expectation of a known target."""
    known = set(INPUTS) | set(NOTES)
    for t in available():
        s, companions = get_backend(t).suffix, get_backend(t).companions
        known |= {f"expected.{s}", f"expected.{s}.error", f"actual.{s}"}
        known |= {f"{kind}.{s}{c}" for c in companions for kind in ("expected", "actual")}
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
