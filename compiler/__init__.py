"""npc: a compiler for Kubernetes NetworkPolicy.

Reads NetworkPolicy YAML exactly as the API server would, turns it into one typed IR, and
emits it for several enforcement points (nftables, iptables, Calico, Alibaba ECS).

Library use::

    import npc
    sources = npc.read_sources(["policies/", "cluster.yaml"])   # the only helper doing I/O
    bundle = npc.load(sources)            # raises npc.NpcError with every diagnostic
    artifact = npc.compile(bundle, target="ir")
    print(artifact.text)
    artifact, applied = npc.apply(bundle, target="nft")   # loads it into this host's kernel
    for finding in npc.lint(bundle, cni="calico"):     # probable mistakes, with positions
        print(finding.render())
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from npc.api import Applied, Artifact, Finding, apply, compile, lint, load
from npc.errors import (
    BackendError,
    Code,
    Diagnostic,
    InputError,
    Location,
    NpcError,
    Severity,
    UnsupportedError,
    ValidationError,
)
from npc.frontend import Bundle
from npc.frontend.inputs import read_sources
from npc.frontend.source import Source

try:
    __version__ = version("npc-netpol")  # the distribution's name: `npc` on PyPI is another project
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "Applied",
    "Artifact",
    "BackendError",
    "Bundle",
    "Code",
    "Diagnostic",
    "Finding",
    "InputError",
    "Location",
    "NpcError",
    "Severity",
    "Source",
    "UnsupportedError",
    "ValidationError",
    "__version__",
    "apply",
    "compile",
    "lint",
    "load",
    "read_sources",
]
