"""``--cni NAME``: policies relying on what the named plugin does not enforce.

The facts, with the version each holds for and its source, are
:data:`npc.analysis.cni.CNIS`. A feature the plugin ignores is W613 (flannel and Terway's
exclusive-ENI mode ignore NetworkPolicy altogether: one finding per policy); a feature only
recent releases enforce is I614. Facts not established (``enforced`` None) give nothing.
ipBlocks holding pod addresses need the snapshot and are checked with the other ipBlock
checks (:mod:`npc.analysis.lint.addresses`).
"""

from __future__ import annotations

from collections.abc import Iterator

from npc import ir
from npc.analysis.cni import Cni, Fact, Feature
from npc.analysis.lint.finding import Finding
from npc.capabilities import Capability, feature_uses
from npc.errors import Code, Severity
from npc.snapshot import Snapshot

__all__ = ["check"]

_FEATURES = {
    Capability.PORT_RANGES: Feature.PORT_RANGES,
    Capability.NAMED_PORTS: Feature.NAMED_PORTS,
    Capability.SCTP: Feature.SCTP,
    Capability.IPV6: Feature.IPV6,
}


def _finding(cni: Cni, fact: Fact, policy: ir.Policy, path: tuple[str | int, ...]) -> Finding:
    note = f"; {fact.note}" if fact.note else ""
    where = f"{fact.version}; {fact.source}{note}"
    if fact.enforced is False:
        return Finding.at(
            Code.CNI_IGNORES,
            policy,
            path,
            f"{cni.name} does not enforce {fact.feature.value} ({where})",
            "rewrite the rule without it, or enforce these policies with another plugin",
        )
    return Finding.at(
        Code.CNI_VERSION,
        policy,
        path,
        f"{cni.name} enforces {fact.feature.value} only from release {fact.since} ({where})",
        f"check that the cluster runs {cni.name} {fact.since} or later",
        Severity.INFO,
    )


def check(policies: ir.PolicySet, snapshot: Snapshot | None, cni: Cni) -> Iterator[Finding]:
    """W613 / I614 for ``cni``."""
    del snapshot  # ipBlocks on pod addresses are checked in .addresses
    policy_fact = cni.fact(Feature.POLICY)
    if policy_fact is not None and policy_fact.enforced is False:
        for policy in policies:
            yield _finding(cni, policy_fact, policy, ("metadata", "name"))
        return
    seen: set[tuple[str, Feature]] = set()
    for use in feature_uses(policies):
        feature = _FEATURES.get(use.capability)
        if feature is None or (use.policy.key, feature) in seen:
            continue
        fact = cni.fact(feature)
        if fact is None or (fact.enforced is not False and fact.since is None):
            continue
        if fact.enforced is None:
            continue
        seen.add((use.policy.key, feature))
        yield _finding(cni, fact, use.policy, use.path)
