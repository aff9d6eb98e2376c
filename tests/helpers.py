"""Small helpers shared by tests (public API only)."""

from __future__ import annotations

import textwrap

import npc
from npc.errors import Diagnostic, NpcError

#: A minimal valid policy in namespace prod; ``.format(name=...)`` names it.
NAMED_POLICY = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {name}
  namespace: prod
spec:
  podSelector: {{}}
"""


def source(text: str, name: str = "input.yaml") -> npc.Source:
    return npc.Source(name, textwrap.dedent(text).lstrip("\n"))


def load(*texts: str) -> npc.Bundle:
    return npc.load([source(t, f"input{i or ''}.yaml") for i, t in enumerate(texts)])


def diagnostics(*texts: str) -> tuple[Diagnostic, ...]:
    """The diagnostics of a load that is expected to fail."""
    try:
        load(*texts)
    except NpcError as exc:
        return exc.diagnostics
    raise AssertionError("expected the input to be rejected")


def rendered(*texts: str) -> str:
    return "\n".join(d.render() for d in diagnostics(*texts))
