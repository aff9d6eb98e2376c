"""``npc compare``: one table of every target's output for the same policies.

The library (:func:`npc.compare`) compiles for each target and verifies each output with
its judge; this module holds the rows and finds the flows on which targets disagree with
each other: a flow's verdict under a target is the spec's unless that target's
verification lists it as a difference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from npc.analysis.verify import VerifyReport

__all__ = ["CompareReport", "Disagreement", "TargetRow"]


@dataclass(frozen=True, slots=True)
class TargetRow:
    """One target: what it emitted (objects and rules as the backend counts them, bytes,
    lines), what it refused, and its verification (None when it refused the policies or has
    no judge). ``objects``/``rules`` are None when the backend does not count;
    ``objects_are``/``rules_are`` say what it counted. ``output``: the emitted files as
    ``(name, text)``, the names its judge's deciding rules (``file:line``) refer to."""

    target: str
    size: int = 0
    lines: int = 0
    refused: tuple[str, ...] = ()
    report: VerifyReport | None = None
    note: str = ""
    objects: int | None = None
    rules: int | None = None
    objects_are: str = ""
    rules_are: str = ""
    output: tuple[tuple[str, str], ...] = field(default=(), repr=False, compare=False)

    @property
    def equivalent(self) -> bool | None:
        return None if self.report is None else self.report.equivalent

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "objects": self.objects,
            "rules": self.rules,
            "objects_are": self.objects_are,
            "rules_are": self.rules_are,
            "size": self.size,
            "lines": self.lines,
            "refused": list(self.refused),
            "equivalent": self.equivalent,
            "differences": []
            if self.report is None
            else [d.to_json() for d in self.report.differences],
            "note": self.note,
        }


@dataclass(frozen=True, slots=True, order=True)
class Disagreement:
    """A flow some verified targets allow and others deny."""

    src: str
    dst: str
    protocol: str
    port: int
    allowed_by: tuple[str, ...]
    denied_by: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "from": self.src,
            "to": self.dst,
            "protocol": self.protocol,
            "port": self.port,
            "allowed_by": list(self.allowed_by),
            "denied_by": list(self.denied_by),
        }


@dataclass(frozen=True, slots=True)
class CompareReport:
    """Every target's row, and the flows verified targets disagree on."""

    rows: tuple[TargetRow, ...]

    @property
    def disagreements(self) -> tuple[Disagreement, ...]:
        return disagreements([r for r in self.rows if r.report is not None])

    def to_json(self) -> dict[str, Any]:
        return {
            "targets": [r.to_json() for r in self.rows],
            "disagreements": [d.to_json() for d in self.disagreements],
        }


def disagreements(rows: Sequence[TargetRow]) -> tuple[Disagreement, ...]:
    """Flows on which the verified targets of ``rows`` do not all decide alike."""
    spec: dict[tuple[str, str, str, int], bool] = {}
    verdicts: dict[tuple[str, str, str, int], dict[str, bool]] = {}
    for row in rows:
        assert row.report is not None
        for d in row.report.differences:
            key = (d.src, d.dst, d.protocol, d.port)
            spec[key] = d.spec
            verdicts.setdefault(key, {})[row.target] = d.ruleset
    found = []
    names = [r.target for r in rows]
    for key, by_target in verdicts.items():
        decided = {t: by_target.get(t, spec[key]) for t in names}
        if len(set(decided.values())) > 1:
            found.append(
                Disagreement(
                    *key,
                    tuple(t for t in names if decided[t]),
                    tuple(t for t in names if not decided[t]),
                )
            )
    return tuple(sorted(found))
