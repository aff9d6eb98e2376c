"""The ``npc`` command line: a thin layer over the library.

Exit status: 0 success, 1 internal, enforcement-point or output failure, 2 invalid input or
usage.
No input ever produces a traceback.
"""

from __future__ import annotations

import os
import sys

import click

from npc import collector
from npc.cli import (  # noqa: F401 - registers the commands
    cmd_apply,
    cmd_compare,
    cmd_compile,
    cmd_diff,
    cmd_explain,
    cmd_lint,
    cmd_reach,
    cmd_report,
    cmd_validate,
    cmd_verify,
)
from npc.cli.app import cli, print_diagnostics
from npc.errors import NpcError

__all__ = ["cli", "main", "run"]


def _prog_name() -> str:
    base = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "npc"
    return "kubectl npc" if base == "kubectl-npc" else "npc"


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (the console script exits with it)."""
    try:
        status = cli.main(args=argv, prog_name=_prog_name(), standalone_mode=False)
    except NpcError as exc:  # raised outside a command (should not happen), still no traceback
        print_diagnostics(exc.diagnostics)
        return exc.exit_status
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("npc: aborted", err=True)
        return 130
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        message = str(exc).splitlines()[0] if str(exc) else ""
        click.echo(
            f"npc: internal error: {type(exc).__name__}: {message} (please report this bug)",
            err=True,
        )
        return 1
    return status if isinstance(status, int) else 0


def run() -> None:
    """Console-script entry point (and ``python -m npc``): this process owns its heap, so
    the data npc builds is frozen rather than traversed again (:mod:`npc.collector`)."""
    with collector.process_owned():
        status = main()
    sys.exit(status)
