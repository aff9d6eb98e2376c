"""The ``nft`` target: one nftables table filtering forwarded pod traffic, and applying it.

``npc compile --target nft`` writes an ``nft -f`` script that atomically creates or replaces
``table inet npc`` (``--table``) and touches nothing else; ``npc apply`` loads it into the
current network namespace. The ruleset (:mod:`.plan`) dispatches new flows by pod address
through verdict maps to one chain per class of isolated pods, whose allow sets are named,
concatenated, deduplicated sets (:mod:`.elements`), so the per-packet cost stays flat as
policies and pods grow. Selectors and named ports are resolved against the cluster snapshot
(:mod:`npc.backends.grants`); ``--node`` keeps only the pods scheduled on one node, which is what a
per-node agent enforces (and pods that name no node, which every node then enforces).

What it filters, and what not: traffic the node forwards (pod to pod, external to pod, pod to
external). Traffic the node itself originates or receives (kubelet probes, hostNetwork pods
on the same node) does not pass the forward hook and is not filtered, as in kube-router and
kube-network-policies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

import jinja2

from npc import ir
from npc.backends.base import Applied, Backend, BackendOptions, Counts, Emitted
from npc.backends.nft import counts
from npc.backends.nft import syntax as nft_syntax
from npc.backends.nft.apply import load
from npc.backends.nft.plan import plan
from npc.backends.render import environment
from npc.capabilities import NETWORK_POLICY, Capability
from npc.errors import (
    Code,
    Diagnostic,
    Severity,
    UnsupportedError,
    ValidationError,
    snapshot_required,
)
from npc.snapshot import Snapshot
from npc.tiers import ClusterPolicySet

__all__ = ["NftOptions", "NftablesBackend"]


@dataclass(frozen=True, slots=True)
class NftOptions(BackendOptions):
    """``table``: name of the ``inet`` table npc owns. ``node``: only the pods scheduled on
    this node (what a per-node agent applies) and pods that name no node; None for every
    pod (one enforcement point routing the whole cluster)."""

    table: str = "npc"
    node: str | None = None

    def __post_init__(self) -> None:
        if not nft_syntax.is_identifier(self.table) or not re.fullmatch(
            r"[A-Za-z][A-Za-z0-9_-]*", self.table
        ):
            reason = (
                "is an nft keyword"
                if self.table.lower() in nft_syntax.KEYWORDS
                else "is not a valid table name"
            )
            raise ValidationError(
                Diagnostic(
                    Code.INVALID_VALUE,
                    Severity.ERROR,
                    f"--table {self.table!r} {reason}",
                    hint=f"use a letter, then letters, digits, '_' or '-' (at most "
                    f"{nft_syntax.NAME_MAX} characters, not an nft keyword), e.g. --table npc",
                )
            )


def _environment() -> jinja2.Environment:
    return environment({"nft_comment": nft_syntax.comment, "nft_note": nft_syntax.note})


class NftablesBackend(Backend):
    """nftables: an ``inet`` table on the forward hook, loaded atomically with ``nft -f``."""

    name = "nft"
    description = "nftables ruleset for the forward hook (nft -f; needs a cluster snapshot)"
    capabilities: ClassVar[frozenset[Capability]] = NETWORK_POLICY | {
        Capability.CLUSTER_NETWORK_POLICY
    }
    needs_snapshot = True
    suffix = "nft"
    options_type = NftOptions

    def emit(
        self, policies: ir.PolicySet, snapshot: Snapshot | None, options: BackendOptions
    ) -> Emitted:
        opts = self.check_options(options, NftOptions)
        if snapshot is None:  # npc.compile refuses earlier; direct callers get the same error
            raise UnsupportedError(snapshot_required(f"target {self.name}"))
        ruleset = plan(policies, snapshot, opts.table, opts.node)
        text = _environment().get_template("nft.j2").render(plan=ruleset)
        return Emitted(text, ruleset.diagnostics)

    def emit_tiered(
        self,
        policies: ir.PolicySet,
        cluster_policies: ClusterPolicySet,
        snapshot: Snapshot | None,
        options: BackendOptions,
    ) -> Emitted:
        """NetworkPolicies and ClusterNetworkPolicies: the tier chains of
        :mod:`npc.backends.nft.tiers` around the NetworkPolicy dispatch."""
        if not cluster_policies:
            return self.emit(policies, snapshot, options)
        opts = self.check_options(options, NftOptions)
        if snapshot is None:
            raise UnsupportedError(snapshot_required(f"target {self.name}"))
        ruleset = plan(policies, snapshot, opts.table, opts.node, cluster_policies)
        text = _environment().get_template("nft.j2").render(plan=ruleset)
        return Emitted(text, ruleset.diagnostics)

    def count(self, emitted: Emitted) -> Counts:
        """Tables, chains, sets and maps; the chains' rules (:mod:`.counts`)."""
        return counts.count(emitted)

    def apply(self, text: str, options: BackendOptions, *, dry_run: bool = False) -> Applied:
        """Load ``text`` with ``nft -f`` (``nft -c -f`` for a dry run) into the current
        network namespace: one transaction, so on any error nothing changes."""
        opts = self.check_options(options, NftOptions)
        return load(text, opts.table, dry_run=dry_run)
