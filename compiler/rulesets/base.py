"""What every judge shares: the sources it reads, the :class:`Decision` it reaches, and the
:class:`Judge` protocol that :mod:`npc.analysis.verify` speaks to.

A judge package ``npc.rulesets.<target>`` exposes ``read(sources, snapshot) -> Judge``; the
registry (:mod:`npc.targets`, ``Target.reader``) names the package, so verify loads any
target's judge the same way. This is a model module: it imports nothing of the frontend,
the backends or the analysis.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from npc.flows import Flow
from npc.snapshot import Snapshot

__all__ = ["Decision", "Judge", "Reader", "RulesetSource"]


class RulesetSource(Protocol):
    """A ruleset text and the name positions are reported against (a file name, or
    ``<nft list ruleset>``); :class:`npc.Source` is one."""

    @property
    def name(self) -> str: ...

    @property
    def text(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Decision:
    """The verdict a target reaches for the first packet of a new connection.

    ``rule`` is ``file:line`` (or ``file:line:col``) of the deciding rule, None when a
    default (a chain policy, the end of a tier, an unfiltered endpoint) decided; ``note``
    says what decided in the target's words."""

    allowed: bool
    rule: str | None
    note: str = ""


class Judge(Protocol):
    """A ruleset read into a model that decides flows the way its target does."""

    def decide(self, flow: Flow) -> Decision:
        """The target's verdict on ``flow`` (a new connection)."""
        ...


class Reader(Protocol):
    """The ``read`` function of a judge package."""

    def __call__(self, sources: Sequence[RulesetSource], snapshot: Snapshot | None) -> Judge: ...
