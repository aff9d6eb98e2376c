"""The contract every backend fulfils.

A backend takes IR (and, where it must resolve selectors to addresses, the cluster
snapshot) and returns text. It declares its capabilities, whether it needs a snapshot, and a
frozen options type; it never reads files or the frontend's data.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from npc.capabilities import Capability
from npc.errors import Code, Diagnostic, Severity, UnsupportedError
from npc.ir import PolicySet
from npc.snapshot import Snapshot
from npc.tiers import ClusterPolicySet

__all__ = [
    "Applied",
    "Backend",
    "BackendOptions",
    "Counts",
    "Emitted",
    "companion_marker",
    "split_bundle",
]

OptionsT = TypeVar("OptionsT", bound="BackendOptions")


@dataclass(frozen=True, slots=True)
class BackendOptions:
    """Options common to all targets (none yet); each backend subclasses this."""


@dataclass(frozen=True, slots=True)
class Emitted:
    """A backend's output: the text and any (cosmetic) warnings.

    A target whose output is several files (iptables: the rules and their ipsets) also
    gives ``files``: ``(suffix, text)`` pairs, the first with suffix ``""`` (written to the
    ``-o`` path itself), the others written next to it as ``PATH<suffix>``; ``text`` then
    holds them all, each further file after its :func:`companion_marker` line (what stdout
    shows, and what :meth:`Backend.apply` takes)."""

    text: str
    diagnostics: tuple[Diagnostic, ...] = ()
    files: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of_files(
        cls, files: tuple[tuple[str, str], ...], diagnostics: tuple[Diagnostic, ...] = ()
    ) -> Emitted:
        """An output of several files (the first one's suffix is ``""``)."""
        (first, main), *rest = files
        if first != "":
            raise ValueError("the first file of an output is the -o path itself (suffix '')")
        text = main + "".join(f"{companion_marker(s)}\n{t}" for s, t in rest)
        return cls(text, diagnostics, files)


def companion_marker(suffix: str) -> str:
    """The line that starts file ``PATH<suffix>`` in a many-file output shown as one text."""
    return f"#### npc: what follows is PATH{suffix} (npc compile -o PATH writes it there) ####"


def split_bundle(text: str, suffixes: tuple[str, ...]) -> dict[str, str]:
    """The files of a many-file output shown as one text (:meth:`Emitted.of_files`), by
    suffix; a companion that is missing from ``text`` is an empty string."""
    files: dict[str, str] = {}
    rest = text
    for suffix in reversed(suffixes):
        head, found, tail = rest.partition(companion_marker(suffix) + "\n")
        files[suffix] = tail if found else ""
        rest = head if found else rest
    files[""] = rest
    return files


@dataclass(frozen=True, slots=True)
class Counts:
    """How much an output holds, counted the target's own way (for ``npc compare``):
    ``objects`` are the named things the enforcement point keeps (nft tables, chains, sets
    and maps; iptables chains and ipsets; Calico policies and tiers; security groups),
    ``rules`` the ordered entries inside them; ``objects_are`` and ``rules_are`` say what
    was counted, in words."""

    objects: int
    rules: int
    objects_are: str
    rules_are: str = "rules"


@dataclass(frozen=True, slots=True)
class Applied:
    """What :meth:`Backend.apply` did, in one line for the user."""

    summary: str


class Backend(abc.ABC):
    """Base class of all backends; instances are stateless."""

    #: Target name, as in ``--target``.
    name: ClassVar[str]
    #: One line for ``npc targets`` and ``--help``.
    description: ClassVar[str]
    #: What this target can express.
    capabilities: ClassVar[frozenset[Capability]]
    #: True when selectors must be resolved against a cluster snapshot.
    needs_snapshot: ClassVar[bool] = False
    #: File suffix for ``-o`` defaults and golden files (``nft``, ``calico.yaml``...).
    suffix: ClassVar[str] = "txt"
    #: Suffixes of the further files the output has besides the main one (iptables:
    #: ``.ipset``); see :attr:`Emitted.files`.
    companions: ClassVar[tuple[str, ...]] = ()
    #: The frozen options type this backend takes.
    options_type: ClassVar[type[BackendOptions]] = BackendOptions

    @abc.abstractmethod
    def emit(
        self, policies: PolicySet, snapshot: Snapshot | None, options: BackendOptions
    ) -> Emitted:
        """Render the policies. ``snapshot`` is not None when ``needs_snapshot`` is set."""

    def emit_tiered(
        self,
        policies: PolicySet,
        cluster_policies: ClusterPolicySet,
        snapshot: Snapshot | None,
        options: BackendOptions,
    ) -> Emitted:
        """Render NetworkPolicies together with ClusterNetworkPolicies (admin and baseline
        tiers). A target opts in by declaring
        :attr:`~npc.capabilities.Capability.CLUSTER_NETWORK_POLICY` and overriding this; the
        default renders NetworkPolicies alone and refuses any ClusterNetworkPolicy, so a
        backend that knows nothing of tiers can never drop them silently."""
        if cluster_policies:
            raise UnsupportedError(
                Diagnostic(
                    Code.UNSUPPORTED,
                    Severity.ERROR,
                    f"target {self.name} cannot express ClusterNetworkPolicy "
                    f"({', '.join(p.name for p in cluster_policies)})",
                )
            )
        return self.emit(policies, snapshot, options)

    def count(self, emitted: Emitted) -> Counts | None:
        """What ``emitted`` (this backend's output) holds, counted from the output itself
        (see :class:`Counts`); None when the backend does not count."""
        return None

    def optimizes(self, options: BackendOptions) -> bool:
        """Whether the optimizer passes should run first (a backend reproducing another
        tool's literal output, rule for rule, says no)."""
        return True

    def apply(self, text: str, options: BackendOptions, *, dry_run: bool = False) -> Applied:
        """Load emitted ``text`` into the enforcement point this process can reach, atomically
        (on failure the previous state stays); ``dry_run`` only checks it there.

        Raises :class:`~npc.errors.BackendError` when the enforcement point refuses. Only the
        targets the registry marks as applying (:attr:`npc.targets.Target.applies`) override
        this."""
        raise UnsupportedError(
            Diagnostic(
                Code.UNSUPPORTED,
                Severity.ERROR,
                f"target {self.name} cannot be applied by npc",
            )
        )

    @classmethod
    def check_options(cls, options: BackendOptions, expected: type[OptionsT]) -> OptionsT:
        """``options``, checked to be this backend's type: any other is a programming error
        (defaults silently swapped in would ignore what the caller asked for)."""
        if not isinstance(options, expected):
            raise TypeError(
                f"target {cls.name} takes {expected.__name__}, not {type(options).__name__}"
            )
        return options

    @classmethod
    def make_options(cls, settings: Mapping[str, Any]) -> BackendOptions:
        """Build this backend's options from ``name -> value`` settings (None = unset).

        Settings the backend does not take are an error, so a flag is never silently ignored.
        """
        fields = {f.name for f in dataclasses.fields(cls.options_type)}
        given = {k: v for k, v in settings.items() if v is not None}
        unknown = sorted(set(given) - fields)
        if unknown:
            raise UnsupportedError(
                [
                    Diagnostic(
                        Code.UNSUPPORTED,
                        Severity.ERROR,
                        f"option --{k.replace('_', '-')} does not apply to target {cls.name}",
                        hint=(
                            f"target {cls.name} takes: "
                            + (
                                ", ".join(f"--{f.replace('_', '-')}" for f in sorted(fields))
                                or "no options"
                            )
                        ),
                    )
                    for k in unknown
                ]
            )
        return cls.options_type(**given)
