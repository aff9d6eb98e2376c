"""Reading input paths the way ``kubectl -f`` does (the only file I/O outside the CLI).

A path is a file, a directory (searched recursively for ``*.yaml``, ``*.yml`` and ``*.json``,
in sorted order) or ``-`` for standard input.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path

from npc.errors import Code, Diagnostic, InputError, Severity
from npc.source import Source

__all__ = ["INPUT_SUFFIXES", "read_sources"]

INPUT_SUFFIXES = (".yaml", ".yml", ".json")


def _decode(name: str, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            Diagnostic(
                Code.UNREADABLE,
                Severity.ERROR,
                f"{name}: not UTF-8 text (byte {exc.start})",
                hint="Kubernetes manifests are UTF-8",
            )
        ) from None


def _files(path: Path) -> list[Path]:
    found: list[Path] = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        found.extend(Path(root) / f for f in sorted(files) if f.endswith(INPUT_SUFFIXES))
    return found


def read_sources(paths: Iterable[str], stdin: bytes | None = None) -> list[Source]:
    """Read every input; raise :class:`InputError` naming every path that cannot be read."""
    sources: list[Source] = []
    problems: list[Diagnostic] = []
    for raw in paths:
        if raw == "-":
            data = stdin if stdin is not None else sys.stdin.buffer.read()
            sources.append(Source("<stdin>", _decode("<stdin>", data)))
            continue
        path = Path(raw)
        try:
            if path.is_dir():
                files = _files(path)
                if not files:
                    problems.append(
                        Diagnostic(
                            Code.NO_INPUT,
                            Severity.ERROR,
                            f"{raw}: no .yaml, .yml or .json files in this directory",
                        )
                    )
                for f in files:
                    sources.append(Source(str(f), _decode(str(f), f.read_bytes())))
            else:
                sources.append(Source(raw, _decode(raw, path.read_bytes())))
        except InputError as exc:
            problems.extend(exc.diagnostics)
        except OSError as exc:
            problems.append(
                Diagnostic(Code.UNREADABLE, Severity.ERROR, f"{raw}: {exc.strerror or exc}")
            )
    if problems:
        raise InputError(problems)
    return sources
