"""Backends: one module per target, found through this registry.

The registry is the only place target names appear; modules are imported on first use, so
``npc validate`` never pays for jinja2 or a target it does not use.
"""

from __future__ import annotations

import importlib
from types import MappingProxyType
from typing import TYPE_CHECKING

from npc.errors import Code, Diagnostic, Severity, UnsupportedError

if TYPE_CHECKING:
    from npc.backends.base import Backend

__all__ = ["REGISTRY", "available", "get_backend"]

#: target name -> "module:Class"
REGISTRY = MappingProxyType(
    {
        "calico": "npc.backends.calico:CalicoBackend",
        "ir": "npc.backends.irdump:IrBackend",
        "nft": "npc.backends.nftables:NftablesBackend",
    }
)


def available() -> tuple[str, ...]:
    """Target names, sorted."""
    return tuple(sorted(REGISTRY))


def get_backend(name: str) -> Backend:
    """The backend for target ``name``; an unknown name lists the available ones."""
    spec = REGISTRY.get(name)
    if spec is None:
        raise UnsupportedError(
            Diagnostic(
                Code.UNKNOWN_TARGET,
                Severity.ERROR,
                f"unknown target {name!r}",
                hint=f"available targets: {', '.join(available())}",
            )
        )
    module_name, _, class_name = spec.partition(":")
    backend_cls: type[Backend] = getattr(importlib.import_module(module_name), class_name)
    return backend_cls()
