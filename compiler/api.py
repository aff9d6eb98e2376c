"""The library API: :func:`load` and :func:`compile`. No file I/O happens here.

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

from npc.backends import get_backend
from npc.backends.base import BackendOptions
from npc.capabilities import check
from npc.errors import Code, Diagnostic, NpcError, Severity, UnsupportedError
from npc.frontend import Bundle, load
from npc.passes import optimize
from npc.source import Source

__all__ = ["Artifact", "compile", "load"]

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
        raise UnsupportedError(
            Diagnostic(
                Code.SNAPSHOT_REQUIRED,
                Severity.ERROR,
                f"target {target} resolves pod selectors to addresses and needs a cluster "
                f"snapshot, but the input has no Namespace or Pod objects",
                hint="add one: `kubectl get ns,pods -A -o yaml > cluster.yaml`, then "
                "`-f cluster.yaml`",
            )
        )
    try:
        check(bundle.policies, backend.capabilities, target)
        run_passes = optimize_ir and backend.optimizes(opts)
        policies = optimize(bundle.policies) if run_passes else bundle.policies
        log.debug("compiling %d policies for %s", len(policies), target)
        emitted = backend.emit(policies, bundle.snapshot, opts)
    except NpcError as exc:
        raise type(exc)(_located(bundle, exc.diagnostics)) from None
    diagnostics = bundle.diagnostics + _located(bundle, emitted.diagnostics)
    return Artifact(target, emitted.text, diagnostics, backend.suffix)


def _located(bundle: Bundle, diagnostics: Iterable[Diagnostic]) -> tuple[Diagnostic, ...]:
    """Give file positions to diagnostics that only know their origin (backends' ones)."""
    return tuple(
        replace(d, location=bundle.locate(d.origin))
        if d.location is None and d.origin is not None
        else d
        for d in diagnostics
    )
