"""``npc report``: one self-contained HTML page (or its data as JSON) about what the policies
do to a cluster snapshot, with each target's verdict (``--targets``) and what a change
opens and closes (``--against``)."""

from __future__ import annotations

from dataclasses import replace

import click

from npc.api import compare, diff, lint
from npc.cli.app import (
    COMPARE_SETTINGS,
    cli,
    cni_option,
    load_inputs,
    print_diagnostics,
    settings_options,
    write_output,
)
from npc.cli.cmd_compare import target_names
from npc.cli.cmd_reach import prepare, query_options
from npc.targets import REGISTRY

_EPILOG = """\b
Examples:
  npc report -f examples/testing/ -o testing.html
  npc report -f policies/ -f cluster.yaml --from shop/ -o shop.html
  npc report -f policies/ -f cluster.yaml --targets nft,calico -o report.html
  git show main:policies.yaml > /tmp/before.yaml && \\
      npc report -f policies.yaml -f cluster.yaml --against /tmp/before.yaml -o change.html
  npc report -f policies/ -f cluster.yaml -o report.json       (the same data, for scripts)
"""


@cli.command("report", epilog=_EPILOG)
@query_options
@click.option("--to", "to_text", metavar="SELECTOR", help="Graph destinations only.")
@cni_option
@click.option(
    "--targets",
    metavar="T1,T2,...",
    help="Compile for these targets, verify each output with its judge and show the verdicts "
    "with counterexamples (as `npc compare`; targets with a judge: "
    + ", ".join(sorted(t.name for t in REGISTRY.values() if t.reader))
    + ").",
)
@settings_options(COMPARE_SETTINGS)
@click.option(
    "--against",
    "against",
    multiple=True,
    metavar="PATH",
    help="The policies before a change (files or directories, repeatable): show the flows "
    "that change from them to the -f policies, opened and closed (what `npc diff -f PATH "
    "--against <the -f policies>` lists), over the -f snapshot.",
)
@click.option(
    "-o",
    "--output",
    "output",
    required=True,
    metavar="PATH",
    help="Write the report here (atomically), or - for stdout.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["html", "json"]),
    help="html (one file that loads nothing) or json; default: json when PATH ends in "
    ".json, else html.",
)
def report_command(
    paths: tuple[str, ...],
    ports: tuple[str, ...],
    from_text: str | None,
    to_text: str | None,
    cni: str | None,
    targets: str | None,
    against: tuple[str, ...],
    output: str,
    fmt: str | None,
    target_settings: dict[str, str],
) -> None:
    """Write a report: the graph of who may connect to whom, per namespace what is isolated
    and what is open (and which policies make it so), `npc lint`'s findings, every policy
    rule by rule; with --targets, whether each target's output enforces the policies
    (counterexamples explained, and the flows targets disagree on); with --against, the
    flows a change opens and closes (the -f policies are the new ones, --against the old).

    The HTML page is self-contained (inline CSS and SVG, no external script, nothing fetched)
    and bounded in size: summaries first, details folded, long lists cut at a stated bound.
    Drawing the graph needs Graphviz's `dot` (a graph too large to draw is described instead).
    """
    # Imported here, not when npc starts: jinja2 and graphviz serve only this command.
    from npc.analysis.draw import inline_svg, render_svg  # noqa: PLC0415
    from npc.analysis.graph import ChangeEdge, build_graph, to_dot  # noqa: PLC0415
    from npc.analysis.report import (  # noqa: PLC0415
        Section,
        build_report,
        render_html,
        render_json,
    )
    from npc.analysis.report_verify import (  # noqa: PLC0415
        change_edges,
        diff_section,
        targets_section,
    )

    fmt = fmt or ("json" if output.endswith(".json") else "html")
    names = target_names(targets)
    bundle, reach, probes, sources, dests = prepare(paths, ports, from_text, to_text, "npc report")
    snapshot = reach.snapshot
    graph = build_graph(reach, probes, sources, dests, bundle.locate)
    extra: list[Section] = []
    if names:
        compared = compare(bundle, names, target_settings)
        extra.append(targets_section(compared, bundle.policies, snapshot, bundle.locate))
    drawn: tuple[ChangeEdge, ...] = ()
    if against:
        before = load_inputs(against)
        print_diagnostics(before.diagnostics)
        # Over the report's snapshot: a snapshot among the --against files is not used.
        changes = diff(replace(before, snapshot=None), bundle)
        drawn = change_edges(graph, changes)
        extra.append(diff_section(changes, against, drawn))
    svg = None
    if fmt == "html" and graph.omitted is None:
        svg = inline_svg(render_svg(to_dot(graph, drawn)))
    findings = lint(bundle, cni=cni)
    report = build_report(
        reach, graph, svg, bundle.locate, paths, findings, extra, changes=bool(drawn)
    )
    write_output(output, render_html(report) if fmt == "html" else render_json(report))
