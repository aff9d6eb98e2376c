"""``npc compare``: every target's output for the same policies, in one table."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from npc.api import compare
from npc.cli.app import (
    COMPARE_SETTINGS,
    cli,
    input_options,
    load_inputs,
    print_diagnostics,
    settings_options,
)
from npc.cli.cmd_verify import FORMATS, echo_report
from npc.targets import REGISTRY

if TYPE_CHECKING:
    from npc.analysis.compare import CompareReport

__all__ = ["compare_command", "target_names"]

_EPILOG = """\b
Examples:
  npc compare -f policies/ -f cluster.yaml
  npc compare -f policies/ -f cluster.yaml --targets nft,calico -o md
"""

_HEADER = (
    "target",
    "objects",
    "rules",
    "bytes",
    "lines",
    "refused",
    "equivalent",
    "differences",
    "note",
)


def _rows(report: CompareReport) -> list[tuple[object, ...]]:
    """One row per target; a target that refused emitted nothing (``-``), and its note is
    the first line of each refusal (``-o json`` has them whole, hints included)."""
    rows: list[tuple[object, ...]] = []
    for r in report.rows:
        emitted = not r.refused
        rows.append(
            (
                r.target,
                "-" if r.objects is None else r.objects,
                "-" if r.rules is None else r.rules,
                r.size if emitted else "-",
                r.lines if emitted else "-",
                len(r.refused),
                "-" if r.equivalent is None else r.equivalent,
                0 if r.report is None else len(r.report.differences),
                r.note or "; ".join(x.splitlines()[0] for x in r.refused if x),
            )
        )
    return rows


def _text(report: CompareReport) -> str:
    rows = [tuple(str(c) for c in _HEADER)] + [
        tuple("yes" if c is True else "no" if c is False else str(c) for c in row)
        for row in _rows(report)
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADER) - 1)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip()
        + ("  " + row[-1] if row[-1] else "")
        for row in rows
    ]
    for r in report.rows:
        if r.report is not None:
            for d in r.report.differences[:3]:
                lines.append(
                    f"  {r.target}: {d.src} -> {d.dst} on {d.port}/{d.protocol}: ruleset "
                    f"{'allows' if d.ruleset else 'denies'}, policies "
                    f"{'allow' if d.spec else 'deny'} ({d.rule or 'default'})"
                )
    dis = report.disagreements
    lines.append("")
    lines.append(f"{len(dis)} flows on which the targets disagree" + (":" if dis else ""))
    for flow in dis[:20]:
        lines.append(
            f"  {flow.src} -> {flow.dst} on {flow.port}/{flow.protocol}: allowed by "
            f"{', '.join(flow.allowed_by)}; denied by {', '.join(flow.denied_by)}"
        )
    if len(dis) > 20:
        lines.append(f"  ... and {len(dis) - 20} more (-o json lists every one)")
    counted = [r for r in report.rows if r.objects is not None]
    if counted:
        lines.append("")
        lines.append("objects and rules as each target counts them:")
        lines.extend(f"  {r.target}: {r.objects_are}; {r.rules_are}" for r in counted)
    return "\n".join(lines) + "\n"


def target_names(targets: str | None) -> list[str] | None:
    """``--targets T1,T2,...`` as a list of registered target names (None when not given);
    an unknown name is a usage error."""
    if not targets:
        return None
    names = [t.strip() for t in targets.split(",") if t.strip()]
    unknown = [t for t in names if t not in REGISTRY]
    if unknown:
        raise click.BadParameter(f"unknown target(s) {', '.join(unknown)}", param_hint="--targets")
    return names


@cli.command("compare", epilog=_EPILOG)
@input_options
@click.option(
    "--targets",
    metavar="T1,T2,...",
    help="Targets to compare (default: every target with a judge: "
    + ", ".join(sorted(t.name for t in REGISTRY.values() if t.reader))
    + ").",
)
@settings_options(COMPARE_SETTINGS)
@click.option(
    "-o", "--output", "fmt", type=click.Choice(FORMATS), default="text", show_default=True
)
@click.pass_context
def compare_command(
    ctx: click.Context,
    paths: tuple[str, ...],
    targets: str | None,
    fmt: str,
    target_settings: dict[str, str],
) -> None:
    """Compile the policies for each target, verify each output, and tabulate.

    One row per target: objects and rules emitted (as the target counts them: nft tables,
    chains, sets and maps; iptables chains and ipsets; Calico resources; security groups
    and their permissions), output size, features refused, equivalent to the policies or
    not (with counterexamples); then the flows on which targets disagree with each other.
    Exit status 0 when every target that compiled is equivalent, 1 otherwise. The settings
    given apply to the targets that take them (as for `npc compile`).
    """
    names = target_names(targets)
    bundle = load_inputs(paths)
    print_diagnostics(bundle.diagnostics)
    report = compare(bundle, names, target_settings)
    echo_report(fmt, report.to_json(), _HEADER, _rows(report), lambda: _text(report))
    ctx.exit(0 if all(r.equivalent is not False for r in report.rows) else 1)
