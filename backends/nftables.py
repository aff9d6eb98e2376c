"""The ``nft`` target: one nftables table filtering forwarded pod traffic, and applying it.

``npc compile --target nft`` writes an ``nft -f`` script that atomically creates or replaces
``table inet npc`` (``--table``) and touches nothing else; ``npc apply`` loads it into the
current network namespace. The ruleset (:mod:`.nft_plan`) dispatches new flows by pod address
through verdict maps to one chain per class of isolated pods, whose allow sets are named,
concatenated, deduplicated sets (:mod:`.nft_elements`), so the per-packet cost stays flat as
policies and pods grow. Selectors and named ports are resolved against the cluster snapshot
(:mod:`npc.resolve`); ``--node`` keeps only the pods scheduled on one node, which is what a
per-node agent enforces (and pods that name no node, which every node then enforces).

What it filters, and what not: traffic the node forwards (pod to pod, external to pod, pod to
external). Traffic the node itself originates or receives (kubelet probes, hostNetwork pods
on the same node) does not pass the forward hook and is not filtered, as in kube-router and
kube-network-policies.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from typing import ClassVar

import jinja2

from npc import ir
from npc.backends import nft_syntax
from npc.backends.base import Applied, Backend, BackendOptions, Emitted
from npc.backends.nft_plan import plan
from npc.capabilities import Capability
from npc.errors import (
    BackendError,
    Code,
    Diagnostic,
    Location,
    Severity,
    UnsupportedError,
    ValidationError,
)
from npc.snapshot import Snapshot

__all__ = ["NftOptions", "NftablesBackend", "parse_nft_errors"]

#: How long ``nft -f`` may take (a 100k-pod ruleset loads in a few seconds).
NFT_TIMEOUT = 300.0
#: Name under which nft's error positions are reported.
RULESET = "<nft ruleset>"

_NOT_PERMITTED = (
    "changing nftables needs CAP_NET_ADMIN in the network namespace (run as root), and no "
    "other process may own the table (`flags owner`)"
)
_ERROR = re.compile(r"^(?P<file>[^\n]*?):(?P<line>\d+):(?P<col>\d+)(?:-\d+)?: Error: (?P<msg>.*)$")


@dataclass(frozen=True, slots=True)
class NftOptions(BackendOptions):
    """``table``: name of the ``inet`` table npc owns. ``node``: only the pods scheduled on
    this node (what a per-node agent applies) and pods that name no node; None for every
    pod (one enforcement point routing the whole cluster)."""

    table: str = "npc"
    node: str | None = None

    def __post_init__(self) -> None:
        if not nft_syntax.is_identifier(self.table) or not re.fullmatch(
            r"[A-Za-z][A-Za-z0-9_-]*", self.table
        ):
            reason = (
                "is an nft keyword"
                if self.table.lower() in nft_syntax.KEYWORDS
                else "is not a valid table name"
            )
            raise ValidationError(
                Diagnostic(
                    Code.INVALID_VALUE,
                    Severity.ERROR,
                    f"--table {self.table!r} {reason}",
                    hint=f"use a letter, then letters, digits, '_' or '-' (at most "
                    f"{nft_syntax.NAME_MAX} characters, not an nft keyword), e.g. --table npc",
                )
            )


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("npc.backends", "templates"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["nft_comment"] = nft_syntax.comment
    env.filters["nft_note"] = nft_syntax.note
    return env


class NftablesBackend(Backend):
    """nftables: an ``inet`` table on the forward hook, loaded atomically with ``nft -f``."""

    name = "nft"
    description = "nftables ruleset for the forward hook (nft -f; needs a cluster snapshot)"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(Capability)
    needs_snapshot = True
    suffix = "nft"
    options_type = NftOptions

    def emit(
        self, policies: ir.PolicySet, snapshot: Snapshot | None, options: BackendOptions
    ) -> Emitted:
        opts = options if isinstance(options, NftOptions) else NftOptions()
        if snapshot is None:  # npc.compile refuses earlier; direct callers get the same error
            raise UnsupportedError(
                Diagnostic(
                    Code.SNAPSHOT_REQUIRED,
                    Severity.ERROR,
                    "target nft resolves pod selectors to addresses and needs a cluster snapshot",
                )
            )
        ruleset = plan(policies, snapshot, opts.table, opts.node)
        text = _environment().get_template("nft.j2").render(plan=ruleset)
        return Emitted(text, ruleset.diagnostics)

    def apply(self, text: str, options: BackendOptions, *, dry_run: bool = False) -> Applied:
        """Load ``text`` with ``nft -f`` (``nft -c -f`` for a dry run) into the current
        network namespace. nft runs the whole script as one transaction: on any error nothing
        changes, and the error is reported with the offending line of the ruleset."""
        opts = options if isinstance(options, NftOptions) else NftOptions()
        nft = shutil.which("nft")
        if nft is None:
            raise BackendError(
                Diagnostic(
                    Code.APPLY_FAILED,
                    Severity.ERROR,
                    "nft not found on PATH",
                    hint="install nftables (e.g. `apt-get install nftables`)",
                )
            )
        command = [nft, "-c", "-f", "-"] if dry_run else [nft, "-f", "-"]
        started = time.perf_counter()
        try:
            done = subprocess.run(
                command,
                input=text,
                capture_output=True,
                text=True,
                timeout=NFT_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise BackendError(
                Diagnostic(
                    Code.APPLY_FAILED,
                    Severity.ERROR,
                    f"nft did not finish within {NFT_TIMEOUT:.0f} s; nothing was changed",
                )
            ) from exc
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise BackendError(parse_nft_errors(done.stderr, text))
        table = f"table inet {opts.table}"
        if dry_run:
            return Applied(f"nft -c accepted the ruleset; it would replace {table} (dry run)")
        return Applied(f"replaced {table} in {elapsed:.2f} s")


def parse_nft_errors(stderr: str, text: str) -> list[Diagnostic]:
    """nft's error output as diagnostics, each located in the ruleset and quoting the line
    nft rejected (nft prints positions into its input, which users never saw as a file)."""
    lines = text.splitlines()
    first: dict[str, tuple[int, int]] = {}  # message -> first (line, column) it was seen at
    repeats: dict[str, int] = {}
    for raw in stderr.splitlines():
        match = _ERROR.match(raw)
        if match is None:
            continue
        message = match["msg"]
        first.setdefault(message, (int(match["line"]), int(match["col"])))
        repeats[message] = repeats.get(message, 0) + 1
    found: list[Diagnostic] = []
    for message, (number, column) in first.items():
        source = lines[number - 1].strip() if 0 < number <= len(lines) else ""
        hints = [f"line {number}: {source}"] if source else []
        if "Operation not permitted" in message:
            hints.append(_NOT_PERMITTED)
        more = repeats[message] - 1  # one refused object makes nft refuse all that follow
        found.append(
            Diagnostic(
                Code.APPLY_FAILED,
                Severity.ERROR,
                f"nft rejected the ruleset, nothing was changed: {message}"
                + (f" (and {more} more like it)" if more else ""),
                location=Location(RULESET, number, column),
                hint="; ".join(hints) or None,
            )
        )
    if found:
        return found
    message = " ".join(line.strip() for line in stderr.splitlines() if line.strip())
    hint = _NOT_PERMITTED if "Operation not permitted" in stderr else None
    return [
        Diagnostic(
            Code.APPLY_FAILED,
            Severity.ERROR,
            f"nft failed, nothing was changed: {message or 'no error message'}",
            hint=hint,
        )
    ]
