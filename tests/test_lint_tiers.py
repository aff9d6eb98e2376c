"""``npc lint`` on ClusterNetworkPolicies: one golden case per check (W617 rules never reached,
W618 an Admin rule that leaves NetworkPolicy rules nothing to decide, W619 Pass in the
Baseline tier, W604 a subject selecting nothing, W620 a Deny that costs pods DNS), each
``tests/data/cnp-lint/<case>.yaml`` linted against ``cluster.yaml`` there, the output compared
with ``<case>.lint`` (rewritten only by ``--update-golden``); and a clean set with no finding."""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

import pytest

from npc import ir, tiers
from npc.analysis.lint import lint
from npc.analysis.semantics import Semantics
from npc.cli import main
from npc.errors import Code
from npc.flows import Endpoint, Flow
from tests.synth import probe_ports, random_cluster, random_policies
from tests.synth_tiers import random_cluster_policies, with_nodes

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "cnp-lint"
CASES = sorted(p.stem for p in DATA.glob("*.yaml") if p.name not in ("cluster.yaml", "clean.yaml"))
CODES = {
    "w604-subject-selects-nothing": {Code.SELECTS_NOTHING},
    "w617-rule-never-reached": {Code.TIER_RULE_NEVER_REACHED},
    "w618-admin-overrides": {Code.ADMIN_OVERRIDES_NETWORK_POLICY},
    "w619-baseline-pass": {Code.BASELINE_PASS},
    "w620-denies-dns": {Code.TIER_DENIES_DNS},
}


def _lint(
    case: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, str]:
    monkeypatch.chdir(ROOT)
    folder = DATA.relative_to(ROOT)
    status = main(
        ["lint", "-f", str(folder / f"{case}.yaml"), "-f", str(folder / "cluster.yaml"), *extra]
    )
    return status, capsys.readouterr().out


def test_every_case_has_its_codes() -> None:
    assert set(CASES) == set(CODES)


@pytest.mark.parametrize("case", CASES)
def test_lint_golden(
    case: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    update_golden: bool,
) -> None:
    status, out = _lint(case, monkeypatch, capsys)
    assert status == 1
    expected = DATA / f"{case}.lint"
    if update_golden:
        expected.write_text(out, encoding="utf-8")
        return
    assert out == expected.read_text(encoding="utf-8"), f"run pytest --update-golden for {case}"
    status, text = _lint(case, monkeypatch, capsys, "-o", "json")
    findings = json.loads(text)["findings"]
    assert {f["code"] for f in findings} == {str(c) for c in CODES[case]}
    assert all(f["file"] and f["line"] and f["hint"] and f["policy"] for f in findings)


def test_a_careful_tier_set_gets_no_finding(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """DNS accepted before the denies, a Pass to the namespace owners, a baseline default
    deny: nothing to say; and the Admin tier's DNS Accept keeps shop's default-deny egress
    NetworkPolicy from W608."""
    assert _lint("clean", monkeypatch, capsys) == (0, "")


@pytest.mark.parametrize("seed", range(30))
def test_rules_reported_never_reached_never_decide(seed: int) -> None:
    """W617 is precise: on random clusters and tiers, no flow is ever decided by a rule it
    reports (the oracle's deciding rule, on each side of every pod pair and probe)."""
    rng = random.Random(seed)
    snap = with_nodes(rng, random_cluster(rng, namespaces=3, pods=10))
    policies = random_policies(rng, snap, count=rng.randint(0, 3))
    cluster = random_cluster_policies(rng, count=rng.randint(2, 6))
    # Copies of earlier rules make shadowing common.
    cluster = tiers.ClusterPolicySet(
        tuple(
            dataclasses.replace(
                p,
                ingress=p.ingress + p.ingress[:1],
                egress=(*p.egress[1:2], *p.egress),
            )
            for p in cluster
        )
    )
    dead = {
        (f.policy, f.path)
        for f in lint(policies, snap, None, cluster)
        if f.code is Code.TIER_RULE_NEVER_REACHED
    }
    sem = Semantics(policies, snap, cluster)
    decided = set()
    for proto, port in probe_ports(snap, policies):
        for src in snap.pods:
            for dst in snap.pods:
                if src.key == dst.key:
                    continue
                flow = Flow(Endpoint.of_pod(src), Endpoint.of_pod(dst), proto, port)
                verdict = sem.verdict(flow)
                for side in (verdict.egress, verdict.ingress):
                    for decision in (side.admin, side.baseline):
                        if decision is not None:
                            ref = decision.match
                            decided.add((ref.policy.name, f"spec.{ref.direction}[{ref.index}]"))
    assert not dead & decided


@pytest.mark.parametrize("seed", range(30))
def test_networkpolicy_rules_reported_overridden_never_decide(seed: int) -> None:
    """W618 is precise: for each NetworkPolicy rule it reports, every connection between a
    pod the policy selects and any pod, in that direction, is decided by the Admin tier (or
    is the pod's own node's)."""
    rng = random.Random(seed)
    snap = with_nodes(rng, random_cluster(rng, namespaces=3, pods=10))
    policies = random_policies(rng, snap, count=rng.randint(1, 5))
    cluster = list(random_cluster_policies(rng, count=rng.randint(1, 4)))
    # An Admin rule deciding every pod connection, somewhere, in some policies.
    every = tiers.ClusterRule(
        rng.choice((tiers.Action.ACCEPT, tiers.Action.DENY)), (ir.PodPeer(ir.EVERYTHING),)
    )
    for i, p in enumerate(cluster):
        if rng.random() < 0.6:
            direction = rng.choice(("ingress", "egress"))
            rules = list(p.rules(direction))
            rules.insert(rng.randint(0, len(rules)), every)
            cluster[i] = dataclasses.replace(p, tier=tiers.Tier.ADMIN, **{direction: tuple(rules)})
    tiered = tiers.ClusterPolicySet(tuple(cluster))
    flagged = {
        (f.policy, f.path.split(".")[1].split("[")[0])
        for f in lint(policies, snap, None, tiered)
        if f.code is Code.ADMIN_OVERRIDES_NETWORK_POLICY
    }
    sem = Semantics(policies, snap, tiered)
    for policy in policies:
        for direction in ("ingress", "egress"):
            if (policy.key, direction) not in flagged:
                continue
            for pod in snap.pods:
                if policy not in sem.selecting(pod):
                    continue
                for other in snap.pods:
                    if other.key == pod.key or other.host_network:
                        continue
                    for proto, port in probe_ports(snap, policies):
                        src, dst = (other, pod) if direction == "ingress" else (pod, other)
                        flow = Flow(Endpoint.of_pod(src), Endpoint.of_pod(dst), proto, port)
                        verdict = sem.verdict(flow)
                        side = verdict.ingress if direction == "ingress" else verdict.egress
                        assert side.decided_by in ("Admin", "own node"), (policy.key, flow)
