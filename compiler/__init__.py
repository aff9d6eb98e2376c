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
    report = npc.verify(bundle, "nft", [npc.Source("r.nft", text)])   # ruleset vs policies
    changes = npc.diff(old_bundle, new_bundle)           # flows a policy change opens/closes
    for finding in npc.lint(bundle, cni="calico"):     # probable mistakes, with positions
        print(finding.render())
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from npc.api import (
    Applied,
    Artifact,
    apply,
    compare,
    compile,
    diff,
    lint,
    load,
    verify,
)
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

if TYPE_CHECKING:
    from npc.analysis.lint import Finding

    __version__: str


def __getattr__(name: str) -> Any:
    # Looked up on first use (PEP 562): importlib.metadata costs a command ~50 ms to import.
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

        try:
            # the distribution's name: `npc` on PyPI is another project
            return version("npc-netpol")
        except PackageNotFoundError:  # pragma: no cover - running from a source tree
            return "0.0.0"
    if name == "Finding":
        from npc.analysis.lint import Finding  # noqa: PLC0415

        return Finding
    if not name.startswith("__"):
        # A subpackage (npc.grammar, npc.backends) is imported when first named, as
        # importing npc did when it imported every analysis (and so the grammars) eagerly.
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    "compare",
    "compile",
    "diff",
    "lint",
    "load",
    "read_sources",
    "verify",
]
