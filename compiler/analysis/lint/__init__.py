"""``npc lint``: valid policies that probably do not do what their author meant.

One implementation for ``npc lint`` and for the warnings every load prints (``npc validate``,
``npc compile``): :func:`written_findings` are the checks that need nothing but the policies
as written, and that every load runs; :func:`lint` runs every check. Each check is precise
rather than loud: a clean, well-written policy set gets no finding. The checks, by module:

* :mod:`.written` (golden/seed003-my-app-ns): rules of a direction ``policyTypes`` leaves out
  (ignored, W601); a namespaceSelector-only peer next to a podSelector-only peer (an OR where
  an AND was probably meant, W602);
* :mod:`.selectors` (golden/seed002-*, seed003-*): a namespaceSelector on a label no
  namespace carries (W606); a podSelector selecting no pod (W604), peers matching nothing (W609);
* :mod:`.addresses` (golden/seed004-*): an ipBlock meant for clients that a NodePort or
  LoadBalancer Service with ``externalTrafficPolicy: Cluster`` source-NATs (W607); ipBlocks
  holding pod addresses (W610);
* :mod:`.dns`: egress isolation that leaves pods no DNS (W608, I615 for TCP only);
* :mod:`.shadow`: rules another rule of the policy covers (W611), policies that add nothing
  to what other policies allow the same pods (W612);
* :mod:`.plugins`: with ``--cni``, what the plugin ignores (W613) or needs a newer release for
  (I614), from :data:`npc.analysis.cni.CNIS`;
* :mod:`.cluster` (golden/cnp-*, conformance-*): ClusterNetworkPolicy rules never reached
  (W617), Admin rules that leave NetworkPolicy rules nothing to decide (W618), Pass in the
  Baseline tier (W619), subjects selecting no pod (W604), Deny rules that leave pods no DNS
  (W620).

A CIDR with host bits set is reported while reading (W201, :mod:`npc.frontend.k8s.validation`
owns the parsing); ``npc lint`` reports it with the rest.
"""

from __future__ import annotations

from npc import ir, tiers
from npc.analysis.lint import written
from npc.analysis.lint.finding import Finding, LintOptions
from npc.snapshot import Snapshot

__all__ = ["Finding", "LintOptions", "lint", "written_findings"]


def written_findings(policies: ir.PolicySet) -> tuple[Finding, ...]:
    """The checks that need only the policies, run on every load (``validate`` prints them)."""
    return tuple(f for p in policies for f in written.check_policy(p))


def lint(
    policies: ir.PolicySet,
    snapshot: Snapshot | None,
    options: LintOptions | None = None,
    cluster_policies: tiers.ClusterPolicySet = tiers.EMPTY,
) -> tuple[Finding, ...]:
    """Every check over ``policies`` and ``cluster_policies`` (and ``snapshot``: checks that
    need one are skipped without it). Findings come unlocated, grouped by check."""
    # Imported here: every load runs the written checks, only `npc lint` the others.
    from npc.analysis.lint import (  # noqa: PLC0415
        addresses,
        cluster,
        dns,
        plugins,
        selectors,
        shadow,
    )

    opts = options or LintOptions()
    found: list[Finding] = list(written_findings(policies))
    found.extend(shadow.check(policies))
    if snapshot is not None:
        found.extend(selectors.check(policies, snapshot))
        found.extend(addresses.check(policies, snapshot, opts.cni))
    if snapshot is not None and snapshot.pods:
        found.extend(dns.check(policies, snapshot, cluster_policies))
    else:
        found.extend(dns.check_without_snapshot(policies))
    if opts.cni is not None:
        found.extend(plugins.check(policies, snapshot, opts.cni))
    found.extend(cluster.check(cluster_policies, policies, snapshot))
    return tuple(found)
