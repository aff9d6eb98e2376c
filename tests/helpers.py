"""Small helpers shared by tests (public API only)."""

from __future__ import annotations

import textwrap

import netaddr
import pytest

import npc
import npc.cli
from npc import ir
from npc.errors import Diagnostic, NpcError
from npc.snapshot import ContainerPort, Namespace, Pod, Snapshot

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


def http_in_two_containers() -> Snapshot:
    """Namespace ``a``: pod ``web`` names port ``http`` in two containers (TCP 8080 and 9090,
    and UDP 53), pod ``plain`` declares no port. The API server accepts this; the name then
    stands for both numbers."""
    web = Pod(
        "a",
        "web",
        ips=(netaddr.IPAddress("10.0.0.2"),),
        ports=(
            ContainerPort(8080, ir.Protocol.TCP, "http"),
            ContainerPort(9090, ir.Protocol.TCP, "http"),
            ContainerPort(53, ir.Protocol.UDP, "http"),
        ),
    )
    plain = Pod("a", "plain", ips=(netaddr.IPAddress("10.0.0.3"),))
    return Snapshot((Namespace("a"),), (web, plain))


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``npc ARGV...`` in this process: (exit status, stdout, stderr)."""
    status = npc.cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err
