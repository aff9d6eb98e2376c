"""Lexical facts of Calico's selector language that both the judge and the emitter need.

Calico strings have no escapes: a value is written between ``'`` or ``"``, whichever it does
not contain (:func:`quote`); a value holding both cannot be written at all, and label keys
must use Calico's identifier characters (:func:`check_key`, after libcalico-go's
``tokenizer.LabelKeyMatcher``). Both raise :class:`SelectorQuotingError` rather than produce
a selector with another meaning. The ``calico`` backend may import this module (and no other
of the judge's), so the two agree on spelling without the emitter sharing the judge's logic.
"""

from __future__ import annotations

import re

__all__ = ["SelectorQuotingError", "check_key", "quote"]

#: The characters Calico accepts in a label key (``tokenizer.LabelKeyMatcher``).
_KEY = re.compile(r"[a-zA-Z0-9_./-]+")

class SelectorQuotingError(ValueError):
    """A label key or value that Calico's selector syntax cannot express."""


def quote(value: str) -> str:
    """``value`` as a Calico string literal: ``'v'``, or ``"v"`` when it contains ``'``."""
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise SelectorQuotingError(
        f"label value {value!r} contains both ' and \"; Calico selector strings have no "
        "escapes, so it cannot be written"
    )


def check_key(key: str) -> str:
    """``key`` itself, if Calico's tokenizer reads it as one label key; else an error."""
    if _KEY.fullmatch(key) is None:
        raise SelectorQuotingError(
            f"label key {key!r} has characters a Calico selector cannot hold "
            "(keys are unquoted: letters, digits, '_', '.', '/', '-')"
        )
    return key
