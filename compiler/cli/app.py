"""The click application: the command group, shared options, and diagnostic printing."""

from __future__ import annotations

import functools
import json
import os
import stat
import sys
import tempfile
import typing
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
import netaddr

from npc.analysis.cni import Forwarding, cni_names, get_cni
from npc.api import load
from npc.errors import (
    Code,
    Diagnostic,
    InputError,
    NpcError,
    OutputError,
    Severity,
    snapshot_required,
    sort_diagnostics,
)
from npc.flows import Probe, ProbeSyntaxError
from npc.frontend import Bundle
from npc.frontend.inputs import read_sources
from npc.targets import REGISTRY, TARGET_SETTINGS, TargetSetting, available

if typing.TYPE_CHECKING:
    from npc.analysis.services import ServiceReach

__all__ = [
    "Settings",
    "cli",
    "cni_option",
    "input_options",
    "load_inputs",
    "parse_probes",
    "print_diagnostics",
    "service_reach",
    "target_options",
    "write_output",
]

F = TypeVar("F", bound=Callable[..., Any])

EXAMPLES = """\b
Examples:
  npc validate -f policies/
  npc compile --target ir -f policies/
  npc compile --target nft -f policies/ -f cluster.yaml -o ruleset.nft
  kubectl get ns,pods -A -o yaml > cluster.yaml && npc validate -f policies/ -f cluster.yaml
  kubectl npc validate -f policies/            (installed as a kubectl plugin)
"""

_COLOURS = {Severity.ERROR: "red", Severity.WARNING: "magenta", Severity.INFO: "cyan"}


@dataclass(frozen=True, slots=True)
class Settings:
    """Global options, passed to every command through the click context."""

    colour: bool
    verbose: bool
    json_diagnostics: bool


def _use_colour(choice: str) -> bool:
    if choice == "always":
        return True
    if choice == "never" or os.environ.get("NO_COLOR"):
        return False
    return sys.stderr.isatty()


class _Group(click.Group):
    """Prints npc's diagnostics inside the click context (so global options apply) and
    exits with the error's status."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except NpcError as exc:
            print_diagnostics(exc.diagnostics)
            ctx.exit(exc.exit_status)


@click.group(
    cls=_Group,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EXAMPLES,
)
# The version is looked up when asked for (importlib.metadata is slow to import).
@click.version_option(None, "--version", package_name="npc-netpol", prog_name="npc")
@click.option(
    "--color",
    "colour",
    type=click.Choice(["auto", "always", "never"]),
    default="auto",
    show_default=True,
    help="Colour diagnostics.",
)
@click.option("-v", "--verbose", is_flag=True, help="Also print notes (skipped objects).")
@click.option(
    "--diagnostics",
    "diag_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Print diagnostics as text or as JSON lines.",
)
@click.pass_context
def cli(ctx: click.Context, colour: str, verbose: bool, diag_format: str) -> None:
    """npc compiles Kubernetes NetworkPolicy into enforceable rulesets.

    It reads policies exactly as the API server would (strictly: typos are errors), and
    emits them for a target enforcement point.
    """
    ctx.obj = Settings(_use_colour(colour), verbose, diag_format == "json")


def input_options(func: F) -> F:
    """``-f PATH`` (repeatable): files, directories, or ``-`` for stdin."""
    return click.option(
        "-f",
        "--filename",
        "paths",
        multiple=True,
        required=True,
        metavar="PATH",
        help="File, directory (recursive: *.yaml, *.yml, *.json) or - for stdin. Repeatable.",
    )(func)


def _check_target(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if value not in REGISTRY:
        raise click.BadParameter(f"unknown target {value!r}; available: {', '.join(available())}")
    return value


def _setting_option(setting: TargetSetting) -> Callable[[F], F]:
    if setting.choices:
        return click.option(
            setting.flag, setting.name, type=click.Choice(setting.choices), help=setting.help
        )
    return click.option(setting.flag, setting.name, metavar=setting.metavar, help=setting.help)


#: The settings ``compare`` and ``report --targets`` take: what decides whether a target may
#: compile the input at all, and the form judged (each target gets those it declares).
COMPARE_SETTINGS = ("calico_scope", "unsupported", "same_node")


def settings_options(names: tuple[str, ...]) -> Callable[[F], F]:
    """The flags of the target settings ``names``; the decorated command receives those set
    as one ``target_settings`` mapping (unset ones left out)."""
    chosen = [s for s in TARGET_SETTINGS if s.name in names]

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def command(**kwargs: Any) -> Any:
            given = {s.name: kwargs.pop(s.name) for s in chosen}
            return func(target_settings={k: v for k, v in given.items() if v is not None}, **kwargs)

        wrapped: Any = command
        for setting in reversed(chosen):
            wrapped = _setting_option(setting)(wrapped)
        return typing.cast(F, wrapped)

    return decorate


def target_options(verb: str) -> Callable[[F], F]:
    """``--target`` and the target settings the registry declares, shared by ``compile`` and
    ``apply``.

    The decorated command receives the settings given as one ``target_settings`` mapping
    (:func:`settings_options` over every setting)."""
    options = (
        click.option(
            "-t",
            "--target",
            required=True,
            metavar="TARGET",
            callback=_check_target,
            help=f"Target to {verb}: {', '.join(available())}.",
        ),
        click.option(
            "--no-optimize",
            is_flag=True,
            help=f"{verb.capitalize()} the IR as read, without optimizer passes.",
        ),
    )
    settings = settings_options(tuple(s.name for s in TARGET_SETTINGS))

    def decorate(func: F) -> F:
        wrapped: Any = settings(func)
        for option in reversed(options):
            wrapped = option(wrapped)
        return typing.cast(F, wrapped)

    return decorate


def settings() -> Settings:
    """The global options of the running command (defaults outside a click context)."""
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_object(Settings) if ctx is not None else None
    return obj if obj is not None else Settings(sys.stderr.isatty(), False, False)


def print_diagnostics(diagnostics: Iterable[Diagnostic]) -> None:
    """Print to stderr, sorted; notes only with --verbose."""
    s = settings()
    for d in sort_diagnostics(diagnostics):
        if d.severity is Severity.INFO and not s.verbose:
            continue
        if s.json_diagnostics:
            click.echo(json.dumps(d.to_json(), sort_keys=True), err=True)
            continue
        text = d.render()
        if s.colour:
            head, _, rest = text.partition(f"{d.severity}:")
            text = (
                click.style(head, bold=True)
                + click.style(f"{d.severity}:", fg=_COLOURS[d.severity], bold=True)
                + rest
            )
        click.echo(text, err=True, color=s.colour)


def load_inputs(paths: Iterable[str]) -> Bundle:
    """Read and load the ``-f`` inputs (raises NpcError with every diagnostic)."""
    return load(read_sources(paths))


def write_output(
    path: str | None, text: str, files: tuple[tuple[str, str], ...] = ()
) -> None:
    """Write to ``path`` atomically (temp file + rename), or to stdout when None or ``-``.

    ``files`` (a many-file output, see :attr:`npc.Artifact.files`) are written as
    ``path<suffix>`` each, all or none: every temp file is written before any is renamed.
    A failure leaves existing files untouched and raises :class:`OutputError`."""
    if path is None or path == "-":
        click.echo(text, nl=False)
        return
    outputs = [(Path(path + suffix), body) for suffix, body in files] or [(Path(path), text)]
    temps: list[tuple[str, Path]] = []
    try:
        for target, body in outputs:
            try:
                mode = stat.S_IMODE(target.stat().st_mode)
            except OSError:
                umask = os.umask(0)
                os.umask(umask)
                mode = 0o666 & ~umask
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
            temps.append((tmp, target))
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(body)
            os.chmod(tmp, mode)
        for tmp, target in temps:
            os.replace(tmp, target)
    except OSError as exc:
        for tmp, _ in temps:
            Path(tmp).unlink(missing_ok=True)
        raise OutputError(
            Diagnostic(
                Code.OUTPUT_FAILED,
                Severity.ERROR,
                f"cannot write {path}: {exc.strerror or exc}",
                hint="nothing was written",
            )
        ) from None
    except BaseException:
        for tmp, _ in temps:
            Path(tmp).unlink(missing_ok=True)
        raise


def parse_probes(texts: Sequence[str]) -> list[Probe]:
    """``--port`` values; a bad one is a usage error."""
    probes = []
    for text in texts:
        try:
            probes.append(Probe.parse(text))
        except ProbeSyntaxError as exc:
            raise click.BadParameter(str(exc), param_hint="'--port'") from None
    return probes


def cni_option(func: Any) -> Any:
    """``--cni NAME``: the plugin, which decides the address a node forwards Service clients
    from (default: what the snapshot's Node annotations say, else the InternalIP)."""
    return click.option(
        "--cni",
        type=click.Choice(cni_names()),
        help="The network plugin: which node address a Service's source NAT gives clients "
        "(default: the Node annotations' tunnel address, else the InternalIP).",
    )(func)


def service_reach(
    bundle: Bundle, from_text: str | None, to_text: str, cni: str | None, probes: Sequence[Probe]
) -> list[ServiceReach]:
    """``--from IP --to svc/NS/NAME[:PORT]``: a client outside the cluster through a Service,
    one answer per Service port (PORT, or ``--port``, picks one by number or name)."""
    from npc.analysis.services import reach_service  # noqa: PLC0415

    snapshot = bundle.snapshot
    if snapshot is None:
        raise InputError(snapshot_required("npc reach --to svc/..."))
    try:
        client = netaddr.IPAddress((from_text or "").strip())
    except (netaddr.AddrFormatError, ValueError):
        raise click.BadParameter(
            f"{from_text!r}: with --to svc/..., --from is the client's IP address",
            param_hint="'--from'",
        ) from None
    spec = to_text[len("svc/") :]
    key, _, port_text = spec.partition(":")
    service = next((s for s in snapshot.services if s.key == key), None)
    if service is None or key.count("/") != 1:
        known = ", ".join(f"svc/{s.key}" for s in snapshot.services[:5]) or "none"
        raise click.BadParameter(
            f"no Service {key!r} in the snapshot (give svc/NAMESPACE/NAME[:PORT]; known: {known})",
            param_hint="'--to'",
        )
    wanted = [port_text] if port_text else [str(p.port) for p in probes]
    ports = [
        p
        for p in service.ports
        if not wanted or str(p.port) in wanted or (p.name is not None and p.name in wanted)
    ]
    if not ports:
        raise click.BadParameter(
            f"svc/{key} has no port {', '.join(wanted)} "
            f"(its ports: {', '.join(str(p.port) for p in service.ports) or 'none'})",
            param_hint="'--to'",
        )
    forwarding = get_cni(cni).forwarding if cni is not None else Forwarding.AUTO
    return [
        reach_service(
            bundle.policies,
            snapshot,
            client,
            service,
            p,
            forwarding,
            bundle.locate,
            bundle.cluster_policies,
        )
        for p in ports
    ]
