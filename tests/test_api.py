"""The library API: compile's contract (no I/O, located diagnostics, options)."""

from __future__ import annotations

import pytest

import npc
from npc.errors import Code, UnsupportedError
from tests.helpers import source

REFUSED_BY_CALICO = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: p
  namespace: a
spec:
  podSelector:
    matchLabels:
      projectcalico.org/namespace: b
"""


def test_backend_refusals_carry_file_positions() -> None:
    with pytest.raises(UnsupportedError) as info:
        npc.compile([source(REFUSED_BY_CALICO, "refused.yaml")], "calico")
    (diag,) = info.value.errors
    assert diag.code is Code.UNSUPPORTED
    assert diag.location is not None
    assert (diag.location.file, diag.location.line) == ("refused.yaml", 8)
    assert diag.render().startswith("refused.yaml:8:5: error: spec.podSelector: ")


def test_unknown_option_is_an_error() -> None:
    with pytest.raises(UnsupportedError) as info:
        npc.compile([source(REFUSED_BY_CALICO)], "ir", {"table": "x"})
    assert "--table does not apply to target ir" in info.value.errors[0].message


def test_unknown_target_lists_the_available_ones() -> None:
    with pytest.raises(UnsupportedError) as info:
        npc.compile([source(REFUSED_BY_CALICO)], "nope")
    assert info.value.errors[0].code is Code.UNKNOWN_TARGET
    assert "calico" in (info.value.errors[0].hint or "")
