"""Pausing CPython's cyclic garbage collector around work that builds large acyclic data.

Every few hundred allocations the collector may run, and its oldest generation traverses
every object still alive: on a 10,000-pod cluster that is millions of objects (the loaded
snapshot and policies), traversed again and again while the frontend builds them and while
a backend builds its ruleset, for data without cycles (reference counting frees it). That
doubled the load time and cost a backend a third of its time. Mercurial's ``util.nogc`` does
the same for the same reason.

Pausing alone leaves the bill for later: every object built during the pause is still in
the youngest generation when the collector resumes, so its next collections traverse them
all (once young, once middle-aged: a quarter of a second after loading that cluster). A
process that owns its heap (the ``npc`` command, see :func:`process_owned`) therefore also
freezes what the block built (:func:`gc.freeze`): frozen objects are never traversed again,
and reference counting still frees them. A library caller's heap is not pinned (freezing
would also pin that caller's own objects, and cycles among them would never be collected):
there the block's objects are frozen and at once unfrozen, which moves them into the oldest
generation, spared the young collections' traversals (a full collection still sees them).
"""

from __future__ import annotations

import contextlib
import contextvars
import gc
from collections.abc import Iterator

__all__ = ["paused", "process_owned"]

_FREEZE: contextvars.ContextVar[bool] = contextvars.ContextVar("npc_gc_freeze", default=False)


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """Disable the cyclic collector inside the block; the previous state is restored, also
    on error (nested uses are fine: only the outermost one turns it back on). What exists
    when the outermost block ends moves to the oldest generation, or inside
    :func:`process_owned` is frozen."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.freeze()
            if not _FREEZE.get():
                gc.unfreeze()  # into the oldest generation: no young traversal of it all
            gc.enable()


@contextlib.contextmanager
def process_owned() -> Iterator[None]:
    """Mark the block as run by a process that owns its whole heap and ends soon after (the
    command line): the data :func:`paused` blocks build is frozen rather than traversed
    again."""
    token = _FREEZE.set(True)
    try:
        yield
    finally:
        _FREEZE.reset(token)
