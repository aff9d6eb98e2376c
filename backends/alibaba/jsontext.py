"""The Alibaba document as JSON text: laid out as ``json.dumps(data, sort_keys=True,
indent=2, ensure_ascii=False)`` does, except that the items of a :class:`Lines` list (the
permissions) are JSON texts already, each written on a line of its own.

One permission per line keeps the document smaller (a third less at 10,000 pods), lets
``grep`` find a rule with all its fields, and lets each permission be written once, however
many lists hold it (a group lists its permissions twice: flat, and in requests of at most
100). With ``indent`` set, the standard library serialises in Python, one generator step per
token; :func:`dumps` appends each token to one list instead and joins it once, so at 30,000
pods (hundreds of thousands of permissions) the text exists once, next to a list of
references to the permissions' texts.
"""

from __future__ import annotations

import json
from itertools import chain, repeat
from json.encoder import encode_basestring
from typing import Any

__all__ = ["Lines", "compact_text", "dumps", "lines"]

#: ``json.dumps(value, sort_keys=True, ensure_ascii=False)`` without its per-call set-up.
compact_text = json.JSONEncoder(sort_keys=True, ensure_ascii=False).encode


class Lines(list[str]):
    """A JSON array whose items are JSON texts already, each on one line (as
    ``json.dumps(value, sort_keys=True, ensure_ascii=False)`` writes them, see
    :func:`lines`): :func:`dumps` writes each as it is, one per line."""


def lines(values: Any) -> Lines:
    """``values`` (an iterable) as a :class:`Lines` of their one-line texts."""
    return Lines(compact_text(v) for v in values)


def dumps(data: Any, end: str = "") -> str:
    """``json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + end``, with the
    items of each :class:`Lines` in ``data`` as their texts, one per line. Keys must be
    strings; values strings, integers, booleans, None, lists, tuples or dicts (else
    TypeError)."""
    out: list[str] = []
    _write(data, "\n", out)
    out.append(end)
    return "".join(out)


def _write(value: Any, newline: str, out: list[str]) -> None:
    """Append ``value``'s text to ``out`` in pieces, its lines after the first indented as
    ``newline`` says (the pieces are shared strings: references, not copies)."""
    kind = type(value)
    if kind is str:
        out.append(encode_basestring(value))
    elif kind is Lines:
        if not value:
            out.append("[]")
            return
        inner = newline + "  "
        start = len(out)
        # separator, text, separator, text...: appended in C, the first separator opens
        out.extend(chain.from_iterable(zip(repeat("," + inner), value)))
        out[start] = "[" + inner
        out.append(newline + "]")
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
            if type(item) is str:  # the members: written without a call
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
