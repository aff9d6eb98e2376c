"""Pausing CPython's cyclic garbage collector around work that builds large acyclic data.

Every few hundred allocations the collector may run, and its oldest generation traverses
every object still alive: on a 10,000-pod cluster that is millions of objects (the loaded
snapshot and policies), traversed again and again while the frontend builds them and while
a backend builds its ruleset, for data without cycles (reference counting frees it). That
doubled the load time and cost a backend a third of its time. Mercurial's ``util.nogc`` does
the same for the same reason.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["paused"]


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """Disable the cyclic collector inside the block; the previous state is restored, also
    on error (nested uses are fine: only the outermost one turns it back on)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
