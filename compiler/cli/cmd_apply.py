"""``npc apply``: compile, then load the result into the enforcement point, atomically."""

from __future__ import annotations

import click

from npc.api import apply
from npc.cli.app import cli, input_options, load_inputs, print_diagnostics, target_options
from npc.targets import check_can_apply

_EPILOG = """\b
Examples:
  npc apply --target nft -f policies/ -f cluster.yaml --dry-run
  npc apply --target nft -f policies/ -f cluster.yaml --node "$(hostname)"
  ip netns exec router npc apply --target nft -f policies/ -f cluster.yaml
  npc apply --target iptables -f policies/ -f cluster.yaml --variant legacy
"""


@cli.command("apply", epilog=_EPILOG)
@input_options
@target_options("apply")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Only check the compiled ruleset with the enforcement point; change nothing.",
)
def apply_command(
    paths: tuple[str, ...],
    target: str,
    dry_run: bool,
    no_optimize: bool,
    target_settings: dict[str, str | None],
) -> None:
    """Compile NetworkPolicy and load it into the local enforcement point.

    The load is atomic: when it fails, the previous ruleset stays in place and the error is
    reported with the offending line of the generated ruleset. Exit status 2 for invalid
    input or a feature the target cannot express, 1 when the enforcement point refuses.
    """
    check_can_apply(target)  # before reading any input
    bundle = load_inputs(paths)
    artifact, applied = apply(
        bundle, target, target_settings, dry_run=dry_run, optimize_ir=not no_optimize
    )
    print_diagnostics(artifact.diagnostics)
    click.echo(applied.summary)
