"""Backends: one module per target, found through this registry.

The registry is the only place target names appear; modules are imported on first use, so
``npc validate`` never pays for jinja2 or a target it does not use. The settings targets take
(``--table``, ``--calico-scope``...) are declared here too, so the command line offers them
without importing any backend.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

from npc.errors import Code, Diagnostic, Severity, UnsupportedError

if TYPE_CHECKING:
    from npc.backends.base import Backend

__all__ = ["REGISTRY", "TARGET_SETTINGS", "TargetSetting", "available", "get_backend"]

#: target name -> "module:Class"
REGISTRY = MappingProxyType(
    {
        "calico": "npc.backends.calico:CalicoBackend",
        "ir": "npc.backends.irdump:IrBackend",
        "nft": "npc.backends.nftables:NftablesBackend",
    }
)


@dataclass(frozen=True, slots=True)
class TargetSetting:
    """A setting that configures some targets: a field of their options type, offered by the
    CLI as ``--<name with dashes>``. A backend whose options lack the field refuses it
    (:meth:`~npc.backends.base.Backend.make_options`), so a flag is never silently ignored."""

    name: str
    help: str
    metavar: str = "VALUE"
    #: The values allowed, when they are a fixed few (``--help`` lists them instead of the
    #: metavar; the options type checks them too).
    choices: tuple[str, ...] = ()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


#: Every target setting, in the order ``--help`` lists them.
TARGET_SETTINGS = (
    TargetSetting("table", "nft: name of the table (default npc).", "NAME"),
    TargetSetting("node", "Only the pods on this node (a per-node agent).", "NAME"),
    TargetSetting(
        "calico_scope",
        "calico: GlobalNetworkPolicy (default) or Calico's namespaced NetworkPolicy.",
        choices=("global", "namespaced"),
    ),
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
