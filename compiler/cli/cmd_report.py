"""``npc report``: one self-contained HTML page (or its data as JSON) about what the policies
do to a cluster snapshot."""

from __future__ import annotations

import click

from npc.api import lint
from npc.cli.app import cli, cni_option, write_output
from npc.cli.cmd_reach import prepare, query_options

_EPILOG = """\b
Examples:
  npc report -f examples/testing/ -o testing.html
  npc report -f policies/ -f cluster.yaml --from shop/ -o shop.html
  npc report -f policies/ -f cluster.yaml -o report.json       (the same data, for scripts)
"""


@cli.command("report", epilog=_EPILOG)
@query_options
@click.option("--to", "to_text", metavar="SELECTOR", help="Graph destinations only.")
@cni_option
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
    output: str,
    fmt: str | None,
) -> None:
    """Write a report: the graph of who may connect to whom, per namespace what is isolated
    and what is open (and which policies make it so), `npc lint`'s findings, every policy
    rule by rule.

    The HTML page is self-contained (inline CSS and SVG, no external script, nothing fetched)
    and bounded in size: summaries first, details folded, long lists cut at a stated bound.
    Drawing the graph needs Graphviz's `dot` (a graph too large to draw is described instead).
    """
    # Imported here, not when npc starts: jinja2 and graphviz serve only this command.
    from npc.analysis.draw import inline_svg, render_svg  # noqa: PLC0415
    from npc.analysis.graph import build_graph, to_dot  # noqa: PLC0415
    from npc.analysis.report import build_report, render_html, render_json  # noqa: PLC0415

    fmt = fmt or ("json" if output.endswith(".json") else "html")
    bundle, reach, probes, sources, targets = prepare(
        paths, ports, from_text, to_text, "npc report"
    )
    graph = build_graph(reach, probes, sources, targets, bundle.locate)
    svg = None
    if fmt == "html" and graph.omitted is None:
        svg = inline_svg(render_svg(to_dot(graph)))
    findings = lint(bundle, cni=cni)
    report = build_report(reach, graph, svg, bundle.locate, paths, findings)
    write_output(output, render_html(report) if fmt == "html" else render_json(report))
