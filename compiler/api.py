"""The library API: :func:`load`, :func:`compile`, :func:`apply`, :func:`lint`,
:func:`verify`, :func:`compare` and :func:`diff`.

:func:`load`, :func:`compile`, :func:`verify`, :func:`compare` and :func:`diff` do no file
I/O; :func:`apply` loads a compiled ruleset into the enforcement point this process reaches
(the kernel of its network namespace), and :func:`live_ruleset` reads that one back.

>>> import npc
>>> bundle = npc.load([npc.Source("p.yaml", text)])          # doctest: +SKIP
>>> artifact = npc.compile(bundle, target="ir")               # doctest: +SKIP
>>> print(artifact.text)                                      # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from npc import collector, ir
from npc.analysis.lint import written_findings
from npc.backends.base import Applied, BackendOptions, Emitted
from npc.capabilities import check, check_cluster
from npc.errors import (
    Code,
    Diagnostic,
    InputError,
    Location,
    NpcError,
    Severity,
    UnsupportedError,
    snapshot_required,
)
from npc.frontend import Bundle
from npc.frontend import load as load_bundle
from npc.frontend.source import Source
from npc.passes import optimize
from npc.snapshot import Snapshot
from npc.targets import (
    REGISTRY,
    TARGET_SETTINGS,
    check_can_apply,
    get_backend,
    get_target,
    settings_for,
)

if TYPE_CHECKING:  # imported where used: a process running `npc compile` never needs them
    from npc.analysis.compare import CompareReport
    from npc.analysis.diff import DiffReport
    from npc.analysis.lint import Finding
    from npc.analysis.verify import Difference, VerifyReport
    from npc.flows import Probe
    from npc.rulesets.base import Judge, Text

__all__ = [
    "Applied",
    "Artifact",
    "CompareReport",
    "DiffReport",
    "Difference",
    "Finding",
    "VerifyReport",
    "apply",
    "artifact_sources",
    "check_can_apply",
    "compare",
    "compile",
    "diff",
    "explain_reason",
    "judge",
    "lint",
    "live_ruleset",
    "load",
    "verify",
]

log = logging.getLogger("npc")

#: The analysis types this module re-exports, by the module that defines them. They are
#: imported on first use (PEP 562), so that importing npc does not import every analysis.
_LAZY = {
    "CompareReport": "npc.analysis.compare",
    "DiffReport": "npc.analysis.diff",
    "Difference": "npc.analysis.verify",
    "Finding": "npc.analysis.lint",
    "VerifyReport": "npc.analysis.verify",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True, slots=True)
class Artifact:
    """What :func:`compile` returns: the output text, its target and all diagnostics.

    ``files``: for a target whose output is several files, ``(suffix, text)`` per file
    (written as ``PATH<suffix>``; the first suffix is ``""``); ``text`` then shows them all
    (:class:`~npc.backends.base.Emitted`). Empty for a one-file output."""

    target: str
    text: str
    diagnostics: tuple[Diagnostic, ...] = ()
    suffix: str = "txt"
    files: tuple[tuple[str, str], ...] = ()


def load(sources: Iterable[Source]) -> Bundle:
    """Read, validate and lower all sources (see :func:`npc.frontend.load`), with the
    warnings of the checks that need only the policies (:func:`npc.analysis.lint.
    written_findings`: the same implementation ``npc lint`` runs) among the diagnostics.

    Raises :class:`~npc.errors.InputError` or :class:`~npc.errors.ValidationError`
    carrying every diagnostic; does no file I/O."""
    bundle = load_bundle(sources)
    written = written_findings(bundle.policies)
    found = [
        f.located(where).to_diagnostic()
        for f, where in zip(written, bundle.locate_all([f.origin for f in written]), strict=True)
    ]
    if not found:
        return bundle
    order = {s.name: i for i, s in enumerate(bundle.sources)}

    def source_index(d: Diagnostic) -> int:
        return order.get(d.location.file, len(order)) if d.location else len(order)

    merged = sorted((*bundle.diagnostics, *found), key=source_index)
    return replace(bundle, diagnostics=tuple(merged))


def lint(source: Bundle | Iterable[Source], *, cni: str | None = None) -> tuple[Finding, ...]:
    """Every lint check over the policies (and the snapshot, when the input has one), plus
    the warnings reading them gave (a CIDR with host bits set, a defaulted field), located
    and sorted by file and line. ``cni`` names the plugin that enforces the policies
    (:func:`npc.analysis.cni.cni_names`). Raises what :func:`load` raises, and
    :class:`~npc.errors.UnsupportedError` for an unknown ``cni``; never writes files."""
    from npc.analysis.cni import cni_names, get_cni  # noqa: PLC0415
    from npc.analysis.lint import Finding, LintOptions  # noqa: PLC0415
    from npc.analysis.lint import lint as run_lint  # noqa: PLC0415

    if cni is not None and cni not in cni_names():
        raise UnsupportedError(
            Diagnostic(
                Code.UNKNOWN_CNI,
                Severity.ERROR,
                f"unknown CNI {cni!r}",
                hint=f"known: {', '.join(cni_names())}",
            )
        )
    bundle = source if isinstance(source, Bundle) else load(source)
    options = LintOptions(get_cni(cni) if cni is not None else None)
    findings = run_lint(bundle.policies, bundle.snapshot, options, bundle.cluster_policies)
    found = [
        f.located(where)
        for f, where in zip(findings, bundle.locate_all([f.origin for f in findings]), strict=True)
    ]
    mine = {Code.IGNORED_RULES, Code.AND_OR_CONFUSION}  # load's copies of written_findings
    starts = _policy_starts(bundle)
    for d in bundle.diagnostics:
        if d.severity is Severity.WARNING and d.code not in mine:
            found.append(
                Finding(
                    d.code,
                    d.severity,
                    _policy_at(starts, d.location),
                    d.path,
                    d.message,
                    d.hint,
                    d.origin,
                    d.location,
                )
            )
    files = {s.name: i for i, s in enumerate(bundle.sources)}

    def key(f: Finding) -> tuple[int, int, int, str, str]:
        loc = f.location
        if loc is None:
            return (len(files), 0, 0, f.policy, str(f.code))
        return (files.get(loc.file, len(files)), loc.line, loc.column, f.policy, str(f.code))

    return tuple(sorted(found, key=key))


def _policy_starts(bundle: Bundle) -> dict[str, list[tuple[int, str]]]:
    starts: dict[str, list[tuple[int, str]]] = {}
    policies = list(bundle.policies)
    for policy, where in zip(
        policies, bundle.locate_all([p.origin for p in policies]), strict=True
    ):
        if where is not None:
            starts.setdefault(where.file, []).append((where.line, policy.key))
    for lines in starts.values():
        lines.sort()
    return starts


def _policy_at(starts: dict[str, list[tuple[int, str]]], where: Location | None) -> str:
    """The policy whose object starts last before ``where`` in its file ("" if none)."""
    if where is None:
        return ""
    found = ""
    for line, key in starts.get(where.file, ()):
        if line > where.line:
            break
        found = key
    return found


def compile(
    source: Bundle | Iterable[Source],
    target: str,
    options: BackendOptions | Mapping[str, Any] | None = None,
    *,
    optimize_ir: bool = True,
) -> Artifact:
    """Compile policies for ``target``.

    ``source`` is a loaded :class:`Bundle` or sources to load. ``options`` is the backend's
    options object, or a mapping of option names to values (unknown names are an error).
    Raises :class:`~npc.errors.NpcError` subclasses; never writes files.
    """
    bundle = source if isinstance(source, Bundle) else load(source)
    backend = get_backend(target)
    opts = options if isinstance(options, BackendOptions) else backend.make_options(options or {})
    if backend.needs_snapshot and bundle.snapshot is None:
        raise UnsupportedError(snapshot_required(_needs_snapshot(target)))
    try:
        with collector.paused():  # see npc.collector: IR and rulesets have no cycles
            check(bundle.policies, backend.capabilities, target)
            check_cluster(bundle.cluster_policies, backend.capabilities, target)
            run_passes = optimize_ir and backend.optimizes(opts)
            policies = optimize(bundle.policies) if run_passes else bundle.policies
            log.debug("compiling %d policies for %s", len(policies), target)
            emitted = backend.emit_tiered(policies, bundle.cluster_policies, bundle.snapshot, opts)
    except NpcError as exc:
        raise type(exc)(_located(bundle, exc.diagnostics)) from None
    diagnostics = bundle.diagnostics + _located(bundle, emitted.diagnostics)
    return Artifact(target, emitted.text, diagnostics, backend.suffix, emitted.files)


def apply(
    source: Bundle | Iterable[Source],
    target: str,
    options: BackendOptions | Mapping[str, Any] | None = None,
    *,
    dry_run: bool = False,
    optimize_ir: bool = True,
) -> tuple[Artifact, Applied]:
    """Compile policies for ``target`` and load the result into the local enforcement point,
    atomically: when loading fails, the previous ruleset stays in force. ``dry_run`` only asks
    the enforcement point to check it.

    Raises :class:`~npc.errors.UnsupportedError` (before compiling) for a target npc cannot
    load, :class:`~npc.errors.BackendError` when the enforcement point refuses, and what
    :func:`compile` raises. Returns the artifact (with its warnings) and what was done."""
    check_can_apply(target)
    backend = get_backend(target)
    opts = options if isinstance(options, BackendOptions) else backend.make_options(options or {})
    artifact = compile(source, target, opts, optimize_ir=optimize_ir)
    return artifact, backend.apply(artifact.text, opts, dry_run=dry_run)


def _bundle(source: Bundle | Iterable[Source]) -> Bundle:
    return source if isinstance(source, Bundle) else load(source)


def _snapshot(bundle: Bundle, needed_by: str) -> Snapshot:
    if bundle.snapshot is None:
        raise InputError(snapshot_required(needed_by))
    return bundle.snapshot


def judge(target: str, ruleset: Sequence[Text], snapshot: Snapshot | None) -> Judge:
    """Read ``ruleset`` (one or more texts) with target ``target``'s judge, found through
    the registry. Raises :class:`~npc.errors.UnsupportedError` for a target without a judge
    and :class:`~npc.errors.InputError` (at file:line:col) for what the judge cannot read."""
    reader = get_target(target).reader
    module = None
    if reader is not None:
        try:
            module = importlib.import_module(reader)
        except ModuleNotFoundError as exc:
            if exc.name is None or not reader.startswith(exc.name):
                raise
    if module is None or not callable(getattr(module, "read", None)):
        raise UnsupportedError(
            Diagnostic(
                Code.UNSUPPORTED,
                Severity.ERROR,
                f"target {target} has no ruleset judge: npc cannot read its rulesets back",
                hint="verify a target that has one: "
                + ", ".join(sorted(t.name for t in REGISTRY.values() if t.reader)),
            )
        )
    found: Judge = module.read(ruleset, snapshot)
    return found


def _check_node(snapshot: Snapshot, node: str | None) -> None:
    if node is not None and not any(p.node_name == node for p in snapshot.pods):
        known = sorted({p.node_name for p in snapshot.pods if p.node_name})
        raise InputError(
            Diagnostic(
                Code.INVALID_VALUE,
                Severity.ERROR,
                f"no pod of the snapshot runs on node {node!r}",
                hint=f"nodes with pods: {', '.join(known) or 'none'}",
            )
        )


def verify(
    source: Bundle | Iterable[Source],
    target: str,
    ruleset: Sequence[Text],
    *,
    node: str | None = None,
    probes: tuple[Probe, ...] | None = None,
) -> VerifyReport:
    """Compare a ruleset of ``target`` (npc's output or anyone else's) with the policies,
    flow by flow, over the bundle's snapshot (see :mod:`npc.analysis.verify`). ``node``:
    the ruleset is that node's (it judges only the flows that node enforces)."""
    from npc.analysis.verify import verify as verify_judge  # noqa: PLC0415

    bundle = _bundle(source)
    snapshot = _snapshot(bundle, "npc verify")
    _check_node(snapshot, node)
    read = judge(target, ruleset, snapshot)
    return verify_judge(
        bundle.policies,
        snapshot,
        read,
        target=target,
        node=node,
        probes=probes,
        cluster_policies=bundle.cluster_policies,
    )


def compare(
    source: Bundle | Iterable[Source],
    targets: Sequence[str] | None = None,
    settings: Mapping[str, Any] | None = None,
) -> CompareReport:
    """Compile for each of ``targets`` (default: every target with a judge), verify each
    output, and tabulate: objects and rules emitted (each backend's own count), size,
    features refused, equivalence, disagreements. A target that cannot express the input
    (ClusterNetworkPolicies, say: its capabilities decide) is a row with what it refused.
    ``settings`` (names of :data:`~npc.targets.TARGET_SETTINGS`) go to each target that
    declares them (``{"same_node": "trust"}`` reaches alibaba only)."""
    from npc.analysis.compare import CompareReport, TargetRow  # noqa: PLC0415
    from npc.analysis.verify import verify as verify_judge  # noqa: PLC0415

    bundle = _bundle(source)
    snapshot = _snapshot(bundle, "npc compare")
    names = sorted(t.name for t in REGISTRY.values() if t.reader) if targets is None else targets
    unknown = sorted(set(settings or {}) - {s.name for s in TARGET_SETTINGS})
    if unknown:
        raise UnsupportedError(
            Diagnostic(
                Code.INVALID_VALUE,
                Severity.ERROR,
                f"unknown target setting(s) {', '.join(unknown)}",
                hint=f"target settings: {', '.join(s.name for s in TARGET_SETTINGS)}",
            )
        )
    rows = []
    for name in names:
        try:
            artifact = compile(bundle, name, settings_for(name, settings or {}))
        except UnsupportedError as exc:
            rows.append(TargetRow(name, refused=tuple(d.render() for d in exc.errors)))
            continue
        text, files = artifact.text, artifact_sources(artifact)
        output = tuple((f.name, f.text) for f in files)
        row = TargetRow(name, len(text.encode()), text.count("\n"), output=output)
        counted = get_backend(name).count(Emitted(text, (), artifact.files))
        if counted is not None:
            row = replace(
                row,
                objects=counted.objects,
                rules=counted.rules,
                objects_are=counted.objects_are,
                rules_are=counted.rules_are,
            )
        try:
            report = verify_judge(
                bundle.policies,
                snapshot,
                judge(name, files, snapshot),
                target=name,
                cluster_policies=bundle.cluster_policies,
            )
        except UnsupportedError as exc:
            rows.append(replace(row, note=exc.errors[0].message if exc.errors else ""))
            continue
        rows.append(replace(row, report=report))
    return CompareReport(tuple(rows))


def artifact_sources(artifact: Artifact) -> list[Source]:
    """A compiled artifact as ruleset sources for its judge: one per file it writes."""
    name = f"<{artifact.target} output>"
    if artifact.files:
        return [Source(f"{name}{suffix}", text) for suffix, text in artifact.files]
    return [Source(name, artifact.text)]


def diff(old: Bundle | Iterable[Source], new: Bundle | Iterable[Source]) -> DiffReport:
    """The flows that change from policies ``old`` to ``new``, over the snapshot of either
    (``old``'s when both have one)."""
    from npc.analysis.diff import diff as diff_policies  # noqa: PLC0415

    before, after = _bundle(old), _bundle(new)
    snapshot = before.snapshot or after.snapshot
    if snapshot is None:
        raise InputError(snapshot_required("npc diff"))
    return diff_policies(
        before.policies,
        after.policies,
        snapshot,
        old_tiers=before.cluster_policies,
        new_tiers=after.cluster_policies,
    )


def explain_reason(bundle: Bundle, src: str, dst: str, protocol: str, port: int) -> list[str]:
    """What ``npc explain`` says of one flow (endpoints ``ns/pod`` or an address), as lines:
    the reason first, then each side's reasons."""
    from npc.analysis.explain import explain_flow  # noqa: PLC0415

    snapshot = _snapshot(bundle, "npc explain")
    ends = [snapshot.pod(e) or e for e in (src, dst)]
    from npc.flows import Probe  # noqa: PLC0415

    probe = Probe(port, ir.Protocol(protocol))
    text = explain_flow(
        bundle.policies, snapshot, ends[0], ends[1], probe, bundle.locate, bundle.cluster_policies
    ).text()
    lines = [line.strip() for line in text.splitlines()[1:] if line.strip()]
    return lines


def live_ruleset(target: str) -> tuple[Source, ...]:
    """This host's (this network namespace's) ruleset for ``target``, read with the
    commands the registry names (``nft list ruleset``; ``iptables-save`` and ``ipset
    save``). Raises :class:`~npc.errors.InputError` when a command fails."""
    commands = get_target(target).live
    if not commands:
        raise UnsupportedError(
            Diagnostic(
                Code.UNSUPPORTED,
                Severity.ERROR,
                f"target {target} has no ruleset on this host to read",
                hint="give the ruleset with --ruleset PATH",
            )
        )
    import subprocess  # noqa: PLC0415

    found = []
    for command in commands:
        name = f"<{' '.join(command)}>"
        try:
            done = subprocess.run(
                list(command), capture_output=True, text=True, check=False, timeout=120
            )
        except OSError as exc:
            raise InputError(
                Diagnostic(
                    Code.UNREADABLE,
                    Severity.ERROR,
                    f"cannot run {' '.join(command)}: {exc.strerror or exc}",
                )
            ) from None
        if done.returncode != 0:
            raise InputError(
                Diagnostic(
                    Code.UNREADABLE,
                    Severity.ERROR,
                    f"{' '.join(command)} failed (exit {done.returncode}): "
                    + (done.stderr.strip().splitlines() or [""])[-1],
                    hint="reading this host's ruleset needs root (CAP_NET_ADMIN)",
                )
            )
        found.append(Source(name, done.stdout))
    return tuple(found)


def _needs_snapshot(target: str) -> str:
    return f"target {target} (it resolves pod selectors to addresses)"


def _located(bundle: Bundle, diagnostics: Iterable[Diagnostic]) -> tuple[Diagnostic, ...]:
    """Give file positions to diagnostics that only know their origin (backends' ones)."""
    found = tuple(diagnostics)
    wheres = bundle.locate_all([d.origin if d.location is None else None for d in found])
    return tuple(
        replace(d, location=where) if d.location is None and d.origin is not None else d
        for d, where in zip(found, wheres, strict=True)
    )
