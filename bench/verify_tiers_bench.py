"""``npc verify`` with ClusterNetworkPolicies on the bench cluster: what the tiered spec side
costs.

    .venv/bin/python bench/verify_tiers_bench.py [--namespaces 100] [--policies 500] \\
        [--node node0 | --cluster-wide] [--case conformance-admin-gress]

The cluster is ``tests/synth.py``'s :func:`scaled_cluster` with :func:`scaled_policies`, plus
the ClusterNetworkPolicies an operator typically writes (:data:`TIERS`: an admin deny of the
metadata address, monitoring always allowed on the metrics port, prod traffic handed to the
namespace owners with a Pass, a baseline that isolates the teams from each other). npc's nft
output (one node's with ``--node``) is verified against the policies, as ``npc verify``
does; the time is split into the spec side (the tiered class engine, one oracle question per
pair of classes and probe) and the rest. ``--case`` times a golden case instead.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import npc
from npc.analysis.expectation import Expectation
from npc.analysis.flowspace import FlowSpace
from tests.synth import SCALED_TEAMS, cluster_yaml, policy_yaml, scaled_cluster, scaled_policies

ROOT = Path(__file__).resolve().parent.parent


def _cnp(name: str, tier: str, priority: int, subject: Any, **rules: Any) -> dict[str, Any]:
    return {
        "apiVersion": "policy.networking.k8s.io/v1alpha2",
        "kind": "ClusterNetworkPolicy",
        "metadata": {"name": name},
        "spec": {"tier": tier, "priority": priority, "subject": subject, **rules},
    }


def _namespaces(**labels: str) -> dict[str, Any]:
    return {"namespaces": {"matchLabels": labels}}


#: The operator's ClusterNetworkPolicies (one baseline per team).
TIERS = yaml.safe_dump_all(
    [
        _cnp(
            "no-metadata",
            "Admin",
            0,
            {"namespaces": {}},
            egress=[{"action": "Deny", "to": [{"networks": ["169.254.169.254/32"]}]}],
        ),
        _cnp(
            "monitoring-scrapes",
            "Admin",
            10,
            {"namespaces": {}},
            ingress=[
                {
                    "action": "Accept",
                    "from": [_namespaces(**{"kubernetes.io/metadata.name": "monitoring"})],
                    "protocols": [{"destinationNamedPort": "metrics"}],
                }
            ],
        ),
        _cnp(
            "prod-decided-by-owners",
            "Admin",
            20,
            _namespaces(env="prod"),
            ingress=[
                {"action": "Pass", "from": [_namespaces(env="prod")]},
                {"action": "Deny", "from": [_namespaces(env="dev")]},
            ],
        ),
        *(
            _cnp(
                f"isolate-{team}",
                "Baseline",
                100,
                _namespaces(team=team),
                ingress=[
                    {"action": "Accept", "from": [_namespaces(team=team)]},
                    {"action": "Accept", "from": [_namespaces(role="platform")]},
                    {"action": "Deny", "from": [{"namespaces": {}}]},
                ],
            )
            for team in SCALED_TEAMS
        ),
    ],
    explicit_start=True,
    sort_keys=False,
)


def _time_verify(bundle: npc.Bundle, node: str | None, label: str) -> None:
    assert bundle.snapshot is not None
    options = {"node": node} if node else {}
    text = npc.compile(bundle, "nft", options).text
    start = time.perf_counter()
    space = FlowSpace(
        bundle.snapshot, (bundle.policies,), node=node, cluster_sets=(bundle.cluster_policies,)
    )
    expectation = Expectation(space, bundle.policies, bundle.cluster_policies)
    for probe in space.probes:
        expectation.row_of(probe)
    spec = time.perf_counter() - start
    start = time.perf_counter()
    report = npc.verify(bundle, "nft", [npc.Source("r.nft", text)], node=node)
    took = time.perf_counter() - start
    where = f"--node {node}" if node else "cluster-wide"
    print(
        f"{label}: {len(bundle.snapshot.pods)} pods, {len(bundle.policies)} policies, "
        f"{len(bundle.cluster_policies)} ClusterNetworkPolicies; {where}: "
        f"{report.pod_flows} pod flows + {report.outside_flows} outside flows "
        f"({len(report.probes)} probes, {len(report.outside)} outside addresses), "
        f"{len(expectation.full.classes)} classes"
    )
    print(
        f"verify: {took:.2f} s ({len(report.differences)} differences, judge asked "
        f"{report.asked} times); the tiered spec side alone: {spec:.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespaces", type=int, default=100)
    parser.add_argument("--policies", type=int, default=500)
    parser.add_argument("--node", default="node0")
    parser.add_argument("--cluster-wide", action="store_true")
    parser.add_argument("--case", help="a golden case instead of the bench cluster")
    args = parser.parse_args()
    node = None if args.cluster_wide else args.node
    if args.case:
        folder = ROOT / "golden" / args.case
        bundle = npc.load(
            npc.read_sources([str(folder / "input.yaml"), str(folder / "cluster.yaml")])
        )
        assert bundle.snapshot is not None
        nodes = sorted({p.node_name for p in bundle.snapshot.pods if p.node_name})
        _time_verify(bundle, None if args.cluster_wide else nodes[0], args.case)
        return
    rng = random.Random(1)
    snap = scaled_cluster(rng, args.namespaces)
    policies = scaled_policies(rng, snap, args.policies)
    bundle = npc.load(
        [
            npc.Source("p.yaml", policy_yaml(policies)),
            npc.Source("cnp.yaml", TIERS),
            npc.Source("c.yaml", cluster_yaml(snap)),
        ]
    )
    _time_verify(bundle, node, "bench")


if __name__ == "__main__":
    main()
