"""``npc apply``: compile, then load the result into the enforcement point, atomically."""

from __future__ import annotations

import click

from npc.api import compile as compile_policies
from npc.backends import REGISTRY, available, get_backend
from npc.cli.app import cli, input_options, load_inputs, print_diagnostics

_EPILOG = """\b
Examples:
  npc apply --target nft -f policies/ -f cluster.yaml --dry-run
  npc apply --target nft -f policies/ -f cluster.yaml --node "$(hostname)"
  ip netns exec router npc apply --target nft -f policies/ -f cluster.yaml
"""


@cli.command("apply", epilog=_EPILOG)
@input_options
@click.option(
    "-t",
    "--target",
    required=True,
    metavar="TARGET",
    help=f"Target to apply (one npc can load): {', '.join(available())}.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Only check the compiled ruleset with the enforcement point; change nothing.",
)
@click.option("--no-optimize", is_flag=True, help="Apply the IR as read, without optimizer passes.")
@click.option("--table", metavar="NAME", help="nft/iptables: name of the table or chain prefix.")
@click.option("--node", metavar="NAME", help="Only the pods on this node (a per-node agent).")
def apply_command(
    paths: tuple[str, ...],
    target: str,
    dry_run: bool,
    no_optimize: bool,
    table: str | None,
    node: str | None,
) -> None:
    """Compile NetworkPolicy and load it into the local enforcement point.

    The load is atomic: when it fails, the previous ruleset stays in place and the error is
    reported with the offending line of the generated ruleset. Exit status 2 for invalid
    input or a feature the target cannot express, 1 when the enforcement point refuses.
    """
    if target not in REGISTRY:
        raise click.BadParameter(
            f"unknown target {target!r}; available: {', '.join(available())}",
            param_hint="'--target'",
        )
    backend = get_backend(target)
    backend.check_can_apply()
    options = backend.make_options({"table": table, "node": node})
    bundle = load_inputs(paths)
    artifact = compile_policies(bundle, target, options, optimize_ir=not no_optimize)
    print_diagnostics(artifact.diagnostics)
    applied = backend.apply(artifact.text, options, dry_run=dry_run)
    click.echo(applied.summary)
