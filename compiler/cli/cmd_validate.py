"""``npc validate``: check inputs as the API server would; print a one-line summary."""

from __future__ import annotations

import click

from npc.cli.app import cli, input_options, load_inputs, print_diagnostics
from npc.errors import Severity
from npc.wording import plural


@cli.command(
    epilog="\b\nExamples:\n  npc validate -f policies/\n  npc validate -f np.yaml -f cluster.yaml"
)
@input_options
def validate(paths: tuple[str, ...]) -> None:
    """Validate NetworkPolicy (and cluster snapshot) objects.

    Exit status 0 when valid, 2 when not; every problem is printed, compiler-style.
    """
    bundle = load_inputs(paths)
    print_diagnostics(bundle.diagnostics)
    policies = bundle.policies
    parts = [
        f"{plural(len(policies), 'policy')} in "
        f"{plural(len(policies.namespaces), 'namespace')}"
    ]
    if bundle.snapshot is not None:
        snap = bundle.snapshot
        parts.append(
            f"snapshot: {plural(len(snap.namespaces), 'namespace')}, "
            f"{plural(len(snap.pods), 'pod')}"
        )
    warnings = sum(1 for d in bundle.diagnostics if d.severity is Severity.WARNING)
    if warnings:
        parts.append(plural(warnings, "warning"))
    click.echo("valid: " + "; ".join(parts))
