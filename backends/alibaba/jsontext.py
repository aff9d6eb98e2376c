"""The Alibaba document as JSON text: laid out as ``json.dumps(data, sort_keys=True,
indent=2, ensure_ascii=False)`` does, except that a :class:`Line` (a permission) is written
on one line, as ``json.dumps(value, sort_keys=True, ensure_ascii=False)`` writes it.

One permission per line keeps the document about half the size, lets ``grep`` find a rule
with all its fields, and lets the C encoder write each permission once, however many lists
hold it (a group lists its permissions twice: flat, and in requests of at most 100). With
``indent`` set, the standard library serialises in Python, one generator step per token;
:func:`dumps` appends each token to one list instead and joins it once, so at 30,000 pods
(hundreds of thousands of permissions) the text exists once, next to a list of references.
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring
from typing import Any, NamedTuple

__all__ = ["Line", "compact_text", "dumps", "line"]

#: ``json.dumps(value, sort_keys=True, ensure_ascii=False)`` without its per-call set-up.
compact_text = json.JSONEncoder(sort_keys=True, ensure_ascii=False).encode


class Line(NamedTuple):
    """A value already written as JSON text on one line (see :func:`line`); a named tuple,
    made in C (a document at 10,000 pods has some 75,000)."""

    text: str


def line(value: Any) -> Line:
    """``value`` as one line of JSON, with sorted keys, for :func:`dumps` to place as is."""
    return Line(compact_text(value))


def dumps(data: Any, end: str = "") -> str:
    """``json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + end``, with each
    :class:`Line` in ``data`` written as its text. Keys must be strings; values strings,
    integers, booleans, None, lists, tuples, dicts or :class:`Line` (else TypeError)."""
    out: list[str] = []
    _write(data, "\n", out)
    out.append(end)
    return "".join(out)


def _write(value: Any, newline: str, out: list[str]) -> None:
    """Append ``value``'s text to ``out`` in pieces, its lines after the first indented as
    ``newline`` says (the pieces are shared strings: references, not copies)."""
    kind = type(value)
    if kind is Line:
        out.append(value.text)
    elif kind is str:
        out.append(encode_basestring(value))
    elif kind is dict:
        if not value:
            out.append("{}")
            return
        inner = newline + "  "
        comma = "," + inner
        separator = "{" + inner
        for key in sorted(value):
            if type(key) is not str:
                raise TypeError(f"a JSON key that is not a string: {key!r}")
            out.append(separator)
            out.append(encode_basestring(key) + ": ")
            separator = comma
            _write(value[key], inner, out)
        out.append(newline + "}")
    elif kind is list or kind is tuple:
        if not value:
            out.append("[]")
            return
        inner = newline + "  "
        comma = "," + inner
        separator = "[" + inner
        for item in value:
            out.append(separator)
            separator = comma
            # the permissions and members: most items, written without a call
            item_kind = type(item)
            if item_kind is Line:
                out.append(item.text)
            elif item_kind is str:
                out.append(encode_basestring(item))
            else:
                _write(item, inner, out)
        out.append(newline + "]")
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif kind is int:
        out.append(int.__repr__(value))
    else:
        raise TypeError(f"not a value of the alibaba document: {value!r}")
