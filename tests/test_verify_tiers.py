"""``npc verify`` / ``npc diff`` / ``npc compare`` with ClusterNetworkPolicies (issues 11
and 14): the spec side follows the tier reference semantics.

- npc's own output of every golden tier case verifies as equivalent (the golden sweep in
  ``tests/test_verify.py`` covers the cluster-wide rulesets; per-node ones here);
- doctored tier rulesets are caught with their true counterexamples: a doctored ruleset is
  the compilation of a doctored policy, so the differences verify lists must be exactly the
  flows on which the oracle's verdicts of the two policy sets differ;
- ``npc diff`` of two policy sets that differ by a ClusterNetworkPolicy lists exactly the
  flows the oracle says changed (random clusters and tiers, and hand-made changes);
- ``npc compare`` follows each target's capabilities.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import npc
from npc.cli import cli
from npc.snapshot import Snapshot
from tests.flow_check import Change, oracle_changes
from tests.synth import cluster_yaml, policy_yaml, random_cluster, random_policies
from tests.synth_tiers import (
    cluster_policy_yaml,
    nodes_yaml,
    random_cluster_policies,
    with_nodes,
)

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "golden"
TIER_CASES = sorted(
    p.parent.name
    for p in GOLDEN.glob("*/cluster.yaml")
    if p.parent.name.startswith(("cnp-", "conformance-"))
)
GUARDRAILS = GOLDEN / "cnp-admin-pass-baseline"


def _load(*texts: tuple[str, str]) -> npc.Bundle:
    return npc.load([npc.Source(name, text) for name, text in texts])


def _case(case: str, policies: str | None = None) -> npc.Bundle:
    folder = GOLDEN / case
    text = (folder / "input.yaml").read_text() if policies is None else policies
    return _load(("input.yaml", text), ("cluster.yaml", (folder / "cluster.yaml").read_text()))


def _listed(report: npc.api.VerifyReport) -> set[Change]:
    """The differences as (src, dst, protocol, port, ruleset's verdict, spec's verdict)."""
    return {(d.src, d.dst, d.protocol, d.port, d.ruleset, d.spec) for d in report.differences}


# -- npc's own output, per node ---------------------------------------------------------


@pytest.mark.parametrize("case", TIER_CASES)
def test_per_node_nft_rulesets_of_tier_cases_verify_equivalent(case: str) -> None:
    bundle = _case(case)
    assert bundle.snapshot is not None and bundle.cluster_policies
    for node in sorted({p.node_name for p in bundle.snapshot.pods if p.node_name}):
        text = npc.compile(bundle, "nft", {"node": node}).text
        report = npc.verify(bundle, "nft", [npc.Source("n.nft", text)], node=node)
        assert report.equivalent, (node, report.differences[:3])


def _random_tiered(
    seed: int, *, nodes: bool = True, host_network: bool = False
) -> tuple[Snapshot, list[npc.Source]]:
    rng = random.Random(seed)
    ipv6 = seed % 3 == 0
    snap = with_nodes(
        rng, random_cluster(rng, namespaces=3, pods=7, ipv6=ipv6, host_network=host_network)
    )
    policies = random_policies(rng, snap, count=rng.randint(0, 3), ipv6=ipv6)
    cluster = random_cluster_policies(rng, count=rng.randint(1, 3), ipv6=ipv6, nodes=nodes)
    sources = [
        npc.Source("cnp.yaml", cluster_policy_yaml(cluster)),
        npc.Source("np.yaml", policy_yaml(policies)),
    ]
    return snap, sources


def _cluster(snap: Snapshot) -> npc.Source:
    return npc.Source("cluster.yaml", cluster_yaml(snap) + nodes_yaml(snap))


@pytest.mark.parametrize("seed", range(8))
def test_random_tiered_nft_output_verifies_equivalent(seed: int) -> None:
    snap, sources = _random_tiered(seed, host_network=seed % 2 == 1)
    bundle = npc.load([*sources, _cluster(snap)])
    text = npc.compile(bundle, "nft").text
    report = npc.verify(bundle, "nft", [npc.Source("r.nft", text)])
    assert report.equivalent, report.differences[:5]
    # With ``nodes`` peers the node addresses are outside ends (no pod holds them here).
    assert {"192.168.7.10", "192.168.7.11"} <= set(report.outside) or not any(
        "nodes:" in s.text for s in sources
    )
    node = "node0"
    text = npc.compile(bundle, "nft", {"node": node}).text
    report = npc.verify(bundle, "nft", [npc.Source("n.nft", text)], node=node)
    assert report.equivalent, report.differences[:5]


@pytest.mark.parametrize("seed", range(6))
def test_random_tiered_calico_output_verifies_equivalent(seed: int) -> None:
    """Calico (no ``nodes`` peers: it refuses them), both scopes; its one documented
    divergence (a workload's egress policy applied to its own host) needs a hostNetwork pod,
    which these clusters do not have."""
    snap, sources = _random_tiered(seed, nodes=False)
    bundle = npc.load([*sources, _cluster(snap)])
    for scope in ("global", "namespaced"):
        text = npc.compile(bundle, "calico", {"calico_scope": scope}).text
        report = npc.verify(bundle, "calico", [npc.Source("r.yaml", text)])
        assert report.equivalent, (scope, report.differences[:5])


# -- one tiered policy set's ruleset against another; npc diff ---------------------------


@pytest.mark.parametrize("seed", range(8))
def test_cross_verify_and_diff_list_exactly_the_oracle_changes(seed: int) -> None:
    snap, old_sources = _random_tiered(seed)
    _, new_sources = _random_tiered(seed + 1000)
    cluster = _cluster(snap)
    old = npc.load([*old_sources, cluster])
    # The new set keeps the old NetworkPolicies and changes the ClusterNetworkPolicies.
    new = npc.load([new_sources[0], old_sources[1], cluster])
    changes = npc.diff(old, new)
    ruleset = npc.compile(old, "nft").text
    report = npc.verify(new, "nft", [npc.Source("old.nft", ruleset)], probes=changes.probes)
    assert set(report.outside) <= set(changes.outside)
    truth = oracle_changes(old, new, changes.probes, changes.outside)
    assert {(d.src, d.dst, d.protocol, d.port, d.old, d.new) for d in changes.differences} == truth
    shown = set(report.outside) | {p.key for p in snap.pods}
    assert _listed(report) == {c for c in truth if c[0] in shown and c[1] in shown}


def _guardrails(old: str, new: str) -> str:
    text = (GUARDRAILS / "input.yaml").read_text()
    assert old in text
    return text.replace(old, new, 1)


DENY_WEB_8080 = """---
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata:
  name: freeze-web
spec:
  tier: Admin
  priority: 5
  subject:
    pods:
      namespaceSelector: {matchLabels: {purpose: prod}}
      podSelector: {matchLabels: {app: web}}
  ingress:
  - action: Deny
    from:
    - namespaces: {}
    protocols:
    - tcp: {destinationPort: {number: 8080}}
"""

ORIGINAL = (GUARDRAILS / "input.yaml").read_text()
WITH_DENY = ORIGINAL + DENY_WEB_8080
#: The priorities of freeze-web (5) and cluster-guardrails (10) swapped.
SWAPPED = ORIGINAL.replace("  priority: 10\n", "  priority: 5\n", 1) + DENY_WEB_8080.replace(
    "priority: 5", "priority: 10"
)

#: Changes of the golden tier case by ClusterNetworkPolicies, as (old, new) policy texts: a
#: Deny added, two priorities swapped (the Pass of cluster-guardrails now before the Deny of
#: freeze-web), a Pass added before a Deny.
CHANGES = {
    "deny-added": (ORIGINAL, WITH_DENY),
    "priority-swap": (WITH_DENY, SWAPPED),
    "pass-added": (
        ORIGINAL,
        _guardrails(
            "  - name: no-metadata\n",
            "  - name: metadata-decided-later\n    action: Pass\n    to:\n"
            "    - networks: [169.254.0.0/16]\n  - name: no-metadata\n",
        ),
    ),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_diff_of_a_cluster_policy_change_is_the_oracle_change(change: str) -> None:
    before, after = CHANGES[change]
    old = _case("cnp-admin-pass-baseline", before)
    new = _case("cnp-admin-pass-baseline", after)
    report = npc.diff(old, new)
    truth = oracle_changes(old, new, report.probes, report.outside)
    assert truth, "the change changes something"
    assert {(d.src, d.dst, d.protocol, d.port, d.old, d.new) for d in report.differences} == truth


def test_diff_priority_swap_reverses_who_wins() -> None:
    """freeze-web's Deny before (priority 5) and after (priority 10 against 5) the Pass of
    cluster-guardrails: before, it denies web:8080 to everyone; after, apps' traffic is
    handed to NetworkPolicy first, which allows it."""
    report = npc.diff(*(_case("cnp-admin-pass-baseline", t) for t in CHANGES["priority-swap"]))
    assert {(d.src, d.dst, d.port, d.new) for d in report.differences} == {
        ("apps/client", "prod/web", 8080, True)
    }


# -- doctored tier rulesets ----------------------------------------------------------------


def _nft_lines(text: str, fragment: str) -> list[int]:
    return [i for i, line in enumerate(text.splitlines(), 1) if fragment in line]


#: A doctored nft ruleset (old line fragment -> new, None: the line removed), the policy edit
#: it amounts to, and the line (after the edited one) of the rule that decides the
#: differences (None: not checked).
DOCTORED = {
    "admin-deny-removed": (
        ('comment "cluster-guardrails egress[0] Deny"', None, None),
        _guardrails(
            "  - name: no-metadata\n    action: Deny\n    to:\n"
            "    - networks: [169.254.169.254/32]\n",
            "",
        ),
    ),
    "admin-pass-to-accept": (
        ("goto cnp-ingress-np comment", "accept comment", 0),
        _guardrails(
            "  - name: apps-to-prod-decided-by-prod\n    action: Pass\n",
            "  - name: apps-to-prod-decided-by-prod\n    action: Accept\n",
        ),
    ),
    "baseline-port-changed": (
        # 5999/UDP now falls through to the Deny of the next line
        ("th dport 5000-5999 accept", "th dport 5000-5998 accept", 1),
        _guardrails("end: 5999", "end: 5998"),
    ),
}


@pytest.mark.parametrize("name", sorted(DOCTORED))
def test_doctored_tier_ruleset_caught_with_true_counterexample(name: str) -> None:
    (fragment, replacement, decider), policies = DOCTORED[name]
    bundle = _case("cnp-admin-pass-baseline")
    text = npc.compile(bundle, "nft").text
    lines = text.splitlines(keepends=True)
    at = _nft_lines(text, fragment)
    assert len(at) == 1
    if replacement is None:
        del lines[at[0] - 1]
    else:
        lines[at[0] - 1] = lines[at[0] - 1].replace(fragment, replacement)
    doctored = "".join(lines)
    assert doctored != text
    report = npc.verify(bundle, "nft", [npc.Source("d.nft", doctored)])
    meant = _case("cnp-admin-pass-baseline", policies)
    truth = oracle_changes(meant, bundle, report.probes, report.outside)
    assert truth
    assert _listed(report) == truth
    if decider is not None:
        assert {d.rule for d in report.differences} == {f"d.nft:{at[0] + decider}"}


def _cli(*args: str) -> Result:
    """``npc ARGS -f`` the golden tier case."""
    files = ("-f", str(GUARDRAILS / "input.yaml"), "-f", str(GUARDRAILS / "cluster.yaml"))
    return CliRunner().invoke(cli, [*args, *files])


def test_doctored_text_names_the_tier_rule_on_the_spec_side(tmp_path: Path) -> None:
    bundle = _case("cnp-admin-pass-baseline")
    text = npc.compile(bundle, "nft").text
    doctored = tmp_path / "d.nft"
    doctored.write_text(text.replace("goto cnp-ingress-np comment", "accept comment", 1))
    result = _cli("verify", "--target", "nft", "--ruleset", str(doctored))
    assert result.exit_code == 1
    out = result.stdout
    assert "widening" in out and f"{doctored}:" in out
    assert "apps-to-prod-decided-by-prod): Pass" in out and "passed on to NetworkPolicy" in out
    assert "decided by Baseline tier: ClusterNetworkPolicy default-deny" in out
    result = _cli("verify", "--target", "nft", "--ruleset", str(doctored), "-o", "json")
    data = json.loads(result.stdout)
    assert set(data) == {"equivalent", "differences"} and data["equivalent"] is False
    assert all(
        set(d) == {"from", "to", "protocol", "port", "spec", "ruleset", "rule"}
        for d in data["differences"]
    )


# -- compare -------------------------------------------------------------------------------


def test_compare_with_cluster_policies_follows_each_targets_capability() -> None:
    bundle = _case("conformance-admin-gress")
    report = npc.compare(bundle)
    rows = {r.target: r for r in report.rows}
    for name, row in rows.items():
        backend = npc.targets.get_backend(name)
        if npc.capabilities.Capability.CLUSTER_NETWORK_POLICY in backend.capabilities:
            if row.refused:  # a feature of the case, not the kind (ECS cannot name SCTP)
                assert row.report is None and "SCTP" in " ".join(row.refused), name
                continue
            assert row.report is not None and row.report.pod_flows > 0, name
        else:
            assert row.refused and row.report is None, name
            assert any("ClusterNetworkPolicy" in r for r in row.refused)
    assert rows["nft"].equivalent is True
    guard = npc.compare(_case("cnp-admin-pass-baseline"), ["nft", "calico"])
    by = {r.target: r for r in guard.rows}
    assert by["nft"].equivalent is True
    assert any("nodes peer" in r for r in by["calico"].refused)
    result = _cli("compare", "--targets", "nft,calico", "-o", "json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert [t["target"] for t in data["targets"]] == ["nft", "calico"]
    assert data["targets"][1]["refused"] and data["targets"][1]["equivalent"] is None


def test_cli_diff_of_a_cluster_policy_added(tmp_path: Path) -> None:
    """The NetworkPolicy alone against it with the golden ClusterNetworkPolicies: exit 1,
    the issue's JSON, exactly the oracle's changes."""
    policies = ORIGINAL.split("\n---\n")
    network_policy = next(d for d in policies if "kind: NetworkPolicy" in d)
    old_file = tmp_path / "old.yaml"
    old_file.write_text(network_policy + "\n")
    cluster = str(GUARDRAILS / "cluster.yaml")
    new_file = str(GUARDRAILS / "input.yaml")
    args = ["diff", "-f", str(old_file), "-f", cluster, "--against", new_file, "-o", "json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert set(data) == {"changed", "differences"} and data["changed"] is True
    listed = set()
    for d in data["differences"]:
        assert set(d) == {"from", "to", "protocol", "port", "old", "new"}
        listed.add((d["from"], d["to"], d["protocol"], d["port"], d["old"], d["new"]))
    old = npc.load([npc.Source("old.yaml", network_policy), _source(cluster)])
    new = _case("cnp-admin-pass-baseline")
    report = npc.diff(old, new)
    assert listed == oracle_changes(old, new, report.probes, report.outside)
    result = CliRunner().invoke(
        cli,
        ["diff", "-f", str(GUARDRAILS / "input.yaml"), "-f", cluster, "--against", str(old_file)],
    )
    assert result.exit_code == 1 and "opened" in result.stdout and "closed" in result.stdout


def _source(path: str) -> npc.Source:
    return npc.Source(path, Path(path).read_text())


def test_doctored_calico_admin_tier_caught_with_true_counterexample() -> None:
    """Calico's kube-admin tier with an Allow turned into Deny: exactly the flows of the
    ClusterNetworkPolicy whose rule says Deny, each decided by the doctored rule."""
    case = "conformance-admin-gress"
    bundle = _case(case)
    text = npc.compile(bundle, "calico").text
    allow = "        name: allow-from-ravenclaw-everything\n    action: Allow\n"
    assert text.count(allow) == 1
    doctored = text.replace(allow, allow.replace("Allow", "Deny"))
    # the rule starts at its ``- metadata:`` line, two above the name
    at = text[: text.index(allow)].count("\n") + 1 - 2
    policy = (GOLDEN / case / "input.yaml").read_text()
    accept = "  - name: allow-from-ravenclaw-everything\n    action: Accept\n"
    assert policy.count(accept) == 1
    meant = _case(case, policy.replace(accept, accept.replace("Accept", "Deny")))
    report = npc.verify(bundle, "calico", [npc.Source("d.yaml", doctored)])
    truth = oracle_changes(meant, bundle, report.probes, report.outside)
    assert truth and all(not ruleset and spec for *_, ruleset, spec in truth)
    assert _listed(report) == truth
    assert {d.rule for d in report.differences} == {f"d.yaml:{at}"}
