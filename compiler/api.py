"""The library API: :func:`load`, :func:`compile` and :func:`apply`.

:func:`load` and :func:`compile` do no file I/O; :func:`apply` loads a compiled ruleset into
the enforcement point this process reaches (the kernel of its network namespace).

>>> import npc
>>> bundle = npc.load([npc.Source("p.yaml", text)])          # doctest: +SKIP
>>> artifact = npc.compile(bundle, target="ir")               # doctest: +SKIP
>>> print(artifact.text)                                      # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from npc.backends.base import Applied, BackendOptions
from npc.capabilities import check, check_cluster
from npc.errors import Diagnostic, NpcError, UnsupportedError, snapshot_required
from npc.frontend import Bundle, load
from npc.frontend.source import Source
from npc.passes import optimize
from npc.targets import check_can_apply, get_backend

__all__ = ["Applied", "Artifact", "apply", "check_can_apply", "compile", "load"]

log = logging.getLogger("npc")


@dataclass(frozen=True, slots=True)
class Artifact:
    """What :func:`compile` returns: the output text, its target and all diagnostics."""

    target: str
    text: str
    diagnostics: tuple[Diagnostic, ...] = ()
    suffix: str = "txt"


def compile(
    source: Bundle | Iterable[Source],
    target: str,
    options: BackendOptions | Mapping[str, Any] | None = None,
    *,
    optimize_ir: bool = True,
) -> Artifact:
    """Compile policies for ``target``.

    ``source`` is a loaded :class:`Bundle` or sources to load. ``options`` is the backend's
    options object, or a mapping of option names to values (unknown names are an error).
    Raises :class:`~npc.errors.NpcError` subclasses; never writes files.
    """
    bundle = source if isinstance(source, Bundle) else load(source)
    backend = get_backend(target)
    opts = options if isinstance(options, BackendOptions) else backend.make_options(options or {})
    if backend.needs_snapshot and bundle.snapshot is None:
        raise UnsupportedError(snapshot_required(_needs_snapshot(target)))
    try:
        check(bundle.policies, backend.capabilities, target)
        check_cluster(bundle.cluster_policies, backend.capabilities, target)
        run_passes = optimize_ir and backend.optimizes(opts)
        policies = optimize(bundle.policies) if run_passes else bundle.policies
        log.debug("compiling %d policies for %s", len(policies), target)
        emitted = backend.emit_tiered(policies, bundle.cluster_policies, bundle.snapshot, opts)
    except NpcError as exc:
        raise type(exc)(_located(bundle, exc.diagnostics)) from None
    diagnostics = bundle.diagnostics + _located(bundle, emitted.diagnostics)
    return Artifact(target, emitted.text, diagnostics, backend.suffix)


def apply(
    source: Bundle | Iterable[Source],
    target: str,
    options: BackendOptions | Mapping[str, Any] | None = None,
    *,
    dry_run: bool = False,
    optimize_ir: bool = True,
) -> tuple[Artifact, Applied]:
    """Compile policies for ``target`` and load the result into the local enforcement point,
    atomically: when loading fails, the previous ruleset stays in force. ``dry_run`` only asks
    the enforcement point to check it.

    Raises :class:`~npc.errors.UnsupportedError` (before compiling) for a target npc cannot
    load, :class:`~npc.errors.BackendError` when the enforcement point refuses, and what
    :func:`compile` raises. Returns the artifact (with its warnings) and what was done."""
    check_can_apply(target)
    backend = get_backend(target)
    opts = options if isinstance(options, BackendOptions) else backend.make_options(options or {})
    artifact = compile(source, target, opts, optimize_ir=optimize_ir)
    return artifact, backend.apply(artifact.text, opts, dry_run=dry_run)


def _needs_snapshot(target: str) -> str:
    return f"target {target} (it resolves pod selectors to addresses)"


def _located(bundle: Bundle, diagnostics: Iterable[Diagnostic]) -> tuple[Diagnostic, ...]:
    """Give file positions to diagnostics that only know their origin (backends' ones)."""
    return tuple(
        replace(d, location=bundle.locate(d.origin))
        if d.location is None and d.origin is not None
        else d
        for d in diagnostics
    )
