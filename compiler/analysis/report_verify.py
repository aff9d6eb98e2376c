"""The report's sections on targets and on a change: ``npc report --targets`` and
``--against``.

:func:`targets_section` takes what :func:`npc.compare` found (every target compiled and its
output verified by that target's judge) and shows, per target, the verdict (equivalent, not
equivalent, refused, or not verified), what was emitted (files, lines, bytes), what it refused
and why, and its counterexamples: widening ones (the ruleset allows what the policies deny)
first, each with the rule that decided it in the emitted output (``file:line`` and that line)
and, on the spec's side, what ``npc explain`` says of the same flow, linked to the policies it
names; then the flows on which the targets disagree with each other.

:func:`diff_section` takes what :func:`npc.diff` found between the policies before the change
(``--against``) and the report's own (``-f``): the flows the change opens and those it closes,
drawn in two colours (the classes ``opened`` and ``closed``) and counted; between pods, also
as dashed edges over the graph (:func:`change_edges`: green opened, red closed).

Both are bounded and say so: at most :data:`MAX_DIFFERENCES` counterexamples per target,
:data:`MAX_DISAGREEMENTS` disagreements and :data:`MAX_CHANGES` flows of each kind of change
are listed, with the totals stated. Their JSON (in ``sections`` of ``-o report.json``):

* ``targets``: ``{"targets": [{"target", "verdict", "files", "lines", "bytes", "objects",
  "objects_are", "emitted_rules", "rules_are", "refused":
  [str], "note", "checked", "differences_total", "widening", "narrowing", "rules": [{"kind",
  "rule", "rule_text", "note", "flows"}], "differences": [{"from", "to", "protocol",
  "port", "spec", "ruleset", "widening", "rule", "rule_text", "note", "reason": [str],
  "policies": [str]}]}], "disagreements": [{"from", "to", "protocol", "port", "allowed_by",
  "denied_by"}], "disagreements_total", "max_differences", "max_disagreements"}``;
  ``verdict`` is ``equivalent``, ``not equivalent``, ``refused`` or ``not verified``;
  ``rule`` is the deciding rule's ``file:line`` in the emitted output (null: a default
  decided, ``note`` says which), ``rule_text`` that line; ``reason`` is what ``npc explain``
  prints for the flow (its reason first, then each side's, indented as printed) and
  ``policies`` the policies it names;
* ``diff``: ``{"against": [str], "opened_total", "closed_total", "opened": [{"from", "to",
  "protocol", "port", "old", "new"}], "closed": [...], "max_changes", "graph_edges":
  [{"from", "to", "opened", "ports"}]}`` (``graph_edges``: the changes drawn over the graph,
  between its nodes' ids).

Every list is sorted, so the output is deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from npc import ir
from npc.analysis.compare import CompareReport, Disagreement, TargetRow
from npc.analysis.diff import Change, DiffReport
from npc.analysis.explain import FlowExplanation, Locator, explain_flow
from npc.analysis.graph import ChangeEdge, ReachGraph
from npc.analysis.report import Section
from npc.analysis.verify import Difference
from npc.flows import Probe
from npc.snapshot import Snapshot
from npc.wording import plural

__all__ = [
    "MAX_CHANGES",
    "MAX_CHANGE_EDGES",
    "MAX_DIFFERENCES",
    "MAX_DISAGREEMENTS",
    "MAX_RULES",
    "ChangedPair",
    "Counterexample",
    "RuleGroup",
    "TargetVerdict",
    "change_edges",
    "diff_section",
    "target_verdicts",
    "targets_section",
]

#: Counterexamples listed per target, disagreements listed, changed flows listed per kind.
MAX_DIFFERENCES = 200
MAX_DISAGREEMENTS = 200
MAX_CHANGES = 500
#: Deciding rules listed per target (with how many differences each decided).
MAX_RULES = 50
#: Edges of a change drawn over the graph; ports named per edge.
MAX_CHANGE_EDGES = 100
_PORTS_NAMED = 4

#: ``explain(src, dst, protocol, port)``: the spec's verdict on one flow, with reasons.
Explain = Callable[[str, str, str, int], FlowExplanation]


@dataclass(frozen=True, slots=True)
class Counterexample:
    """A flow a target decides unlike the policies: the deciding rule's line of the emitted
    output (None for a default), ``npc explain``'s words on the spec's side, and the
    policies those words name (the report links to them)."""

    difference: Difference
    rule_text: str | None
    reason: tuple[str, ...]
    policies: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        d = self.difference
        return {
            **d.to_json(),
            "widening": d.widening,
            "rule_text": self.rule_text,
            "note": d.note,
            "reason": list(self.reason),
            "policies": list(self.policies),
        }


@dataclass(frozen=True, slots=True)
class RuleGroup:
    """The differences one rule of a target's output (or one default) decided."""

    widening: bool
    rule: str | None
    rule_text: str | None
    note: str
    flows: int

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "widening" if self.widening else "narrowing",
            "rule": self.rule,
            "rule_text": self.rule_text,
            "note": self.note,
            "flows": self.flows,
        }


@dataclass(frozen=True, slots=True)
class TargetVerdict:
    """One target in the report: its verdict, output size, refusals, deciding rules (at
    most :data:`MAX_RULES`) and counterexamples (at most :data:`MAX_DIFFERENCES`)."""

    target: str
    verdict: str
    files: int
    lines: int
    size: int
    refused: tuple[str, ...]
    note: str
    checked: str
    differences_total: int
    widening: int
    rules: tuple[RuleGroup, ...]
    shown: tuple[Counterexample, ...]
    #: What the backend counted in its output (:meth:`npc.backends.base.Backend.count`):
    #: None when it does not count or emitted nothing.
    objects: int | None = None
    objects_are: str = ""
    emitted_rules: int | None = None
    rules_are: str = ""

    @property
    def anchor(self) -> str:
        return f"t-{self.target}"

    @property
    def narrowing(self) -> int:
        return self.differences_total - self.widening

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "verdict": self.verdict,
            "files": self.files,
            "lines": self.lines,
            "bytes": self.size,
            "objects": self.objects,
            "objects_are": self.objects_are,
            "emitted_rules": self.emitted_rules,
            "rules_are": self.rules_are,
            "refused": list(self.refused),
            "note": self.note,
            "checked": self.checked,
            "differences_total": self.differences_total,
            "widening": self.widening,
            "narrowing": self.narrowing,
            "rules": [r.to_json() for r in self.rules],
            "differences": [c.to_json() for c in self.shown],
        }


def _line_of(output: Mapping[str, Sequence[str]], rule: str | None) -> str | None:
    """The text of rule ``file:line`` in the emitted ``output`` (its lines by file name;
    None when it is not there)."""
    if rule is None:
        return None
    name, _, number = rule.rpartition(":")
    lines = output.get(name)
    if lines is None or not number.isdigit() or not 0 < int(number) <= len(lines):
        return None
    return lines[int(number) - 1].strip()


def _explainer(policies: ir.PolicySet, snapshot: Snapshot, locate: Locator) -> Explain:
    """``npc explain`` on flows named as in a :class:`Difference`, each flow once."""
    seen: dict[tuple[str, str, str, int], FlowExplanation] = {}

    def explain(src: str, dst: str, protocol: str, port: int) -> FlowExplanation:
        key = (src, dst, protocol, port)
        found = seen.get(key)
        if found is None:
            ends = [snapshot.pod(e) or e for e in (src, dst)]
            probe = Probe(port, ir.Protocol(protocol))
            found = seen[key] = explain_flow(policies, snapshot, ends[0], ends[1], probe, locate)
        return found

    return explain


def _reason(found: FlowExplanation) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``npc explain``'s lines (the verdict's reason, then each side's, indented as it
    prints them), and the policies they name: those isolating either side and those whose
    rules admit the flow."""
    lines = [s.rstrip() for s in found.text().splitlines()[1:] if s.strip()]
    lines[:1] = [s.strip() for s in lines[:1]]
    named: dict[str, None] = {}
    for family in found.families:
        for side in (family.egress, family.ingress):
            named.update((key, None) for key, _ in side.isolated_by)
            named.update((c.policy, None) for c in side.checks if c.admits)
    return tuple(lines), tuple(named)


def _verdict(row: TargetRow, explain: Explain) -> TargetVerdict:
    report = row.report
    unverified = TargetVerdict(
        row.target,
        "refused" if row.refused else "not verified",
        len(row.output),
        row.lines,
        row.size,
        row.refused,
        row.note,
        "",
        0,
        0,
        (),
        (),
        row.objects,
        row.objects_are,
        row.rules,
        row.rules_are,
    )
    if report is None:
        return unverified
    output = {name: text.splitlines() for name, text in row.output} if report.differences else {}
    ordered = sorted(report.differences, key=lambda d: (not d.widening, d))
    groups: dict[tuple[bool, str | None, str], int] = {}
    for d in ordered:
        key = (d.widening, d.rule, "" if d.rule else d.note)
        groups[key] = groups.get(key, 0) + 1
    rules = tuple(
        RuleGroup(widening, rule, _line_of(output, rule), note, flows)
        for (widening, rule, note), flows in sorted(
            groups.items(), key=lambda g: (not g[0][0], -g[1], g[0][1] or "", g[0][2])
        )[:MAX_RULES]
    )
    shown = []
    for d in ordered[:MAX_DIFFERENCES]:
        reason, policies = _reason(explain(d.src, d.dst, d.protocol, d.port))
        shown.append(Counterexample(d, _line_of(output, d.rule), reason, policies))
    where = f" on node {report.node}" if report.node else ""
    checked = (
        f"{report.pod_flows:,} pod-to-pod and {report.outside_flows:,} outside flows over "
        f"{plural(len(report.probes), 'probe')} and "
        f"{plural(len(report.outside), 'outside address', 'outside addresses')}{where}"
    )
    return replace(
        unverified,
        verdict="equivalent" if report.equivalent else "not equivalent",
        checked=checked,
        differences_total=len(ordered),
        widening=sum(d.widening for d in ordered),
        rules=rules,
        shown=tuple(shown),
    )


def target_verdicts(
    compared: CompareReport, policies: ir.PolicySet, snapshot: Snapshot, locate: Locator
) -> tuple[tuple[TargetVerdict, ...], tuple[Disagreement, ...]]:
    """Each target's verdict (counterexamples explained against ``policies`` over
    ``snapshot``), and every flow on which the verified targets disagree."""
    explain = _explainer(policies, snapshot, locate)
    return tuple(_verdict(r, explain) for r in compared.rows), compared.disagreements


@dataclass(frozen=True, slots=True)
class ChangedPair:
    """The changed flows of one kind between one source and one destination."""

    src: str
    dst: str
    opened: bool
    probes: tuple[str, ...]


def _pairs(changes: Sequence[Change]) -> tuple[ChangedPair, ...]:
    by_pair: dict[tuple[str, str], list[str]] = {}
    for c in changes:
        by_pair.setdefault((c.src, c.dst), []).append(f"{c.port}/{c.protocol}")
    return tuple(
        ChangedPair(src, dst, changes[0].opened, tuple(probes))
        for (src, dst), probes in by_pair.items()
    )


def targets_section(
    compared: CompareReport, policies: ir.PolicySet, snapshot: Snapshot, locate: Locator
) -> Section:
    """Every target's verdict on its own output, with counterexamples (see the module doc)."""
    verdicts, disagreements = target_verdicts(compared, policies, snapshot, locate)
    counts: dict[str, list[str]] = {}
    for v in verdicts:
        counts.setdefault(v.verdict, []).append(v.target)
    summary = [
        "; ".join(f"{verdict}: {', '.join(names)}" for verdict, names in sorted(counts.items()))
        + "."
    ]
    for v in verdicts:
        if v.differences_total:
            summary.append(
                f"{v.target}: {plural(v.differences_total, 'flow')} differ from the policies "
                f"({v.widening:,} widening, {v.narrowing:,} narrowing)"
                + (
                    f"; the first {MAX_DIFFERENCES} are listed."
                    if v.differences_total > MAX_DIFFERENCES
                    else "."
                )
            )
    summary.append(
        f"{plural(len(disagreements), 'flow')} on which the verified targets disagree"
        + (
            f"; the first {MAX_DISAGREEMENTS} are listed."
            if len(disagreements) > MAX_DISAGREEMENTS
            else "."
        )
    )
    shown = disagreements[:MAX_DISAGREEMENTS]
    linked = sorted({k for v in verdicts for c in v.shown for k in c.policies})
    return Section(
        "targets",
        "Targets: does each one enforce the policies?",
        tuple(summary),
        "section_targets.html.j2",
        {
            "verdicts": verdicts,
            "disagreements": shown,
            "total": len(disagreements),
            "max_differences": MAX_DIFFERENCES,
        },
        {
            "targets": [v.to_json() for v in verdicts],
            "disagreements": [d.to_json() for d in shown],
            "disagreements_total": len(disagreements),
            "max_differences": MAX_DIFFERENCES,
            "max_disagreements": MAX_DISAGREEMENTS,
        },
        tuple(linked),
    )


def change_edges(graph: ReachGraph, changes: DiffReport) -> tuple[ChangeEdge, ...]:
    """The changed flows between pods, as edges between the graph's nodes (at most
    :data:`MAX_CHANGE_EDGES`, opened first; none when the graph is not drawn). Flows to and
    from outside addresses are not drawn: the graph's address nodes are its rules'."""
    if graph.omitted is not None:
        return ()
    node_of = {pod: n.id for n in graph.nodes for pod in n.pods}
    found: dict[tuple[bool, str, str], list[str]] = {}
    for c in changes.differences:
        ends = node_of.get(c.src), node_of.get(c.dst)
        if ends[0] is not None and ends[1] is not None:
            probes = found.setdefault((not c.opened, ends[0], ends[1]), [])
            probe = f"{c.port}/{c.protocol}"
            if probe not in probes:
                probes.append(probe)
    edges = []
    for (closed, src, dst), probes in sorted(found.items())[:MAX_CHANGE_EDGES]:
        named = ", ".join(probes[:_PORTS_NAMED])
        more = len(probes) - _PORTS_NAMED
        edges.append(ChangeEdge(src, dst, not closed, named + (f" +{more}" if more > 0 else "")))
    return tuple(edges)


def diff_section(
    changes: DiffReport, against: Sequence[str], drawn: Sequence[ChangeEdge] = ()
) -> Section:
    """The flows that change from the policies of ``against`` (before) to the report's own
    (after): opened and closed, each kind at most :data:`MAX_CHANGES`; ``drawn``: the
    edges :func:`change_edges` drew over the graph."""
    opened = [d for d in changes.differences if d.opened]
    closed = [d for d in changes.differences if not d.opened]
    summary = [
        f"From the policies of {', '.join(against)} (before) to this report's (after): "
        + (
            f"{plural(len(changes.differences), 'flow')} change, {len(opened):,} opened "
            f"(denied before, allowed now) and {len(closed):,} closed (allowed before, "
            "denied now)."
            if changes.changed
            else "no flow changes its verdict."
        ),
        f"Checked over {plural(len(changes.probes), 'probe')} and "
        f"{plural(len(changes.outside), 'outside address', 'outside addresses')}, as "
        "`npc diff -f BEFORE --against AFTER` does.",
    ]
    if drawn:
        summary.append(
            f"The graph shows {plural(len(drawn), 'dashed edge')} between classes of pods, "
            "green where the change opens flows and red where it closes them"
            + (f" (at most {MAX_CHANGE_EDGES})." if len(drawn) >= MAX_CHANGE_EDGES else ".")
        )
    for name, items in (("opened", opened), ("closed", closed)):
        if len(items) > MAX_CHANGES:
            summary.append(
                f"The first {MAX_CHANGES:,} of the {len(items):,} {name} flows are listed "
                f"(at most {MAX_CHANGES})."
            )
    data = {
        "opened": _pairs(opened[:MAX_CHANGES]),
        "closed": _pairs(closed[:MAX_CHANGES]),
        "opened_total": len(opened),
        "closed_total": len(closed),
        "max_changes": MAX_CHANGES,
    }
    return Section(
        "diff",
        "Change: flows opened and closed",
        tuple(summary),
        "section_diff.html.j2",
        data,
        {
            "against": list(against),
            "opened_total": len(opened),
            "closed_total": len(closed),
            "opened": [c.to_json() for c in opened[:MAX_CHANGES]],
            "closed": [c.to_json() for c in closed[:MAX_CHANGES]],
            "max_changes": MAX_CHANGES,
            "graph_edges": [
                {"from": e.source, "to": e.target, "opened": e.opened, "ports": e.ports}
                for e in drawn
            ],
        },
    )
