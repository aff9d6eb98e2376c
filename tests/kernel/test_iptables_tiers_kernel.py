"""ClusterNetworkPolicy tiers in the real kernel, iptables target, under both variants
(``iptables-legacy`` and ``iptables-nft``): random clusters, NetworkPolicies and admin and
baseline ClusterNetworkPolicies (Accept, Deny, Pass), loaded with ``npc apply`` into the
namespace lab and probed with real TCP, UDP and SCTP packets, flow by flow against the
reference semantics, on one router (IPv4 and dual-stack) and with per-node rulesets
(``--node``) on two. Applying tier chains and then a ruleset without them (and back) leaves no
stale chain or set and keeps every foreign rule. The golden cases, the conformance suite's
among them, are enforced in ``test_iptables_kernel.py``."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest

import npc
from tests.kernel.check import assert_enforces_semantics, hosts_of
from tests.kernel.conftest import SHAPE, MakeLab, Ports
from tests.kernel.netns import Lab
from tests.kernel.test_iptables_kernel import (
    OTHER_CASE,
    VARIANTS,
    _foreign,
    _theirs,
    iptables_ok,
    state,
)
from tests.synth import cluster_yaml, policy_yaml, probe_ports, random_cluster, random_policies
from tests.synth_tiers import cluster_policy_yaml, random_cluster_policies
from tests.test_cnp_iptables import DEEP_TIERS, STRIPED_TIERS, striped_cluster

__all__ = ["iptables_ok"]  # the fixture, shared with test_iptables_kernel

GOLDEN = Path(__file__).resolve().parents[2] / "golden"
TIER_CASE = GOLDEN / "cnp-admin-pass-baseline"
MODES = [
    (variant, mode, ipv6)
    for variant in VARIANTS
    for mode, ipv6 in (("one-router", False), ("one-router", True), ("two-nodes", True))
]


@pytest.fixture(
    scope="module", params=MODES, ids=[f"{v}-{m}-{'ds' if d else 'v4'}" for v, m, d in MODES]
)
def tier_lab(
    request: pytest.FixtureRequest, iptables_ok: None, make_module_lab: MakeLab
) -> tuple[str, bool, bool, Lab]:
    variant, mode, ipv6 = request.param
    snapshot = random_cluster(random.Random(0), **SHAPE, ipv6=ipv6)
    node = None if mode == "two-nodes" else "node"
    return variant, mode == "two-nodes", ipv6, make_module_lab(hosts_of(snapshot, node=node))


def _dump(lab: Lab, variant: str) -> Callable[[str], str]:
    return lambda node: state(lab, node, variant)


@pytest.mark.parametrize("seed", range(3))
def test_random_tiers_are_enforced(
    seed: int,
    tier_lab: tuple[str, bool, bool, Lab],
    tmp_path: Path,
    probe_ports_for: Callable[[Ports], Ports],
) -> None:
    variant, per_node, ipv6, lab = tier_lab
    rng = random.Random(12000 + seed)
    snapshot = random_cluster(rng, **SHAPE, ipv6=ipv6)
    policies = random_policies(rng, snapshot, count=3, ipv6=ipv6)
    cluster = random_cluster_policies(rng, count=3, ipv6=ipv6, nodes=False)
    files = [tmp_path / "cnp.yaml", tmp_path / "cluster.yaml", tmp_path / "np.yaml"]
    files[0].write_text(cluster_policy_yaml(cluster), encoding="utf-8")
    files[1].write_text(cluster_yaml(snapshot), encoding="utf-8")
    files[2].write_text(policy_yaml(policies), encoding="utf-8")
    args = [a for f in files for a in ("-f", str(f))]
    for node in sorted(lab.nodes):
        extra = ("--node", node) if per_node else ()
        if seed == 2:
            extra += ("--sets", "none")
        done = lab.npc(node, "apply", "--target", "iptables", "--variant", variant, *args, *extra)
        assert done.returncode == 0, done.stderr
    bundle = npc.load(npc.read_sources([str(f) for f in files]))
    assert bundle.snapshot is not None and len(bundle.cluster_policies) == len(cluster)
    ports = probe_ports_for(probe_ports(bundle.snapshot, bundle.policies))
    assert_enforces_semantics(
        lab,
        bundle.policies,
        bundle.snapshot,
        ports,
        _dump(lab, variant),
        cluster_policies=bundle.cluster_policies,
    )


def _apply(lab: Lab, node: str, case: Path, variant: str) -> None:
    args = ("-f", str(case / "input.yaml"), "-f", str(case / "cluster.yaml"))
    done = lab.npc(node, "apply", "--target", "iptables", "--variant", variant, *args)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("variant", VARIANTS)
def test_tier_chains_coexist_and_go_when_stale(
    variant: str, iptables_ok: None, make_lab: MakeLab
) -> None:
    """Foreign rules, chains and sets survive applying the tier chains; applying them twice
    changes nothing (not even a set's hash seed: no set is rebuilt, the ``hash:ip,port``
    named-port sets included); a ruleset without tiers afterwards leaves exactly what it
    leaves in an empty namespace (the tier chains and their sets are gone), and back."""
    bundle = npc.load(
        npc.read_sources([str(TIER_CASE / "input.yaml"), str(TIER_CASE / "cluster.yaml")])
    )
    assert bundle.snapshot is not None
    lab = make_lab(hosts_of(bundle.snapshot, node="node"))
    _foreign(lab, variant)
    foreign = state(lab, "node", variant)
    _apply(lab, "node", TIER_CASE, variant)
    tiered = state(lab, "node", variant)
    assert "NPC-INGRESS-BASELINE" in tiered and "hash:ip,port" in tiered
    assert _theirs(tiered) == _theirs(foreign)
    seeded = state(lab, "node", variant, seeds=True)
    _apply(lab, "node", TIER_CASE, variant)
    assert state(lab, "node", variant, seeds=True) == seeded
    _apply(lab, "node", OTHER_CASE, variant)
    plain = state(lab, "node", variant)
    assert "BASELINE" not in plain and "hash:ip,port" not in plain
    assert _theirs(plain) == _theirs(foreign)
    lab.add_node("scratch")
    _apply(lab, "scratch", OTHER_CASE, variant)
    assert _ours(plain) == _ours(state(lab, "scratch", variant))
    _apply(lab, "node", TIER_CASE, variant)
    assert _ours(state(lab, "node", variant)) == _ours(tiered)


def _ours(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if "NPC-" in line)


def _sets_none_enforced(
    make_lab: MakeLab, files: tuple[Path, Path], variant: str, ports: Ports | None
) -> str:
    """Apply ``files`` with ``--sets none`` in a new lab and probe it against the reference
    semantics (``ports``: those of the snapshot when None); returns the node's state."""
    bundle = npc.load(npc.read_sources([str(f) for f in files]))
    assert bundle.snapshot is not None
    lab = make_lab(hosts_of(bundle.snapshot, node="node"))
    args = [a for f in files for a in ("-f", str(f))]
    done = lab.npc(
        "node", "apply", "--target", "iptables", "--variant", variant, "--sets", "none", *args
    )
    assert done.returncode == 0, done.stderr
    total, allowed = assert_enforces_semantics(
        lab,
        bundle.policies,
        bundle.snapshot,
        probe_ports(bundle.snapshot, bundle.policies) if ports is None else ports,
        _dump(lab, variant),
        cluster_policies=bundle.cluster_policies,
    )
    assert 0 < allowed < total
    return state(lab, "node", variant)


@pytest.mark.parametrize("variant", VARIANTS)
def test_sets_none_branches_are_enforced(
    variant: str,
    iptables_ok: None,
    make_lab: MakeLab,
    probe_ports_for: Callable[[Ports], Ports],
) -> None:
    """``--sets none``: the subject of several blocks is tested once and branches to the
    policy's rules (``NPC-CT-`` chains), which hand the rest of the tier on."""
    files = (TIER_CASE / "input.yaml", TIER_CASE / "cluster.yaml")
    bundle = npc.load(npc.read_sources([str(f) for f in files]))
    assert bundle.snapshot is not None
    assert "-g NPC-CT-" in npc.compile(bundle, "iptables", {"sets": "none"}).text
    ports = probe_ports_for(probe_ports(bundle.snapshot, bundle.policies))
    _sets_none_enforced(make_lab, files, variant, ports)


@pytest.mark.parametrize(("policies", "pods"), [("striped", 40), ("deep", 24)])
def test_sets_none_trees_are_enforced(
    policies: str, pods: int, iptables_ok: None, make_lab: MakeLab, tmp_path: Path
) -> None:
    """``--sets none`` with more blocks than a chain tests: subjects, peers and named-port
    elements through prefix trees (``NPC-CT-`` chains), in the kernel; where they would nest
    deeper than iptables-nft loads (``deep``), nested less. (The nft variant, the one with
    the depth limit: the other tests run both.)"""
    text = STRIPED_TIERS if policies == "striped" else DEEP_TIERS
    (tmp_path / "cnp.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "cluster.yaml").write_text(striped_cluster(pods), encoding="utf-8")
    files = (tmp_path / "cnp.yaml", tmp_path / "cluster.yaml")
    ports = [(npc.ir.Protocol.TCP, 80), (npc.ir.Protocol.TCP, 81), (npc.ir.Protocol.UDP, 53)]
    assert "NPC-CT-" in _sets_none_enforced(make_lab, files, "nft", ports)
