"""YAML as kubectl writes it, for test fixtures.

PyYAML's dumper quotes only what PyYAML itself would misread, so it writes ``team: y``,
``hash: 0907761820`` or ``version: 1e3`` unquoted; kubectl (goyaml v2, like ``npc.load``)
reads those as a boolean and numbers. :func:`dump` quotes every string that would not read
back as itself, as ``kubectl get -o yaml`` does.
"""

from __future__ import annotations

from typing import Any

import yaml

from npc.yamlread import resolve_plain

__all__ = ["dump", "dump_all"]


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = '"' if value and resolve_plain(value) != value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump(data: Any, **kwargs: Any) -> str:
    """``yaml.safe_dump``, quoting strings kubectl would read as something else."""
    return yaml.dump(data, Dumper=_Dumper, **kwargs)


def dump_all(documents: list[Any], **kwargs: Any) -> str:
    return yaml.dump_all(documents, Dumper=_Dumper, **kwargs)
