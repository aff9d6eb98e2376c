"""Drawing DOT text as SVG through Graphviz's ``dot`` (the ``graphviz`` Python binding runs
the executable; Debian's package ``graphviz`` provides it).

The SVG is made fit for inlining into an HTML page: the XML declaration, the DOCTYPE and
Graphviz's comments (which name its version) go, so the page carries only the drawing.
"""

from __future__ import annotations

import re

import graphviz

from npc.errors import BackendError, Code, Diagnostic, Severity

__all__ = ["inline_svg", "render_svg"]

_PROLOGUE = re.compile(r"<\?xml[^>]*\?>|<!DOCTYPE[^>]*>|<!--.*?-->", re.S)


def render_svg(dot: str) -> str:
    """The SVG Graphviz draws for ``dot`` (layout engine ``dot``). Raises
    :class:`~npc.errors.BackendError` when the ``dot`` executable is missing or fails."""
    try:
        data: bytes = graphviz.Source(dot).pipe(format="svg", engine="dot")
    except graphviz.ExecutableNotFound:
        raise BackendError(
            Diagnostic(
                Code.BACKEND_FAILED,
                Severity.ERROR,
                "drawing the graph needs Graphviz's `dot` executable, which is not installed",
                hint="install Graphviz (Debian: apt-get install graphviz), or use -o dot",
            )
        ) from None
    except graphviz.CalledProcessError as exc:
        raise BackendError(
            Diagnostic(
                Code.BACKEND_FAILED, Severity.ERROR, f"Graphviz `dot` failed: {exc.returncode}"
            )
        ) from None
    return data.decode("utf-8")


def inline_svg(svg: str) -> str:
    """``svg`` without what an ``<svg>`` element inside HTML must not carry."""
    return _PROLOGUE.sub("", svg).strip() + "\n"
