"""The Alibaba document as JSON text: ``json.dumps(data, sort_keys=True, indent=2,
ensure_ascii=False)``, byte for byte, several times faster.

With ``indent`` set, the standard library serialises in Python, one generator step per token
(its C encoder only writes compact JSON); at 10,000 pods the document has millions of tokens.
:func:`dumps` builds each container's text with one ``str.join`` instead, and strings go
through the same C escaper (``json.encoder.encode_basestring``). Whatever it does not handle
exactly as the standard library does (a key that is not a string, a float, a value of another
type) sends the whole document to ``json.dumps`` itself, so the text is always the same.
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring
from typing import Any

__all__ = ["dumps"]


class _Other(Exception):
    """A value :func:`_text` leaves to ``json.dumps``."""


def dumps(data: Any, end: str = "") -> str:
    """``json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + end``."""
    out: list[str] = []
    try:
        _write(data, "\n", out, _PIECES)
    except _Other:
        return json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + end
    out.append(end)
    return "".join(out)


#: Levels written as pieces of one list, joined once at the end (below them, each value is
#: one string): at 30,000 pods the text is hundreds of megabytes, and joining it level by
#: level would hold several copies at once.
_PIECES = 2


def _write(value: Any, newline: str, out: list[str], levels: int) -> None:
    """Append ``value``'s text (as :func:`_text` makes it) to ``out``, in pieces."""
    kind = type(value)
    if not levels or not value or (kind is not dict and kind is not list and kind is not tuple):
        out.append(_text(value, newline))
        return
    inner = newline + "  "
    separator = inner
    if kind is dict:
        out.append("{")
        for key, item in sorted(value.items()):
            if type(key) is not str:
                raise _Other
            out.append(separator + encode_basestring(key) + ": ")
            separator = "," + inner
            _write(item, inner, out, levels - 1)
        out.append(newline + "}")
        return
    out.append("[")
    for item in value:
        out.append(separator)
        separator = "," + inner
        _write(item, inner, out, levels - 1)
    out.append(newline + "]")


def _text(value: Any, newline: str) -> str:
    """``value`` as JSON, its lines after the first indented as ``newline`` says."""
    kind = type(value)
    if kind is str:
        return encode_basestring(value)
    if kind is dict:
        if not value:
            return "{}"
        inner = newline + "  "
        try:  # most mappings map strings to strings (the permissions): one join
            items = [
                encode_basestring(k) + ": " + encode_basestring(v)
                for k, v in sorted(value.items())
            ]
            return "{" + inner + ("," + inner).join(items) + newline + "}"
        except TypeError:  # a key or value that is not a string
            items = []
        for key, item in sorted(value.items()):
            if type(key) is not str:
                raise _Other
            items.append(encode_basestring(key) + ": " + _text(item, inner))
        return "{" + inner + ("," + inner).join(items) + newline + "}"
    if kind is list or kind is tuple:
        if not value:
            return "[]"
        inner = newline + "  "
        return "[" + inner + ("," + inner).join([_text(v, inner) for v in value]) + newline + "]"
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if kind is int:
        return int.__repr__(value)
    raise _Other
