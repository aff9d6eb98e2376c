"""``npc compile``: policies in, a target's ruleset out."""

from __future__ import annotations

import click

from npc.api import compile as compile_policies
from npc.cli.app import (
    cli,
    input_options,
    load_inputs,
    print_diagnostics,
    target_options,
    write_output,
)

_EPILOG = """\b
Examples:
  npc compile --target ir -f policies/
  npc compile --target nft -f policies/ -f cluster.yaml -o ruleset.nft
  npc compile --target nft -f policies/ -f cluster.yaml --node worker-1
  npc compile --target iptables -f policies/ -f cluster.yaml -o rules   (+ rules.ipset)
"""


def _output_path(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    # An empty path would otherwise reach the atomic rename as "." (EBUSY, exit 1).
    if value == "":
        raise click.BadParameter("an empty path; give a file name, or - for stdout")
    return value


@cli.command("compile", epilog=_EPILOG)
@input_options
@target_options("emit")
@click.option(
    "-o",
    "--output",
    metavar="PATH",
    callback=_output_path,
    help="Write here (atomically) instead of stdout.",
)
def compile_command(
    paths: tuple[str, ...],
    target: str,
    output: str | None,
    no_optimize: bool,
    target_settings: dict[str, str | None],
) -> None:
    """Compile NetworkPolicy for an enforcement point.

    Nothing is written when any error is found; exit status 2 for invalid input or for a
    feature the target cannot express.
    """
    bundle = load_inputs(paths)
    artifact = compile_policies(bundle, target, target_settings, optimize_ir=not no_optimize)
    print_diagnostics(artifact.diagnostics)
    write_output(output, artifact.text, artifact.files)
