"""A lint finding, and the options lint runs with."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from npc import ir, tiers
from npc.errors import Code, Diagnostic, Location, Origin, Path, Severity, format_path

if TYPE_CHECKING:  # the plugin table is only needed by `npc lint --cni`
    from npc.analysis.cni import Cni

__all__ = ["Finding", "LintOptions"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One lint finding: a stable code, a severity, the policy (``namespace/name``, empty
    when the finding is about no one policy), the field path, a message and a hint.
    ``path`` is the field path inside the policy (``spec.ingress[0].from``); ``origin`` is
    where it is, which the library turns into ``location``."""

    code: Code
    severity: Severity
    policy: str
    path: str
    message: str
    hint: str | None = None
    origin: Origin | None = field(default=None, compare=False)
    location: Location | None = None

    @classmethod
    def at(
        cls,
        code: Code,
        policy: ir.Policy | tiers.ClusterPolicy,
        path: Path,
        message: str,
        hint: str | None = None,
        severity: Severity = Severity.WARNING,
    ) -> Finding:
        """A finding about ``policy`` (a NetworkPolicy or a ClusterNetworkPolicy) at ``path``
        (relative to the policy object)."""
        origin = policy.origin.child(path) if policy.origin is not None else None
        return cls(code, severity, policy.key, format_path(path), message, hint, origin)

    def located(self, location: Location | None) -> Finding:
        return replace(self, location=location)

    def to_diagnostic(self) -> Diagnostic:
        """The same finding as a diagnostic (what ``validate`` and ``compile`` print)."""
        return Diagnostic(
            self.code,
            self.severity,
            self.message,
            self.path,
            self.location,
            self.hint,
            self.origin,
        )

    def render(self) -> str:
        return self.to_diagnostic().render()

    def to_json(self) -> dict[str, Any]:
        """``{"code", "severity", "file", "line", "policy", "path", "message", "hint"}``."""
        return {
            "code": str(self.code),
            "severity": str(self.severity),
            "file": self.location.file if self.location else None,
            "line": self.location.line if self.location else None,
            "policy": self.policy,
            "path": self.path,
            "message": self.message,
            "hint": self.hint,
        }


@dataclass(frozen=True, slots=True)
class LintOptions:
    """``cni``: the plugin that enforces the policies, when known (checks 3, 7 and 10 then
    use what it does)."""

    cni: Cni | None = None
