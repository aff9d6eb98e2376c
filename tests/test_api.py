"""The library API: compile's contract (no I/O, located diagnostics, options), its exports,
and that it leaves logging alone."""

from __future__ import annotations

import builtins
import os
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any

import pytest

import npc
import npc.targets
from npc.errors import Code, NpcError, UnsupportedError
from tests.helpers import source
from tests.settings import SHARED_NODES, for_target

REFUSED_BY_CALICO = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: p
  namespace: a
spec:
  podSelector:
    matchLabels:
      projectcalico.org/namespace: b
"""


def test_backend_refusals_carry_file_positions() -> None:
    with pytest.raises(UnsupportedError) as info:
        npc.compile([source(REFUSED_BY_CALICO, "refused.yaml")], "calico")
    (diag,) = info.value.errors
    assert diag.code is Code.UNSUPPORTED
    assert diag.location is not None
    assert (diag.location.file, diag.location.line) == ("refused.yaml", 8)
    assert diag.render().startswith("refused.yaml:8:5: error: spec.podSelector: ")


def test_unknown_option_is_an_error() -> None:
    with pytest.raises(UnsupportedError) as info:
        npc.compile([source(REFUSED_BY_CALICO)], "ir", {"table": "x"})
    assert "--table does not apply to target ir" in info.value.errors[0].message


def test_unknown_target_lists_the_available_ones() -> None:
    with pytest.raises(UnsupportedError) as info:
        npc.compile([source(REFUSED_BY_CALICO)], "nope")
    assert info.value.errors[0].code is Code.UNKNOWN_TARGET
    assert "calico" in (info.value.errors[0].hint or "")


# -- the library's contract: no file I/O in compile, no logging configuration -----------------

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "testing"


def _package_dirs() -> tuple[str, ...]:
    dirs = {Path(p) for mod in (npc, npc.backends, npc.grammar) for p in mod.__path__}
    return tuple(str(d) for d in dirs | {d.resolve() for d in dirs})


@pytest.mark.parametrize("target", npc.targets.available())
def test_compile_does_no_file_io(target: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the package's own data (templates, grammars) is read; nothing is written and no
    process is started (``apply`` is the CLI's business)."""
    bundle = npc.load(npc.read_sources([str(EXAMPLE)]))
    opened: list[str] = []
    real_open, real_os_open = builtins.open, os.open

    def watched_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        opened.append(f"{file} ({mode})")
        return real_open(file, mode, *args, **kwargs)

    def watched_os_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> Any:
        opened.append(f"{path} (flags {flags})")
        return real_os_open(path, flags, *args, **kwargs)

    def no_process(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"npc.compile started a process: {args}")

    monkeypatch.setattr(builtins, "open", watched_open)
    monkeypatch.setattr(os, "open", watched_os_open)
    monkeypatch.setattr(subprocess, "Popen", no_process)
    artifact = npc.compile(bundle, target, for_target(target))
    assert artifact.text
    outside = [
        o for o in opened if not (o.startswith(_package_dirs()) and o.endswith(("(r)", "(rb)")))
    ]
    assert not outside, f"npc.compile touched files: {outside}"


def test_the_library_configures_no_logging() -> None:
    """Importing and using npc adds no handler anywhere and sets no level (a fresh process,
    since pytest installs handlers of its own)."""
    script = f"""
import logging, npc
bundle = npc.load(npc.read_sources([{str(EXAMPLE)!r}]))
for target in npc.targets.available():
    npc.compile(bundle, target, npc.targets.settings_for(target, {SHARED_NODES!r}))
ours = [logging.getLogger(n) for n in logging.root.manager.loggerDict if n.split(".")[0] == "npc"]
print(len(ours), [(l.name, l.handlers, l.level) for l in ours if l.handlers or l.level])
root = logging.getLogger()
print(root.handlers, logging.getLevelName(root.level))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout.splitlines() == ["1 []", "[] WARNING"]


def test_public_names_are_exported_and_typed() -> None:
    """``npc.__all__`` names only what exists, and is enough to use the library: load,
    compile, read diagnostics (with their stable codes and locations), catch every error."""
    assert sorted(npc.__all__) == sorted(set(npc.__all__))
    for name in npc.__all__:
        assert hasattr(npc, name), name
    for needed in ("load", "compile", "read_sources", "Source", "Bundle", "Artifact"):
        assert needed in npc.__all__
    for needed in ("Diagnostic", "Severity", "Code", "Location", "NpcError"):
        assert needed in npc.__all__
    errors = {n for n in npc.__all__ if isinstance(getattr(npc, n), type)}
    raised = {c.__name__ for c in NpcError.__subclasses__()} - {"OutputError"}
    assert raised <= errors
    package = Path(npc.__file__).parent
    assert (package / "py.typed").exists()
    for func in (npc.load, npc.compile, npc.read_sources):
        hints = typing.get_type_hints(func)
        assert "return" in hints and len(hints) > 1, func
