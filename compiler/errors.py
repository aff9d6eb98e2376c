"""Diagnostics and the error tree.

Every problem npc reports is a :class:`Diagnostic`: a stable code, a severity, the source
location (file, line, column), the field path inside the object (``spec.ingress[0].from[1]``),
a message and, where one helps, a hint. Diagnostics are collected, never printed here; the CLI
renders them compiler-style::

    policies.yaml:14:9: error: spec.ingress[0].from[1].ipBlock.except[0]: must be a strict ...
      hint: ...

Failures raise a subclass of :class:`NpcError` that carries *all* diagnostics collected so far,
so a caller sees every problem at once.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "BackendError",
    "Code",
    "Diagnostic",
    "InputError",
    "Key",
    "Location",
    "NpcError",
    "Origin",
    "OutputError",
    "Path",
    "Severity",
    "UnsupportedError",
    "ValidationError",
    "format_path",
    "snapshot_required",
    "sort_diagnostics",
]


class Severity(enum.StrEnum):
    """How bad a diagnostic is. Only errors stop a run."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@enum.unique  # a repeated value would silently make one name an alias of another
class Code(enum.StrEnum):
    """Stable diagnostic codes.

    The first digit is the stage: 1 reading input, 2 validation (API-server rules and strict
    decoding), 3 features a target cannot express, 4 backend and apply failures,
    5 cluster snapshot, 6 lint (valid but probably not what was meant).
    """

    # 1xx: reading input
    UNREADABLE = "E101"
    YAML_SYNTAX = "E102"
    JSON_SYNTAX = "E103"
    TOO_DEEP = "E104"
    ALIAS_BOMB = "E105"
    NOT_AN_OBJECT = "E106"
    NO_INPUT = "E107"
    # 2xx: decoding and validation
    UNKNOWN_FIELD = "E201"
    DUPLICATE_KEY = "E202"
    WRONG_TYPE = "E203"
    MISSING_KIND = "E204"
    UNKNOWN_KIND = "E205"
    WRONG_API_VERSION = "E206"
    REQUIRED = "E207"
    INVALID_NAME = "E208"
    INVALID_LABEL = "E209"
    INVALID_SELECTOR = "E210"
    INVALID_POLICY_TYPE = "E211"
    INVALID_PORT = "E212"
    INVALID_PROTOCOL = "E213"
    INVALID_PEER = "E214"
    INVALID_CIDR = "E215"
    INVALID_EXCEPT = "E216"
    DUPLICATE_OBJECT = "E217"
    INVALID_VALUE = "E218"
    OBSOLETE_KIND = "E219"
    # 3xx: a target cannot express what the policies say
    UNSUPPORTED = "E301"
    SNAPSHOT_REQUIRED = "E302"
    UNKNOWN_TARGET = "E304"
    UNKNOWN_CNI = "E305"
    # 4xx: backends and applying
    BACKEND_FAILED = "E401"
    APPLY_FAILED = "E402"
    OUTPUT_FAILED = "E403"
    # 5xx: cluster snapshot
    SNAPSHOT_INVALID = "E501"
    MISSING_NAMESPACE = "E502"
    # warnings and notes
    EMPTY_SOURCE = "W101"
    CIDR_HOST_BITS = "W201"
    SKIPPED_KIND = "I202"
    DEFAULTED = "W203"
    CONVERTED_KEY = "W204"
    IGNORED_RULES = "W601"
    AND_OR_CONFUSION = "W602"
    DUPLICATE_POLICY_TYPE = "W603"
    SELECTS_NOTHING = "W604"
    NOT_ENFORCEABLE = "W605"
    UNKNOWN_NAMESPACE_LABEL = "W606"
    SNAT_HIDES_CLIENT = "W607"
    NO_DNS = "W608"
    PEER_MATCHES_NOTHING = "W609"
    IPBLOCK_HOLDS_PODS = "W610"
    SHADOWED_RULE = "W611"
    REDUNDANT_POLICY = "W612"
    CNI_IGNORES = "W613"
    CNI_VERSION = "I614"
    DNS_TCP_BLOCKED = "I615"
    SAME_PRIORITY = "W616"
    TIER_RULE_NEVER_REACHED = "W617"
    ADMIN_OVERRIDES_NETWORK_POLICY = "W618"
    BASELINE_PASS = "W619"
    TIER_DENIES_DNS = "W620"


_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _escape(char: str) -> str:
    if char in _ESCAPES:
        return _ESCAPES[char]
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _one_line(text: str) -> str:
    """Escape what would break a line or hide itself (control and format characters)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escape(c) for c in text)


class Key(str):
    """A path segment that is a map key (``matchLabels[app]``), not a struct field."""

    __slots__ = ()


#: A field path: struct fields as ``str``, list indices as ``int``, map keys as :class:`Key`.
Path = tuple[str | int, ...]


def format_path(path: Iterable[str | int]) -> str:
    """Render a path the way the Kubernetes API server does: ``spec.ingress[0].from[1]``."""
    out: list[str] = []
    for seg in path:
        if isinstance(seg, int | Key):
            out.append(f"[{seg}]")
        else:
            out.append(f".{seg}" if out else seg)
    return "".join(out)


@dataclass(frozen=True, slots=True)
class Origin:
    """Where something came from: source index, document index and path in the document.

    Resolved to a file position through the loaded bundle's source map (positions are found
    lazily, only when someone asks)."""

    source: int
    document: int
    path: Path = ()

    def child(self, path: Path) -> Origin:
        """The origin of a field below this one."""
        return Origin(self.source, self.document, (*self.path, *path))


@dataclass(frozen=True, slots=True)
class Location:
    """A position in an input file; line and column start at 1."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One reported problem (or note) about the input or the output."""

    code: Code
    severity: Severity
    message: str
    path: str = ""
    location: Location | None = None
    hint: str | None = None
    #: Where the problem is, for diagnostics made before positions are known (backends):
    #: :func:`npc.compile` turns it into ``location``.
    origin: Origin | None = field(default=None, compare=False, repr=False)

    def render(self) -> str:
        """Compiler-style text: ``file:line:col: error: path: message`` plus a hint line.

        Control characters from the input (a name with a newline) are escaped, so each
        diagnostic is exactly one line, or two with a hint."""
        where = f"{self.location}: " if self.location else "npc: "
        what = f"{self.path}: {self.message}" if self.path else self.message
        text = _one_line(f"{where}{self.severity}: {what}")
        if self.hint:
            text += f"\n  hint: {_one_line(self.hint)}"
        return text

    def to_json(self) -> dict[str, object]:
        """A JSON-ready mapping (for ``--diagnostics json`` and library users)."""
        return {
            "code": str(self.code),
            "severity": str(self.severity),
            "message": self.message,
            "path": self.path,
            "file": self.location.file if self.location else None,
            "line": self.location.line if self.location else None,
            "column": self.location.column if self.location else None,
            "hint": self.hint,
        }

    def __str__(self) -> str:
        return self.render()


def sort_diagnostics(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Order by file (in order of first appearance), then line and column; unlocated last."""
    items = list(diagnostics)
    file_order: dict[str, int] = {}
    for d in items:
        if d.location is not None:
            file_order.setdefault(d.location.file, len(file_order))

    def key(d: Diagnostic) -> tuple[int, int, int]:
        if d.location is None:
            return (len(file_order), 0, 0)
        return (file_order[d.location.file], d.location.line, d.location.column)

    return sorted(items, key=key)


class NpcError(Exception):
    """Base of every error npc raises on purpose; carries all diagnostics collected."""

    #: Exit status the CLI uses for this kind of failure.
    exit_status = 2

    def __init__(self, diagnostics: Sequence[Diagnostic] | Diagnostic | str) -> None:
        if isinstance(diagnostics, str):
            diagnostics = Diagnostic(Code.BACKEND_FAILED, Severity.ERROR, diagnostics)
        if isinstance(diagnostics, Diagnostic):
            diagnostics = (diagnostics,)
        self.diagnostics: tuple[Diagnostic, ...] = tuple(sort_diagnostics(diagnostics))
        errors = [d for d in self.diagnostics if d.severity is Severity.ERROR]
        shown = errors or list(self.diagnostics)
        summary = shown[0].render() if shown else "error"
        if len(errors) > 1:
            summary += f" (and {len(errors) - 1} more errors)"
        super().__init__(summary)

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity is Severity.ERROR)


class InputError(NpcError):
    """The input cannot be read: unreadable files, YAML/JSON syntax, unsafe documents."""


class ValidationError(NpcError):
    """The input was read but is not valid Kubernetes (strict decoding or API-server rules)."""


class UnsupportedError(NpcError):
    """The policies use something the chosen target cannot express; nothing was emitted."""


class BackendError(NpcError):
    """A backend or an enforcement point failed (e.g. ``nft -f`` rejected a ruleset)."""

    exit_status = 1


class OutputError(NpcError):
    """The output could not be written (a missing directory, a full disk, no permission)."""

    exit_status = 1


def snapshot_required(needed_by: str) -> Diagnostic:
    """The one diagnostic for work that must resolve selectors against a cluster snapshot and
    was given none: ``needed_by`` names the work (``npc reach``, ``target nft (...)``)."""
    return Diagnostic(
        Code.SNAPSHOT_REQUIRED,
        Severity.ERROR,
        f"{needed_by} needs a cluster snapshot (Namespace and Pod objects), but the input has "
        "none",
        hint="add one: `kubectl get ns,pods -A -o yaml > cluster.yaml`, then `-f cluster.yaml`",
    )
