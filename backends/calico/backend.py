"""The ``calico`` target: Calico policy resources as a multi-document YAML stream.

Two scopes (``--calico-scope``):

``global`` (default)
    One ``projectcalico.org/v3`` GlobalNetworkPolicy per NetworkPolicy, namespace scoping
    spelled out, Calico's limits met by splitting (:mod:`npc.backends.calico.gnp`). Runs the
    optimizer first. For platform teams managing policy cluster-wide.
``namespaced``
    Calico's own namespaced NetworkPolicy, exactly as libcalico-go converts a Kubernetes
    NetworkPolicy (:mod:`npc.backends.calico.knp`); not optimized, so npc can be diffed
    against what Calico holds internally.

Both are data serialised by PyYAML's safe dumper (no anchors): deterministic, one document per
object, accepted by ``kubectl apply -f -`` and ``calicoctl apply -f -``. No snapshot is
needed: selectors stay selectors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from npc import ir, kubeyaml
from npc.backends.base import Backend, BackendOptions, Counts, Emitted
from npc.backends.calico import counts
from npc.backends.calico.cnp import cluster_policies as cluster_policy_docs
from npc.backends.calico.common import check_namespace_label_spoofing
from npc.backends.calico.gnp import global_policies
from npc.backends.calico.knp import namespaced_policies
from npc.capabilities import NETWORK_POLICY, Capability
from npc.errors import Code, Diagnostic, Severity, UnsupportedError
from npc.snapshot import Snapshot
from npc.tiers import ClusterPolicySet

__all__ = ["SCOPES", "CalicoBackend", "CalicoOptions", "dump"]

SCOPES = ("global", "namespaced")


@dataclass(frozen=True, slots=True)
class CalicoOptions(BackendOptions):
    """``calico_scope``: ``global`` (GlobalNetworkPolicy) or ``namespaced`` (Calico's
    converter form)."""

    calico_scope: str = "global"

    def __post_init__(self) -> None:
        if self.calico_scope not in SCOPES:
            raise UnsupportedError(
                Diagnostic(
                    Code.UNSUPPORTED,
                    Severity.ERROR,
                    f"calico scope must be one of {', '.join(SCOPES)}, not {self.calico_scope!r}",
                    hint="--calico-scope global (GlobalNetworkPolicy) or namespaced",
                )
            )


def dump(docs: list[dict[str, Any]], *, sort_keys: bool) -> str:
    """A YAML stream, one ``---`` document per object (empty for no objects)."""
    if not docs:
        return ""
    return kubeyaml.dump_all(
        docs,
        explicit_start=True,
        sort_keys=sort_keys,
        default_flow_style=False,
        width=4096,
    )


class CalicoBackend(Backend):
    """Calico GlobalNetworkPolicy (cluster-wide) or Calico's namespaced converter form."""

    name = "calico"
    description = (
        "Calico projectcalico.org/v3 GlobalNetworkPolicy (or, with --calico-scope namespaced, "
        "Calico's own converted NetworkPolicy)"
    )
    capabilities: ClassVar[frozenset[Capability]] = NETWORK_POLICY | {
        Capability.CLUSTER_NETWORK_POLICY
    }
    suffix = "calico.yaml"
    options_type = CalicoOptions

    def optimizes(self, options: BackendOptions) -> bool:
        """The namespaced form reproduces Calico's converter rule for rule: no passes."""
        return not (isinstance(options, CalicoOptions) and options.calico_scope == "namespaced")

    def count(self, emitted: Emitted) -> Counts:
        """Policies and tiers; their rules (:mod:`.counts`)."""
        return counts.count(emitted)

    def emit(
        self, policies: ir.PolicySet, snapshot: Snapshot | None, options: BackendOptions
    ) -> Emitted:
        opts = self.check_options(options, CalicoOptions)
        # Selectors need no snapshot; when one is given, check it for pods Calico would
        # misplace into other namespaces.
        check_namespace_label_spoofing(policies, snapshot)
        if opts.calico_scope == "namespaced":
            # Sorted keys: what `calicoctl get -o yaml` prints, so the two diff cleanly.
            return Emitted(dump(namespaced_policies(policies), sort_keys=True))
        return Emitted(dump(global_policies(policies), sort_keys=False))

    def emit_tiered(
        self,
        policies: ir.PolicySet,
        cluster_policies: ClusterPolicySet,
        snapshot: Snapshot | None,
        options: BackendOptions,
    ) -> Emitted:
        """NetworkPolicies as :meth:`emit` writes them, then ClusterNetworkPolicies in
        Calico's tiers ``kube-admin`` and ``kube-baseline`` (:mod:`npc.backends.calico.cnp`)."""
        emitted = self.emit(policies, snapshot, options)
        if not cluster_policies:
            return emitted
        opts = self.check_options(options, CalicoOptions)
        docs = cluster_policy_docs(cluster_policies)
        text = dump(docs, sort_keys=opts.calico_scope == "namespaced")
        joined = emitted.text + text if emitted.text else text
        return Emitted(joined, emitted.diagnostics)
