"""``npc verify``: a ruleset (npc's or anyone's) against the policies, flow by flow."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from npc.analysis.verify_format import csv_rows, markdown_table, verify_text
from npc.api import explain_reason, live_ruleset, verify
from npc.cli.app import cli, input_options, load_inputs, print_diagnostics
from npc.errors import Code, Diagnostic, InputError, Severity
from npc.frontend.source import Source
from npc.targets import REGISTRY

__all__ = ["FORMATS", "echo_report", "read_ruleset", "verify_command"]

FORMATS = ("text", "json", "csv", "md")

_EPILOG = """\b
Examples:
  npc compile --target nft -f policies/ -f cluster.yaml -o ruleset.nft
  npc verify --target nft --ruleset ruleset.nft -f policies/ -f cluster.yaml
  npc verify --target calico --ruleset <(calicoctl get networkpolicy -A -o yaml) \\
      -f policies/ -f cluster.yaml -o json
  npc verify --target nft --live --node worker-1 -f policies/ -f cluster.yaml
"""


def read_ruleset(paths: tuple[str, ...]) -> list[Source]:
    """The ``--ruleset`` files as they are (``-`` is stdin); unreadable ones are input
    errors."""
    found = []
    for path in paths:
        try:
            text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise InputError(
                Diagnostic(Code.UNREADABLE, Severity.ERROR, f"cannot read {path}: {reason}")
            ) from None
        found.append(Source("<stdin>" if path == "-" else path, text))
    return found


@cli.command("verify", epilog=_EPILOG)
@click.option(
    "-t",
    "--target",
    required=True,
    type=click.Choice(sorted(t.name for t in REGISTRY.values() if t.reader)),
    help="The target whose ruleset this is.",
)
@click.option("--ruleset", "rulesets", multiple=True, metavar="PATH", help="Ruleset file(s).")
@click.option("--live", is_flag=True, help="Read this host's ruleset (nft list ruleset, ...).")
@input_options
@click.option("--node", metavar="NAME", help="The ruleset is this node's: judge what it enforces.")
@click.option(
    "-o", "--output", "fmt", type=click.Choice(FORMATS), default="text", show_default=True
)
@click.pass_context
def verify_command(
    ctx: click.Context,
    target: str,
    rulesets: tuple[str, ...],
    live: bool,
    paths: tuple[str, ...],
    node: str | None,
    fmt: str,
) -> None:
    """Check a ruleset against the policies on every flow of the snapshot.

    Every pod pair, every port and protocol of the snapshot and of the policies, and
    addresses on each side of every ipBlock boundary (IPv4 and IPv6) are decided by the
    target's judge and by the Kubernetes spec (ClusterNetworkPolicies among the -f inputs
    included: their tiers decide as the spec of network-policy-api says). Exit status 0 when
    they agree everywhere, 1 when some flow differs (each one listed), 2 on bad input.
    """
    if live == bool(rulesets):
        raise click.UsageError("give either --ruleset PATH (repeatable) or --live")
    bundle = load_inputs(paths)
    print_diagnostics(bundle.diagnostics)
    sources = list(live_ruleset(target)) if live else read_ruleset(rulesets)
    report = verify(bundle, target, sources, node=node)
    header = ("from", "to", "protocol", "port", "spec", "ruleset", "rule")
    rows = [
        (d.src, d.dst, d.protocol, d.port, d.spec, d.ruleset, d.rule) for d in report.differences
    ]
    echo_report(
        fmt,
        report.to_json(),
        header,
        rows,
        lambda: verify_text(report, lambda s, d, pr, port: explain_reason(bundle, s, d, pr, port)),
    )
    ctx.exit(0 if report.equivalent else 1)


def echo_report(
    fmt: str,
    data: dict[str, Any],
    header: Sequence[str],
    rows: Sequence[Sequence[object]],
    text: Callable[[], str],
) -> None:
    """Print a report in one of :data:`FORMATS` (``text`` is only rendered when asked for)."""
    if fmt == "json":
        click.echo(json.dumps(data, indent=2))
    elif fmt == "csv":
        click.echo(csv_rows(header, rows), nl=False)
    elif fmt == "md":
        click.echo(markdown_table(header, rows), nl=False)
    else:
        click.echo(text(), nl=False)
