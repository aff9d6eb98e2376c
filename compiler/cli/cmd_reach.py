"""``npc reach``: who can reach whom, over a cluster snapshot."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING

import click

from npc.cli.app import (
    F,
    cli,
    cni_option,
    input_options,
    load_inputs,
    parse_probes,
    print_diagnostics,
    service_reach,
    settings,
)
from npc.errors import Code, Diagnostic, InputError, Severity, snapshot_required
from npc.flows import Probe, default_probes
from npc.frontend import Bundle
from npc.snapshot import Pod

if TYPE_CHECKING:
    from npc.analysis.reach import Reach
    from npc.frontend.selectors import PodQuery

# The analyses (and lark, graphviz) are imported by the commands that run them: every npc
# process imports this module to register its command.

__all__ = ["parse_query", "prepare", "query_options", "stdout_colour", "write_chunks"]

_EPILOG = """\b
Examples:
  npc reach -f policies/ -f cluster.yaml
  npc reach -f examples/testing/ --port 80/TCP --from testing/ -o json
  npc reach -f policies/ -f cluster.yaml --from 'shop/app=web,tier in (a,b),!canary' --to shop/
  npc reach -f policies/ -f cluster.yaml -o summary      (class level, for big clusters)
  npc reach -f policies/ -f cluster.yaml --from 10.2.3.4 --to svc/shop/web:443 --cni calico
  npc reach -f examples/testing/ -o svg > testing.svg   (a graph; -o dot for the text)
  kubectl get ns,pods -A -o yaml > cluster.yaml; npc reach -f policies/ -f cluster.yaml
"""

_CHUNK = 1 << 20


def parse_query(text: str | None, option: str) -> PodQuery | None:
    """``--from``/``--to``: kubectl selector syntax with an optional ``namespace/`` prefix;
    a syntax error is a usage error pointing at the column."""
    if text is None:
        return None
    from npc.frontend.selectors import SelectorSyntaxError, parse_pod_query  # noqa: PLC0415

    try:
        return parse_pod_query(text)
    except SelectorSyntaxError as exc:
        caret = " " * (exc.column - 1) + "^"
        raise click.BadParameter(
            f"invalid selector at column {exc.column}:\n  {text}\n  {caret}\n"
            "  syntax: [NAMESPACE/]key=value,key!=value,key in (a,b),key notin (a,b),key,!key",
            param_hint=f"'{option}'",
        ) from None


def stdout_colour() -> bool:
    """Colour for stdout: the global ``--color`` setting, and a terminal unless ``always``."""
    ctx = click.get_current_context(silent=True)
    choice = ctx.find_root().params.get("colour", "auto") if ctx is not None else "auto"
    return settings().colour and (choice == "always" or sys.stdout.isatty())


def _select(pods: Iterable[Pod], query: PodQuery | None) -> list[Pod]:
    if query is None:
        return list(pods)
    return [p for p in pods if query.matches(p.namespace, p.labels)]


def write_chunks(chunks: Iterable[str], colour: bool = False) -> None:
    """Stream to stdout in large pieces (JSON and CSV answers can be gigabytes). With
    ``colour``, ANSI styles are kept even when stdout is not a terminal (``--color always``)."""
    buffer: list[str] = []
    size = 0
    for chunk in chunks:
        buffer.append(chunk)
        size += len(chunk)
        if size >= _CHUNK:
            click.echo("".join(buffer), nl=False, color=colour or None)
            buffer, size = [], 0
    click.echo("".join(buffer), nl=False, color=colour or None)


def query_options(func: F) -> F:
    """``-f``, ``--port`` and ``--from``, as ``reach`` and ``report`` take them."""
    options = (
        input_options,
        click.option(
            "--port",
            "ports",
            multiple=True,
            metavar="PORT[/PROTO]",
            help="Probe this destination port (protocol TCP, UDP or SCTP; default TCP). "
            "Repeatable. Default: every containerPort in the snapshot.",
        ),
        click.option(
            "--from",
            "from_text",
            metavar="SELECTOR",
            help="Source pods: kubectl label selector, optionally prefixed by NAMESPACE/ "
            "(e.g. 'shop/app=web,!canary'). Default: every pod.",
        ),
    )
    for option in reversed(options):
        func = option(func)
    return func


def prepare(
    paths: Iterable[str],
    ports: Iterable[str],
    from_text: str | None,
    to_text: str | None,
    command: str,
) -> tuple[Bundle, Reach, list[Probe], list[Pod], list[Pod]]:
    """What ``reach`` and ``report`` share: the inputs loaded (diagnostics printed), the
    probes (default: every containerPort), the ``--from``/``--to`` pods, warnings for a
    selector that selects nothing."""
    from npc.analysis.reach_tiers import make_reach  # noqa: PLC0415

    probes = parse_probes(tuple(ports))
    sources_query = parse_query(from_text, "--from")
    targets_query = parse_query(to_text, "--to")
    bundle = load_inputs(paths)
    print_diagnostics(bundle.diagnostics)
    snapshot = bundle.snapshot
    if snapshot is None:
        raise InputError(snapshot_required(command))
    if not probes:
        probes = list(default_probes(snapshot))
        if not probes:
            raise click.UsageError(
                "the snapshot declares no containerPort to probe; give ports with --port 80/TCP"
            )
    reach = make_reach(bundle.policies, snapshot, bundle.cluster_policies)
    sources = _select(snapshot.pods, sources_query)
    targets = _select(snapshot.pods, targets_query)
    warnings = []
    for query, text, option, chosen in (
        (sources_query, from_text, "--from", sources),
        (targets_query, to_text, "--to", targets),
    ):
        if query is not None and not chosen:
            warnings.append(
                Diagnostic(Code.SELECTS_NOTHING, Severity.WARNING, f"{option} {text!r}: no pod")
            )
    if not snapshot.pods:
        warnings.append(
            Diagnostic(Code.SELECTS_NOTHING, Severity.WARNING, "no pod in the snapshot")
        )
    print_diagnostics(warnings)
    return bundle, reach, probes, sources, targets


@cli.command("reach", epilog=_EPILOG)
@query_options
@click.option(
    "--to",
    "to_text",
    metavar="SELECTOR",
    help="Destination pods, like --from (default: every pod); or svc/NAMESPACE/NAME[:PORT]: "
    "a client outside the cluster (--from IP) through a NodePort or LoadBalancer Service.",
)
@cni_option
@click.option(
    "-o",
    "--output",
    "fmt",
    type=click.Choice(["table", "json", "csv", "summary", "dot", "svg"]),
    default="table",
    show_default=True,
    help="table: truth table (the summary when too large); json/csv: every pair; "
    "summary: per class of pods that policies treat alike; dot/svg: a graph of the classes "
    "by namespace (svg needs Graphviz).",
)
def reach_command(
    paths: tuple[str, ...],
    ports: tuple[str, ...],
    from_text: str | None,
    to_text: str | None,
    cni: str | None,
    fmt: str,
) -> None:
    """Show which pods may connect to which, on which ports.

    Reads policies and a cluster snapshot (`kubectl get ns,pods -A -o yaml`), and answers
    for every (source pod, destination pod, probe) as the Kubernetes NetworkPolicy spec
    says. A pod always reaches itself. Computed on classes of pods that no policy can tell
    apart, so it stays fast on large clusters.

    With --to svc/NAMESPACE/NAME[:PORT] and --from IP: whether a client outside the cluster
    gets through that Service, on every path (entry node, endpoint), and which source address
    the destination's policies see on each (externalTrafficPolicy Cluster: the forwarding
    node's, chosen by --cni; Local: the client's).
    """
    from npc.analysis.draw import render_svg  # noqa: PLC0415
    from npc.analysis.graph import build_graph, to_dot  # noqa: PLC0415
    from npc.analysis.reach_format import (  # noqa: PLC0415
        MAX_TABLE_COLUMNS,
        MAX_TABLE_ROWS,
        ReachView,
        csv_chunks,
        fits_table,
        json_chunks,
        summary,
        table,
    )

    if to_text is not None and to_text.startswith("svc/"):
        bundle = load_inputs(paths)
        print_diagnostics(bundle.diagnostics)
        answers = service_reach(bundle, from_text, to_text, cni, parse_probes(ports))
        if fmt == "json":
            click.echo(json.dumps({"services": [a.to_json() for a in answers]}, indent=2))
        else:
            click.echo("".join(a.text() for a in answers), nl=False)
        return
    bundle, reach, probes, sources, targets = prepare(paths, ports, from_text, to_text, "npc reach")
    if fmt in ("dot", "svg"):
        graph = build_graph(reach, probes, sources, targets, bundle.locate)
        if graph.omitted is not None:
            if fmt == "svg":
                raise click.UsageError(f"the graph is too large to draw: {graph.omitted}")
            click.echo(f"npc: note: edges not written: {graph.omitted}", err=True)
        dot = to_dot(graph)
        write_chunks([dot if fmt == "dot" else render_svg(dot)])
        return
    view = ReachView.of(reach, probes, sources, targets)
    colour = stdout_colour()
    if fmt == "json":
        write_chunks(json_chunks(view))
    elif fmt == "csv":
        write_chunks(csv_chunks(view))
    elif fmt == "summary":
        write_chunks([summary(view, colour)], colour)
    elif fits_table(view):
        write_chunks([table(view, colour)], colour)
    else:
        click.echo(
            f"npc: note: {len(view.sources):,} x {len(view.targets):,} pods is too large for a "
            f"table (at most {MAX_TABLE_ROWS} rows and {MAX_TABLE_COLUMNS} columns); printing "
            "the class summary. Narrow with --from/--to, or use -o json / -o csv for every pair.",
            err=True,
        )
        write_chunks([summary(view, colour)], colour)
