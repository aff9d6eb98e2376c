"""Loading an nft script into the kernel: ``nft -f`` as one transaction, errors located.

nft runs the whole script atomically: on any error nothing changes. Its error positions point
into its standard input, which users never saw as a file, so :func:`parse_nft_errors` quotes
the offending generated line in each diagnostic.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time

from npc.backends.base import Applied
from npc.backends.nft import syntax as nft_syntax
from npc.errors import BackendError, Code, Diagnostic, Location, Severity

__all__ = ["NFT_TIMEOUT", "RULESET", "load", "parse_nft_errors"]

#: How long ``nft -f`` may take (a 100k-pod ruleset loads in a few seconds).
NFT_TIMEOUT = 300.0
#: Name under which nft's error positions are reported.
RULESET = "<nft ruleset>"

_NOT_PERMITTED = (
    "changing nftables needs CAP_NET_ADMIN in the network namespace (run as root), and no "
    "other process may own the table (`flags owner`)"
)
_ERROR = re.compile(r"^(?P<file>[^\n]*?):(?P<line>\d+):(?P<col>\d+)(?:-\d+)?: Error: (?P<msg>.*)$")


def load(text: str, table_name: str, *, dry_run: bool = False) -> Applied:
    """Load ``text`` (an npc script replacing ``table inet <table_name>``) with ``nft -f``
    (``nft -c -f`` for a dry run) into the current network namespace. nft runs the whole
    script as one transaction: on any error nothing changes, and the error is reported with
    the offending line of the ruleset."""
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
    _check_owner(nft, table_name)
    command = [nft, "-c", "-f", "-"] if dry_run else [nft, "-f", "-"]
    started = time.perf_counter()
    done = _run(command, text)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise BackendError(parse_nft_errors(done.stderr, text))
    table = f"table inet {table_name}"
    if dry_run:
        return Applied(f"nft -c accepted the ruleset; it would replace {table} (dry run)")
    return Applied(f"replaced {table} in {elapsed:.2f} s")


def _run(command: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run one nft command, its output captured; a hung nft is an error, nothing changed."""
    try:
        return subprocess.run(
            command, input=stdin, capture_output=True, text=True, timeout=NFT_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise BackendError(
            Diagnostic(
                Code.APPLY_FAILED,
                Severity.ERROR,
                f"nft did not finish within {NFT_TIMEOUT:.0f} s; nothing was changed",
            )
        ) from exc


def _check_owner(nft: str, table_name: str) -> None:
    """Refuse to replace ``table inet <table_name>`` unless npc wrote it: the script deletes
    the table it replaces, and a host's own firewall table of that name (``--table filter``)
    would go with its rules."""
    # -t (terse): without the set elements, which a large ruleset is mostly made of
    listed = _run([nft, "-t", "list", "table", "inet", table_name])
    if listed.returncode != 0:
        return  # no such table (or nft cannot list it: loading will then say why)
    marker = f"comment {nft_syntax.comment(nft_syntax.OWNER)}"
    head = [line.strip() for line in listed.stdout.splitlines()[1:3]]
    if marker not in head:
        raise BackendError(
            Diagnostic(
                Code.APPLY_FAILED,
                Severity.ERROR,
                f"table inet {table_name} exists and was not written by npc (it lacks npc's "
                "table comment); refusing to replace it, nothing was changed",
                hint="choose another --table (the default is npc), or remove that table "
                f"yourself if it is a leftover: `nft delete table inet {table_name}`",
            )
        )


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
