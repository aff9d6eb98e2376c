"""``npc report``: one self-contained HTML page (and the same data as JSON) about what a set
of policies does to a cluster.

A report is an ordered tuple of :class:`Section`; each section is built by a function that
takes the data it shows (:func:`graph_section` a :class:`~npc.analysis.graph.ReachGraph`
and its SVG, :func:`namespaces_section` the per-namespace isolation, :func:`lint_section`
``npc lint``'s findings, :func:`policies_section` the policies rule by rule) and names the
template that draws it; sections for other analyses are one function and one template
each, passed to :func:`build_report` as ``extra`` (:mod:`npc.analysis.report_verify`: the
targets' verdicts, ``--targets``, and the flows a change opens and closes, ``--against``).
Summaries come first, details sit in ``<details>``; every list is cut at a stated bound
(:data:`MAX_NAMESPACES`, :data:`MAX_CLASSES`, :data:`MAX_FINDINGS`, :data:`MAX_POLICIES`)
so the page stays usable at 10,000 pods.

The page loads nothing: CSS and SVG are inline, its one script is inline, and its Content
Security Policy forbids every fetch. Output is deterministic (no timestamps, sorted lists).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import jinja2

from npc import ir
from npc.analysis.explain import explain_policy
from npc.analysis.graph import Locator, ReachGraph, class_label, rule_anchor, selected_keys
from npc.analysis.lint import Finding
from npc.analysis.reach import Reach
from npc.analysis.semantics import Semantics
from npc.errors import Severity
from npc.snapshot import Pod
from npc.wording import plural

__all__ = [
    "MAX_CLASSES",
    "MAX_FINDINGS",
    "MAX_NAMESPACES",
    "MAX_POLICIES",
    "ClassRow",
    "NamespaceRow",
    "PolicyEntry",
    "Report",
    "RuleEntry",
    "Section",
    "build_report",
    "graph_section",
    "lint_section",
    "namespaces_section",
    "policies_section",
    "render_html",
    "render_json",
]

#: Namespaces listed (summary rows and details), classes shown per namespace, policies shown.
MAX_NAMESPACES = 200
MAX_CLASSES = 50
MAX_POLICIES = 500
#: Lint findings listed.
MAX_FINDINGS = 500


@dataclass(frozen=True, slots=True)
class Section:
    """One part of the report: an anchor id, a title, summary lines shown first, the
    template (in ``npc/analysis/templates/``) that draws ``data``, ``data`` as JSON, and
    the keys of the policies it links to (the policies section lists every one)."""

    id: str
    title: str
    summary: tuple[str, ...]
    template: str
    data: Any
    json: dict[str, Any] = field(default_factory=dict)
    policies: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ClassRow:
    """Pods of one class in a namespace, and who isolates them in each direction."""

    label: str
    pods: tuple[str, ...]
    ingress: tuple[str, ...]  # isolating policies (``namespace/name``); empty: open
    egress: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "pods": list(self.pods),
            "ingress_isolated_by": list(self.ingress),
            "egress_isolated_by": list(self.egress),
        }


@dataclass(frozen=True, slots=True)
class NamespaceRow:
    """One namespace: its pods, how many are isolated per direction, its policies and its
    classes (at most :data:`MAX_CLASSES`; ``classes_total`` counts them all)."""

    name: str
    pods: int
    ingress_isolated: int
    egress_isolated: int
    policies: tuple[str, ...]
    classes: tuple[ClassRow, ...]
    classes_total: int

    def to_json(self) -> dict[str, Any]:
        return {
            "namespace": self.name,
            "pods": self.pods,
            "ingress_isolated_pods": self.ingress_isolated,
            "egress_isolated_pods": self.egress_isolated,
            "policies": list(self.policies),
            "classes": [c.to_json() for c in self.classes],
            "classes_total": self.classes_total,
        }


@dataclass(frozen=True, slots=True)
class RuleEntry:
    """A rule of a policy: its anchor in the page, field path, position and statements."""

    anchor: str
    path: str
    location: str | None
    statements: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"rule": self.path, "location": self.location, "statements": list(self.statements)}


@dataclass(frozen=True, slots=True)
class PolicyEntry:
    """A policy: what it isolates, how many pods it selects, and its rules."""

    key: str
    location: str | None
    isolation: str
    selects: int
    rules: tuple[RuleEntry, ...]

    @property
    def anchor(self) -> str:
        return f"p-{self.key}"

    def to_json(self) -> dict[str, Any]:
        return {
            "policy": self.key,
            "location": self.location,
            "isolation": self.isolation,
            "selected_pods": self.selects,
            "rules": [r.to_json() for r in self.rules],
        }


@dataclass(frozen=True, slots=True)
class Report:
    """The whole report: a title, the inputs, sizes, and the sections in page order."""

    title: str
    inputs: tuple[str, ...]
    sizes: tuple[tuple[str, int], ...]  # namespaces, pods, classes (of pods), policies
    probes: tuple[str, ...]
    sections: tuple[Section, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "inputs": list(self.inputs),
            "sizes": dict(self.sizes),
            "probes": list(self.probes),
            "sections": {
                s.id: {"title": s.title, "summary": list(s.summary), **s.json}
                for s in self.sections
            },
        }


# -- sections ---------------------------------------------------------------------------------


def graph_section(graph: ReachGraph, svg: str | None, changes: bool = False) -> Section:
    """The graph (inline SVG, or why it is not drawn) and its edges, each with its rules;
    ``changes``: the SVG also draws a change's opened and closed flows (the legend says so)."""
    pods = sum(len(n.pods) for n in graph.nodes)
    summary = [
        f"{plural(len(graph.nodes), 'node')} ({plural(pods, 'pod')}) and "
        f"{plural(len(graph.edges), 'edge')}, probed on "
        + (", ".join(str(p) for p in graph.probes) or "no port")
    ]
    if graph.omitted is not None:
        summary.append(f"Not drawn: {graph.omitted}.")
    data = {"graph": graph, "svg": svg, "changes": changes}  # Graphviz's SVG, inlined
    return Section(
        "graph",
        "Who may connect to whom",
        tuple(summary),
        "section_graph.html.j2",
        data,
        {"graph": graph.to_json()},
    )


def namespaces_section(rows: Sequence[NamespaceRow], total: int) -> Section:
    """Per namespace, what is isolated and what is open, with the policies that make it so
    (``total`` namespaces, of which ``rows`` are shown)."""
    pods = sum(r.pods for r in rows)
    ingress = sum(r.ingress_isolated for r in rows)
    egress = sum(r.egress_isolated for r in rows)
    summary = [
        f"{plural(total, 'namespace')}; of the {plural(pods, 'pod')} listed, "
        f"{ingress:,} isolated for ingress and {egress:,} for egress "
        f"({pods - ingress:,} accept every connection, {pods - egress:,} may open any)."
    ]
    if total > len(rows):
        summary.append(f"The first {len(rows):,} namespaces are listed (at most {MAX_NAMESPACES}).")
    return Section(
        "namespaces",
        "Namespaces: isolated and open",
        tuple(summary),
        "section_namespaces.html.j2",
        {"rows": rows, "max_classes": MAX_CLASSES},
        {"namespaces": [r.to_json() for r in rows], "namespaces_total": total},
    )


def lint_section(findings: Sequence[Finding], policies: Sequence[str]) -> Section:
    """``npc lint``'s findings (:func:`npc.lint`), at most :data:`MAX_FINDINGS`, each with
    its file position and a link to its policy when the report lists it (``policies``)."""
    warnings = sum(f.severity is not Severity.INFO for f in findings)
    codes: dict[str, int] = {}
    for f in findings:
        codes[str(f.code)] = codes.get(str(f.code), 0) + 1
    summary = [
        f"{plural(warnings, 'warning')} and {plural(len(findings) - warnings, 'note')}"
        + (": " + ", ".join(f"{n:,} {c}" for c, n in sorted(codes.items())) if codes else ".")
    ]
    shown = tuple(findings[:MAX_FINDINGS])
    if len(findings) > len(shown):
        summary.append(f"The first {len(shown):,} are listed (at most {MAX_FINDINGS}).")
    data = {"findings": shown, "linked": frozenset(policies)}
    return Section(
        "lint",
        "Lint: probable mistakes",
        tuple(summary),
        "section_lint.html.j2",
        data,
        {"findings": [f.to_json() for f in shown], "findings_total": len(findings)},
    )


def policies_section(entries: Sequence[PolicyEntry], total: int) -> Section:
    """The policies, rule by rule with file positions (the targets of the graph's links)."""
    summary = [f"{plural(total, 'policy')}, each with its rules and where they are written."]
    if total > len(entries):
        summary.append(
            f"{len(entries):,} are listed (at most {MAX_POLICIES}, and every policy a link of "
            "this page points to)."
        )
    return Section(
        "policies",
        "Policies",
        tuple(summary),
        "section_policies.html.j2",
        {"entries": entries},
        {"policies": [e.to_json() for e in entries], "policies_total": total},
    )


# -- building -------------------------------------------------------------------------------


def _namespace_rows(reach: Reach, sem: Semantics) -> list[NamespaceRow]:
    keys = selected_keys(reach.policies)
    by_ns: dict[str, dict[int, list[Pod]]] = {}
    for pod in sorted(reach.pods, key=lambda p: p.key):
        by_ns.setdefault(pod.namespace, {}).setdefault(reach.class_of(pod).index, []).append(pod)
    policies: dict[str, list[str]] = {}
    for p in reach.policies:
        policies.setdefault(p.namespace, []).append(p.key)
    rows = []
    for name in sorted(by_ns)[:MAX_NAMESPACES]:
        classes = []
        ingress = egress = 0
        for members in sorted(by_ns[name].values(), key=lambda m: m[0].key):
            rep = members[0]
            inc = tuple(p.key for p in sem.isolating(rep, "ingress"))
            out = tuple(p.key for p in sem.isolating(rep, "egress"))
            ingress += len(members) if inc else 0
            egress += len(members) if out else 0
            pods = tuple(p.key for p in members)
            classes.append(ClassRow(class_label(members, keys), pods, inc, out))
        rows.append(
            NamespaceRow(
                name,
                sum(len(k) for k in by_ns[name].values()),
                ingress,
                egress,
                tuple(policies.get(name, ())),
                tuple(classes[:MAX_CLASSES]),
                len(classes),
            )
        )
    return rows


def _policy_entry(reach: Reach, policy: ir.Policy, locate: Locator) -> PolicyEntry:
    explanation = explain_policy(policy, None, locate)
    by_rule: dict[str, list[str]] = {}
    for st in explanation.statements[1:]:
        if st.rule is not None:
            by_rule.setdefault(".".join(st.rule.split(".")[:2]), []).append(st.text)
    rules = []
    for direction in ("ingress", "egress"):
        for i, rule in enumerate(policy.rules(direction) or ()):
            path = f"spec.{direction}[{i}]"
            location = locate(rule.origin)
            rules.append(
                RuleEntry(
                    rule_anchor(policy.key, direction, i),
                    path,
                    str(location) if location else None,
                    tuple(by_rule.get(path, ())),
                )
            )
    return PolicyEntry(
        policy.key,
        explanation.location,
        explanation.statements[0].text,
        len(reach.resolver.selected(policy)),
        tuple(rules),
    )


def build_report(
    reach: Reach,
    graph: ReachGraph,
    svg: str | None,
    locate: Locator,
    inputs: Sequence[str] = (),
    findings: Sequence[Finding] | None = None,
    extra: Sequence[Section] = (),
    changes: bool = False,
) -> Report:
    """The report of ``reach`` (policies over a snapshot) with its ``graph`` drawn as
    ``svg`` (None: not drawn), and lint ``findings`` when given (None: no lint section);
    ``extra`` sections come next, then the policies (every policy a section links to is
    listed). ``changes``: the SVG draws a change's flows too (:func:`graph_section`)."""
    sem = Semantics(reach.policies, reach.snapshot)
    namespaces = sorted({p.namespace for p in reach.pods})
    rows = _namespace_rows(reach, sem)
    linked = {r.policy for e in graph.edges for r in e.rules}
    linked |= {f.policy for f in (findings or ())[:MAX_FINDINGS] if f.policy}
    linked |= {key for section in extra for key in section.policies}
    all_policies = list(reach.policies)
    shown = [p for i, p in enumerate(all_policies) if i < MAX_POLICIES or p.key in linked]
    entries = [_policy_entry(reach, p, locate) for p in shown]
    sizes = (
        ("namespaces", len(namespaces)),
        ("pods", len(reach.pods)),
        ("classes", len(reach.classes)),
        ("policies", len(all_policies)),
    )
    sections = (
        graph_section(graph, svg, changes),
        namespaces_section(rows, len(namespaces)),
        *([lint_section(findings, [e.key for e in entries])] if findings is not None else []),
        *extra,
        policies_section(entries, len(all_policies)),
    )
    probes = tuple(str(p) for p in graph.probes)
    return Report("npc report", tuple(inputs), sizes, probes, sections)


# -- rendering --------------------------------------------------------------------------------


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("npc.analysis", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["plural"] = plural
    return env


def render_html(report: Report) -> str:
    """The report as one HTML page that loads nothing from anywhere."""
    return _environment().get_template("report.html.j2").render(report=report)


def render_json(report: Report) -> str:
    """The report's data as JSON (sorted keys, two-space indent, a final newline)."""
    return json.dumps(report.to_json(), sort_keys=True, indent=2) + "\n"
