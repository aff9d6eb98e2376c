"""Reading input paths the way ``kubectl -f`` does (the only file I/O outside the CLI).

A path is a file (read whatever its name), a directory (searched recursively for ``*.yaml``,
``*.yml`` and ``*.json``, in lexical order like ``kubectl``'s walk, not following symlinked
directories) or ``-`` for standard input.
"""

from __future__ import annotations

import codecs
import os
import sys
from collections.abc import Iterable
from pathlib import Path

from npc.errors import Code, Diagnostic, InputError, Location, Severity
from npc.frontend.source import Source

__all__ = ["INPUT_SUFFIXES", "decode_text", "read_sources"]

INPUT_SUFFIXES = (".yaml", ".yml", ".json")

# YAML allows UTF-16 and UTF-32 with a byte-order mark (PowerShell's `>` writes UTF-16).
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def decode_text(name: str, data: bytes) -> str:
    """Bytes to text: UTF-8, or UTF-16/32 with a byte-order mark. Raises :class:`InputError`
    pointing at the first byte that is not text."""
    encoding = next((enc for bom, enc in _BOMS if data.startswith(bom)), "utf-8")
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        good = data[: exc.start].decode(encoding, "replace")
        line = good.count("\n") + 1
        column = len(good) - (good.rfind("\n") + 1) + 1
        raise InputError(
            Diagnostic(
                Code.UNREADABLE,
                Severity.ERROR,
                f"not {encoding.upper().replace('-SIG', '')} text: byte "
                f"0x{data[exc.start]:02x} cannot be decoded",
                location=Location(name, line, column),
                hint="Kubernetes manifests are UTF-8; convert the file, e.g. with "
                "`iconv -f LATIN1 -t UTF-8`",
            )
        ) from None


def _files(root: Path) -> list[Path]:
    """Input files under a directory, depth first in lexical order (kubectl's walk: a
    subdirectory's files come where its name sorts among the files)."""
    found: list[Path] = []
    stack = [iter(sorted(os.scandir(root), key=lambda e: e.name))]
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
        elif entry.is_dir(follow_symlinks=False):
            stack.append(iter(sorted(os.scandir(entry.path), key=lambda e: e.name)))
        elif entry.name.endswith(INPUT_SUFFIXES):
            found.append(Path(entry.path))
    return found


def _unreadable(name: str, exc: OSError) -> Diagnostic:
    return Diagnostic(Code.UNREADABLE, Severity.ERROR, f"{name}: {exc.strerror or exc}")


def _read(name: str, path: Path) -> Source:
    return Source(name, decode_text(name, path.read_bytes()))


def read_sources(paths: Iterable[str], stdin: bytes | None = None) -> list[Source]:
    """Read every input; raise :class:`InputError` naming every path that cannot be read."""
    sources: list[Source] = []
    problems: list[Diagnostic] = []
    for raw in paths:
        try:
            if raw == "-":
                data = stdin if stdin is not None else sys.stdin.buffer.read()
                sources.append(Source("<stdin>", decode_text("<stdin>", data)))
                continue
            path = Path(raw)
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
                    try:
                        sources.append(_read(str(f), f))
                    except InputError as exc:
                        problems.extend(exc.diagnostics)
                    except OSError as exc:
                        problems.append(_unreadable(str(f), exc))
            else:
                sources.append(_read(raw, path))
        except InputError as exc:
            problems.extend(exc.diagnostics)
        except OSError as exc:
            problems.append(_unreadable(raw, exc))
        except ValueError:  # a path no OS call takes (a NUL byte), given through the library
            problems.append(
                Diagnostic(Code.UNREADABLE, Severity.ERROR, f"{raw!r}: not a valid path")
            )
    if problems:
        raise InputError(problems)
    return sources
