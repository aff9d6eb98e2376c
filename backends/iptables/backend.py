"""The ``iptables`` target: ``iptables-restore --noflush`` parts and an ``ipset restore`` file.

``npc compile --target iptables`` writes the ``filter`` table's NPC chains for IPv4
(``iptables-restore``) and IPv6 (``ip6tables-restore``), each part marked by a ``#`` line
and ending in ``COMMIT`` (``--family 4|6|both``), and the ipsets those chains match
(``-o PATH`` writes ``PATH`` and ``PATH.ipset``; on stdout the ipset file follows the rules
after a delimiter line). Every rule lives in a chain named ``NPC-...`` that the part
declares, so a restore with ``--noflush`` flushes and refills exactly npc's chains in one
commit, and no other rule, chain or set on the node is touched: unlike a full-table restore
(kube-router's issues #1248 and #1370), rules other agents add in between survive.

The ruleset (:mod:`.plan`) has the nft target's semantics: established and related traffic
accepted first, invalid dropped, then the egress check of an isolated source, then the
ingress check of an isolated destination, reached through a prefix tree of chains
(:mod:`.dispatch`) rather than a rule per pod. ClusterNetworkPolicies add the Admin tier's
chains before that check and the Baseline tier's after it, on each side (:mod:`.tiers`).
Peers are resolved by :mod:`npc.backends.grants`; ``--sets none`` writes one rule per
address block instead of ipsets, for hosts without ipset. ``npc apply`` loads both
(:mod:`.apply`), with the ``iptables-legacy`` or ``iptables-nft`` tools when ``--variant``
says which.

What it filters: traffic the node forwards, as the nft target (pod-to-own-node traffic
never meets ``FORWARD``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Final

import jinja2

from npc import ir
from npc.backends.base import Applied, Backend, BackendOptions, Counts, Emitted, split_bundle
from npc.backends.iptables import counts, syntax
from npc.backends.iptables.apply import apply_ruleset
from npc.backends.iptables.plan import plan
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
from npc.targets import TARGET_SETTINGS
from npc.tiers import ClusterPolicySet

__all__ = [
    "IptablesBackend",
    "IptablesOptions",
]

#: What the ipset file is written as, next to the ``-o`` path.
IPSET_SUFFIX: Final = ".ipset"


@dataclass(frozen=True, slots=True)
class IptablesOptions(BackendOptions):
    """``family``: the address families to write (``4``, ``6`` or ``both``). ``sets``:
    ``ipset`` to match peers with ipsets, ``none`` to write one rule per address block.
    ``node``: only the pods on this node (and pods that name no node). ``variant``: which
    iptables tools ``npc apply`` runs (``legacy``: ``iptables-legacy-restore``...; ``nft``:
    ``iptables-nft-restore``...; ``auto``: whatever ``iptables-restore`` is here); the
    compiled text is the same for all."""

    family: str = "both"
    sets: str = "ipset"
    node: str | None = None
    variant: str = "auto"

    def __post_init__(self) -> None:
        choices = {s.name: s.choices for s in TARGET_SETTINGS}  # the registry's word
        for name in ("family", "sets", "variant"):
            value = getattr(self, name)
            if value not in choices[name]:
                raise ValidationError(
                    Diagnostic(
                        Code.INVALID_VALUE,
                        Severity.ERROR,
                        f"--{name} {value!r} is not one of {', '.join(choices[name])}",
                    )
                )

    @property
    def families(self) -> tuple[int, ...]:
        return (4, 6) if self.family == "both" else (int(self.family),)


def _environment() -> jinja2.Environment:
    return environment({"ipt_note": syntax.note})


class IptablesBackend(Backend):
    """iptables: NPC chains in the filter table (``--noflush`` restore) plus ipsets."""

    name = "iptables"
    description = (
        "iptables-restore --noflush chains for FORWARD plus an ipset file (needs a cluster "
        "snapshot)"
    )
    #: Every NetworkPolicy feature, and ClusterNetworkPolicy (the tier chains of
    #: :mod:`.tiers`; ``domainNames`` peers are refused before emitting, as everywhere).
    capabilities: ClassVar[frozenset[Capability]] = NETWORK_POLICY | {
        Capability.CLUSTER_NETWORK_POLICY
    }
    needs_snapshot = True
    suffix = "iptables"
    companions = (IPSET_SUFFIX,)
    options_type = IptablesOptions

    def emit(
        self, policies: ir.PolicySet, snapshot: Snapshot | None, options: BackendOptions
    ) -> Emitted:
        return self.emit_tiered(policies, ClusterPolicySet(), snapshot, options)

    def emit_tiered(
        self,
        policies: ir.PolicySet,
        cluster_policies: ClusterPolicySet,
        snapshot: Snapshot | None,
        options: BackendOptions,
    ) -> Emitted:
        """NetworkPolicies and ClusterNetworkPolicies: the tier chains of
        :mod:`npc.backends.iptables.tiers` around the NetworkPolicy dispatch (without any
        ClusterNetworkPolicy, the ruleset of NetworkPolicy alone)."""
        opts = self.check_options(options, IptablesOptions)
        if snapshot is None:  # npc.compile refuses earlier; direct callers get the same error
            raise UnsupportedError(snapshot_required(f"target {self.name}"))
        ruleset = plan(
            policies, snapshot, opts.families, opts.sets == "ipset", opts.node, cluster_policies
        )
        env = _environment()
        rules = env.get_template("iptables.j2").render(plan=ruleset)
        ipsets = env.get_template("ipset.j2").render(plan=ruleset)
        return Emitted.of_files(((("", rules), (IPSET_SUFFIX, ipsets))), ruleset.diagnostics)

    def apply(self, text: str, options: BackendOptions, *, dry_run: bool = False) -> Applied:
        """Load the sets, then the chains, into the current network namespace (see
        :mod:`.apply` for the order that keeps the previous ruleset on any failure)."""
        opts = self.check_options(options, IptablesOptions)
        files = split_bundle(text, self.companions)
        variant = None if opts.variant == "auto" else opts.variant
        return Applied(apply_ruleset(files[""], files[IPSET_SUFFIX], variant, dry_run=dry_run))

    def count(self, emitted: Emitted) -> Counts:
        """Chains and ipsets; rules (:mod:`.counts`)."""
        return counts.count(emitted)
