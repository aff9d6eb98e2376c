"""Text, CSV and Markdown forms of :mod:`.verify`, :mod:`.diff` and :mod:`.compare` reports
(JSON is each report's ``to_json``).

The text form of a verification groups differences by kind (widening, the ruleset allowing
what the spec denies, first: that is the dangerous kind) and by the rule that decided them,
and explains one example of each group: the judge's deciding rule and, on the spec side,
what ``npc explain`` says about the same flow.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the CLI imports this module at start; the reports come later
    from npc.analysis.diff import DiffReport
    from npc.analysis.verify import Difference, VerifyReport

__all__ = ["csv_rows", "diff_text", "markdown_table", "verify_text"]

#: Flows listed per group in the text form (JSON and CSV list every one).
SHOWN = 10

#: ``explain(src, dst, protocol, port)`` -> the spec's reason, as lines.
Explainer = Callable[[str, str, str, int], list[str]]


def _allowed(value: bool) -> str:
    return "allowed" if value else "denied"


def _flow(src: str, dst: str, protocol: str, port: int) -> str:
    return f"{src} -> {dst} on {port}/{protocol}"


def verify_text(report: VerifyReport, explain: Explainer) -> str:
    """Grouped differences, widening first, one explained example per group."""
    where = f" (node {report.node})" if report.node else ""
    checked = (
        f"{report.pod_flows} pod-to-pod and {report.outside_flows} outside flows over "
        f"{len(report.probes)} probes and {len(report.outside)} outside addresses"
    )
    if report.equivalent:
        return f"{report.target}{where}: equivalent to the policies ({checked} checked)\n"
    widening = [d for d in report.differences if d.widening]
    narrowing = [d for d in report.differences if not d.widening]
    lines = [
        f"{report.target}{where}: NOT equivalent: {len(report.differences)} flows differ "
        f"({len(widening)} widening, {len(narrowing)} narrowing; {checked} checked)"
    ]
    for title, items in (
        ("widening: the ruleset allows what the policies deny", widening),
        ("narrowing: the ruleset denies what the policies allow", narrowing),
    ):
        if not items:
            continue
        lines += ["", f"{title} ({len(items)} flows)"]
        groups: dict[tuple[str | None, str], list[Difference]] = {}
        for d in items:
            # One group per deciding rule; flows no rule decided group by the judge's words.
            groups.setdefault((d.rule, "" if d.rule else d.note), []).append(d)
        for n, ((rule, _), group) in enumerate(sorted(groups.items(), key=_group_order), 1):
            first = group[0]
            decided = rule or "no rule (a default)"
            flows = "1 flow" if len(group) == 1 else f"{len(group)} flows"
            lines.append(f"  {n}. {flows} decided by {decided}")
            lines.append(f"     e.g. {_flow(first.src, first.dst, first.protocol, first.port)}")
            lines.append(f"     ruleset: {_allowed(first.ruleset)} by {decided}")
            if first.note:
                lines.append(f"       {first.note}")
            spec = explain(first.src, first.dst, first.protocol, first.port)
            lines.append(f"     policies: {_allowed(first.spec)}: {spec[0] if spec else ''}")
            lines.extend(f"       {line}" for line in spec[1:])
            for d in group[1:SHOWN]:
                lines.append(f"     also {_flow(d.src, d.dst, d.protocol, d.port)}")
            if len(group) > SHOWN:
                lines.append(f"     ... and {len(group) - SHOWN} more (-o json lists every one)")
    return "\n".join(lines) + "\n"


def _group_order(item: tuple[tuple[str | None, str], list[Difference]]) -> tuple[int, str, str]:
    (rule, note), group = item
    return (-len(group), rule or "", note)


def diff_text(report: DiffReport) -> str:
    """Opened flows first, then closed ones."""
    if not report.changed:
        return (
            f"no change: every flow keeps its verdict ({len(report.probes)} probes, "
            f"{len(report.outside)} outside addresses)\n"
        )
    opened = [d for d in report.differences if d.opened]
    closed = [d for d in report.differences if not d.opened]
    lines = [f"{len(report.differences)} flows change ({len(opened)} opened, {len(closed)} closed)"]
    for title, items in (("opened (denied before, allowed now)", opened), ("closed", closed)):
        if items:
            lines += ["", f"{title}: {len(items)}"]
            lines += [f"  {_flow(d.src, d.dst, d.protocol, d.port)}" for d in items]
    return "\n".join(lines) + "\n"


def csv_rows(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """RFC 4180 CSV with a header line (booleans as true/false)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    return out.getvalue()


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub Markdown table (``|`` in cells escaped)."""

    def cell(v: object) -> str:
        return _cell(v).replace("|", "\\|")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _cell(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)
