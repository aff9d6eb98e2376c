"""THE registry of targets: name -> emitter, ruleset reader, settings, whether it applies.

This table is the only place target names appear; everything else looks a target up here.
Modules are imported on first use, so ``npc validate`` never pays for jinja2 or a target it
does not use. A target has two homes with one line naming both: its emitter in
``npc.backends.<target>`` and its judge (the reader that turns a ruleset of that target,
whoever wrote it, into a model that decides flows) in ``npc.rulesets.<target>``. The settings
targets take (``--table``, ``--calico-scope``...) are declared here too, so the command line
offers them without importing any backend.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from npc.errors import Code, Diagnostic, Severity, UnsupportedError

if TYPE_CHECKING:
    from npc.backends.base import Backend

__all__ = [
    "REGISTRY",
    "TARGET_SETTINGS",
    "Target",
    "TargetSetting",
    "available",
    "check_can_apply",
    "get_backend",
    "get_target",
    "settings_for",
]


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


@dataclass(frozen=True, slots=True)
class Target:
    """One target: where its emitter and its judge live, what it takes, what it can do.

    ``emitter`` is ``"module:Class"`` of its :class:`~npc.backends.base.Backend`; ``reader``
    the module of its judge under ``npc.rulesets`` (None while it has none); ``settings`` the
    names of the :data:`TARGET_SETTINGS` it takes (exactly its options type's fields: a test
    holds the two together); ``applies``: ``npc apply`` can load its output into an
    enforcement point this host reaches; ``live``: the commands whose outputs, together, are
    the ruleset this host holds (``npc verify --live``)."""

    name: str
    emitter: str
    reader: str | None = None
    settings: tuple[str, ...] = ()
    applies: bool = False
    live: tuple[tuple[str, ...], ...] = ()


#: Every target setting, in the order ``--help`` lists them.
TARGET_SETTINGS = (
    TargetSetting("table", "nft: name of the table (default npc).", "NAME"),
    TargetSetting("node", "Only the pods on this node (a per-node agent).", "NAME"),
    TargetSetting(
        "family",
        "iptables: address families to write (default both).",
        choices=("4", "6", "both"),
    ),
    TargetSetting(
        "sets",
        "iptables: match peers with ipsets (default) or one rule per address block.",
        choices=("ipset", "none"),
    ),
    TargetSetting(
        "variant",
        "iptables: tools npc apply runs: iptables-legacy-*, iptables-nft-*, or whatever "
        "iptables-restore is here (auto, the default).",
        choices=("auto", "legacy", "nft"),
    ),
    TargetSetting(
        "region", "alibaba: the ECS region of the groups (default cn-hangzhou).", "ID"
    ),
    TargetSetting(
        "format",
        "alibaba: JSON data (default), or the equivalent aliyun and kubectl commands.",
        choices=("json", "aliyun-cli"),
    ),
    TargetSetting(
        "unsupported",
        "alibaba: what cannot be expressed (SCTP) is an error (default), or deny drops those "
        "allow entries with a warning (stricter, never looser).",
        choices=("error", "deny"),
    ),
    TargetSetting(
        "same_node",
        "alibaba: pods an isolating policy selects that share a node with other pods are an "
        "error (default: ECS does not filter their traffic), or trust leaves that traffic to "
        "another enforcer (Terway's policy agent) with a warning.",
        choices=("error", "trust"),
    ),
    TargetSetting(
        "calico_scope",
        "calico: GlobalNetworkPolicy (default) or Calico's namespaced NetworkPolicy.",
        choices=("global", "namespaced"),
    ),
)

#: target name -> :class:`Target`
REGISTRY = MappingProxyType(
    {
        t.name: t
        for t in (
            Target(
                "alibaba",
                "npc.backends.alibaba.backend:AlibabaBackend",
                reader="npc.rulesets.alibaba",
                settings=("region", "format", "unsupported", "same_node"),
            ),
            Target(
                "calico",
                "npc.backends.calico.backend:CalicoBackend",
                reader="npc.rulesets.calico",
                settings=("calico_scope",),
            ),
            Target("ir", "npc.backends.ir.backend:IrBackend"),
            Target(
                "iptables",
                "npc.backends.iptables.backend:IptablesBackend",
                reader="npc.rulesets.iptables",
                settings=("family", "sets", "node", "variant"),
                applies=True,
                live=(("iptables-save",), ("ip6tables-save",), ("ipset", "save")),
            ),
            Target(
                "nft",
                "npc.backends.nft.backend:NftablesBackend",
                reader="npc.rulesets.nft",
                settings=("table", "node"),
                applies=True,
                live=(("nft", "list", "ruleset"),),
            ),
        )
    }
)


def available() -> tuple[str, ...]:
    """Target names, sorted."""
    return tuple(sorted(REGISTRY))


def get_target(name: str) -> Target:
    """The registry entry of target ``name``; an unknown name lists the available ones."""
    target = REGISTRY.get(name)
    if target is None:
        raise UnsupportedError(
            Diagnostic(
                Code.UNKNOWN_TARGET,
                Severity.ERROR,
                f"unknown target {name!r}",
                hint=f"available targets: {', '.join(available())}",
            )
        )
    return target


def settings_for(name: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The ``settings`` (names of :data:`TARGET_SETTINGS`) that target ``name`` declares,
    the others left out: one mapping of settings serves several targets."""
    declared = get_target(name).settings
    return {k: v for k, v in settings.items() if k in declared}


def get_backend(name: str) -> Backend:
    """The backend (emitter) of target ``name``, imported on first use."""
    module_name, _, class_name = get_target(name).emitter.partition(":")
    backend_cls: type[Backend] = getattr(importlib.import_module(module_name), class_name)
    return backend_cls()


def check_can_apply(name: str) -> None:
    """Raise :class:`~npc.errors.UnsupportedError` unless ``npc apply`` can load target
    ``name`` (so a command can refuse before compiling anything)."""
    if not get_target(name).applies:
        raise UnsupportedError(
            Diagnostic(
                Code.UNSUPPORTED,
                Severity.ERROR,
                f"target {name} cannot be applied by npc",
                hint=f"write it with `npc compile --target {name} -o FILE` and load "
                "it with the target's own tools",
            )
        )
