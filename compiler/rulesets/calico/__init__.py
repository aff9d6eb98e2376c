"""Calico: the selector language and a policy evaluator with Calico's semantics.

:mod:`.selector` parses and evaluates Calico selectors; :mod:`.model` reads
``projectcalico.org/v3`` policy objects back from YAML (npc's output or what ``calicoctl get
-o yaml`` prints); :mod:`.evaluate` decides flows over a cluster snapshot the way Calico
(Felix) would; :mod:`.read` is the judge verify loads (:func:`read`, positions included).
The ``calico`` backend shares only :mod:`.syntax` (quoting) with them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from npc.rulesets.calico.read import CalicoJudge, read

__all__ = ["CalicoJudge", "read"]


def __getattr__(name: str) -> Any:
    # The judge is imported on first use (PEP 562): the calico backend imports
    # :mod:`.syntax` from this package, and must not pay for the selector grammar with it.
    # Importing the submodule `read` binds that name to the module here; the function is
    # bound over it, as the eager `from ... import read` did.
    if name in __all__:
        module = importlib.import_module("npc.rulesets.calico.read")
        globals().update((n, getattr(module, n)) for n in __all__)
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
