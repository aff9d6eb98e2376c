"""``npc diff``: the flows a policy change opens and closes (exit 1 when any does)."""

from __future__ import annotations

import click

from npc.analysis.verify_format import diff_text
from npc.api import diff
from npc.cli.app import cli, input_options, load_inputs, print_diagnostics
from npc.cli.cmd_verify import FORMATS, echo_report

__all__ = ["diff_command"]

_EPILOG = """\b
Examples:
  npc diff -f old/ --against new/ -f cluster.yaml
  git show main:policies.yaml > /tmp/old.yaml && \\
      npc diff -f /tmp/old.yaml -f cluster.yaml --against policies.yaml -o json
"""


@cli.command("diff", epilog=_EPILOG)
@input_options
@click.option(
    "--against", "against", multiple=True, required=True, metavar="PATH", help="The new policies."
)
@click.option(
    "-o", "--output", "fmt", type=click.Choice(FORMATS), default="text", show_default=True
)
@click.pass_context
def diff_command(
    ctx: click.Context, paths: tuple[str, ...], against: tuple[str, ...], fmt: str
) -> None:
    """List the flows whose verdict changes from the -f policies to the --against ones.

    Judged by the Kubernetes spec over the cluster snapshot (given with either side):
    every pod pair, port and ipBlock boundary. Exit status 0 when nothing changes, 1 when
    something does (for CI on a pull request), 2 on bad input.
    """
    old = load_inputs(paths)
    new = load_inputs(against)
    print_diagnostics(old.diagnostics + new.diagnostics)
    report = diff(old, new)
    header = ("from", "to", "protocol", "port", "old", "new")
    rows = [(d.src, d.dst, d.protocol, d.port, d.old, d.new) for d in report.differences]
    echo_report(fmt, report.to_json(), header, rows, lambda: diff_text(report))
    ctx.exit(1 if report.changed else 0)
