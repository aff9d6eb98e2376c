"""Checking one validation rule: load a policy and assert exactly the diagnostics wanted.

Shared by ``tests/test_validation_*.py``: a test per validation rule, valid and invalid side
by side. Rules follow the Kubernetes API server (``pkg/apis/networking/validation``,
apimachinery's ``ValidateObjectMeta``/``ValidateLabelSelector``/``IsQualifiedName``/
``IsValidPortName``/``ParseCIDRSloppy``) and strict decoding (``kubectl apply
--validate=strict``). Every case asserts the severity, ``line:column``, field path, the gist
of the message and of the hint (:func:`check`).

Policies are written with a fixed header, so positions are easy to check by eye::

    1 apiVersion: networking.k8s.io/v1
    2 kind: NetworkPolicy
    3 metadata:
    4   name: web
    5   namespace: prod
    6 spec:
    7   <first line of the spec body, column 3>
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import npc
from npc import ir
from npc.errors import Diagnostic, NpcError, Severity

HEADER = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"


def spec(body: str, *, name: str = "web", namespace: str = "prod") -> str:
    """A policy whose spec body starts at line 7, column 3."""
    lines = textwrap.dedent(body).strip("\n").splitlines()
    indented = "\n".join(f"  {line}" if line else "" for line in lines)
    return f"{HEADER}metadata:\n  name: {name}\n  namespace: {namespace}\nspec:\n{indented}\n"


def doc(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def load(text: str) -> tuple[npc.Bundle | None, tuple[Diagnostic, ...]]:
    try:
        bundle = npc.load([npc.Source("np.yaml", text)])
    except NpcError as exc:
        return None, exc.diagnostics
    return bundle, bundle.diagnostics


@dataclass(frozen=True)
class Want:
    """An expected diagnostic: severity, "line:col", path, gist of message and hint."""

    severity: str
    where: str
    path: str
    gist: str
    hint: str | None = None


def E(where: str, path: str, gist: str, hint: str | None = None) -> Want:
    return Want("error", where, path, gist, hint)


def W(where: str, path: str, gist: str, hint: str | None = None) -> Want:
    return Want("warning", where, path, gist, hint)


def check(text: str, *wanted: Want) -> npc.Bundle | None:
    """Load ``text`` and assert exactly the ``wanted`` errors and warnings (notes ignored)."""
    bundle, diagnostics = load(text)
    got = [d for d in diagnostics if d.severity is not Severity.INFO]
    rendered = "\n".join(d.render() for d in got)
    assert len(got) == len(wanted), f"expected {len(wanted)} diagnostics, got:\n{rendered}"
    for d, w in zip(got, wanted, strict=True):
        assert d.location is not None, d.render()
        assert d.severity.value == w.severity, d.render()
        assert f"{d.location.line}:{d.location.column}" == w.where, d.render()
        assert d.location.file == "np.yaml"
        assert d.path == w.path, d.render()
        assert w.gist in d.message, d.render()
        if w.hint is None:
            assert d.hint is None, d.render()
        else:
            assert d.hint is not None and w.hint in d.hint, d.render()
    if any(w.severity == "error" for w in wanted):
        assert bundle is None
    else:
        assert bundle is not None
    return bundle


def only_policy(bundle: npc.Bundle | None) -> ir.Policy:
    assert bundle is not None
    (policy,) = bundle.policies
    return policy
