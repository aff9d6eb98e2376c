"""``npc compile``: policies in, a target's ruleset out."""

from __future__ import annotations

import click

from npc.api import compile as compile_policies
from npc.backends import REGISTRY, available
from npc.cli.app import cli, input_options, load_inputs, print_diagnostics, write_output

_EPILOG = """\b
Examples:
  npc compile --target ir -f policies/
  npc compile --target nft -f policies/ -f cluster.yaml -o ruleset.nft
  npc compile --target nft -f policies/ -f cluster.yaml --node worker-1
"""


@cli.command("compile", epilog=_EPILOG)
@input_options
@click.option(
    "-t",
    "--target",
    required=True,
    metavar="TARGET",
    help=f"Target to emit: {', '.join(available())}.",
)
@click.option("-o", "--output", metavar="PATH", help="Write here (atomically) instead of stdout.")
@click.option("--no-optimize", is_flag=True, help="Emit the IR as read, without optimizer passes.")
@click.option("--table", metavar="NAME", help="nft/iptables: name of the table or chain prefix.")
@click.option("--node", metavar="NAME", help="Only the pods on this node (a per-node agent).")
@click.option(
    "--calico-scope",
    type=click.Choice(["global", "namespaced"]),
    help="calico: GlobalNetworkPolicy (default) or Calico's namespaced NetworkPolicy.",
)
def compile_command(
    paths: tuple[str, ...],
    target: str,
    output: str | None,
    no_optimize: bool,
    table: str | None,
    node: str | None,
    calico_scope: str | None,
) -> None:
    """Compile NetworkPolicy for an enforcement point.

    Nothing is written when any error is found; exit status 2 for invalid input or for a
    feature the target cannot express.
    """
    if target not in REGISTRY:
        raise click.BadParameter(
            f"unknown target {target!r}; available: {', '.join(available())}",
            param_hint="'--target'",
        )
    bundle = load_inputs(paths)
    settings = {"table": table, "node": node, "calico_scope": calico_scope}
    artifact = compile_policies(bundle, target, settings, optimize_ir=not no_optimize)
    print_diagnostics(artifact.diagnostics)
    write_output(output, artifact.text)
