"""``npc lint``: valid policies that probably do not do what was meant."""

from __future__ import annotations

import json

import click

from npc.analysis.cni import CNIS, cni_names
from npc.api import lint
from npc.cli.app import cli, input_options, load_inputs, print_diagnostics
from npc.errors import Severity
from npc.wording import plural

_EPILOG = """\b
Examples:
  npc lint -f policies/
  npc lint -f policies/ -f cluster.yaml --cni calico
  npc lint -f policies/ -f cluster.yaml -o json
  kubectl get ns,pods,svc,nodes -A -o yaml > cluster.yaml; npc lint -f policies/ -f cluster.yaml
"""


@cli.command("lint", epilog=_EPILOG)
@input_options
@click.option(
    "--cni",
    type=click.Choice(cni_names()),
    help="The network plugin enforcing the policies: also report what it ignores, and use "
    "its node addresses for Services. "
    + "; ".join(f"{c.name}: {c.description}" for c in CNIS.values()),
)
@click.option(
    "-o",
    "--output",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help='text: one finding per line, compiler-style; json: {"findings": [...]}.',
)
def lint_command(paths: tuple[str, ...], cni: str | None, fmt: str) -> None:
    """Report probable mistakes in valid policies.

    Namespace selectors on labels no namespace has, OR where AND was meant, ipBlocks that a
    Service's source NAT never lets match, egress isolation without DNS, ignored rules,
    selectors matching nothing, ipBlocks holding pod addresses, host bits, shadowed rules and
    redundant policies, and (with --cni) what the plugin ignores. Give a cluster snapshot
    (`kubectl get ns,pods,svc,nodes -A -o yaml`) for the checks that need one.

    Exit status 0 when there is no warning, 1 when there is, 2 on invalid input.
    """
    bundle = load_inputs(paths)
    findings = lint(bundle, cni=cni)
    print_diagnostics(
        d for d in bundle.diagnostics if d.severity is not Severity.WARNING
    )  # notes with -v; warnings are findings
    if fmt == "json":
        click.echo(json.dumps({"findings": [f.to_json() for f in findings]}, indent=2))
    else:
        for finding in findings:
            click.echo(finding.render())
        warnings = sum(f.severity is not Severity.INFO for f in findings)
        notes = len(findings) - warnings
        click.echo(f"{plural(warnings, 'warning')}, {plural(notes, 'note')}", err=True)
    if any(f.severity is not Severity.INFO for f in findings):
        click.get_current_context().exit(1)
