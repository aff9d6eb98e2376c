"""The jinja2 environment every text backend renders its templates with.

``StrictUndefined`` (a misspelt field is an error, not an empty string), ``trim_blocks`` and
``lstrip_blocks`` (template tags leave no blank lines), no autoescaping (the outputs are not
HTML: quoting is each target's own business, done in its unit-tested ``syntax`` filters).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jinja2

__all__ = ["environment"]


def environment(filters: Mapping[str, Callable[..., Any]]) -> jinja2.Environment:
    """An environment loading ``npc.backends``' ``templates/*.j2``, with ``filters``."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("npc.backends", "templates"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters.update(filters)
    return env
