"""``npc verify --node`` on the bench cluster: what it checks and what it costs.

    .venv/bin/python bench/verify_bench.py [--namespaces 1000] [--policies 5000] [--node node0]

The cluster is ``tests/synth.py``'s :func:`scaled_cluster` (1,000 namespaces x 10 pods on 50
nodes) with :func:`scaled_policies` (5,000). One node's nft ruleset (``npc compile --target
nft --node``) is verified against the policies, as ``npc verify --node`` does. It reports,
all measured in this one run: the flows checked (pod pairs with a local end, every probe;
outside addresses), how many the judge was asked (once per group of pods, and of outside
addresses, that neither the spec nor the judge tells apart), the time, and the judge's cost
per flow on a sample of pod flows (what asking for every flow would have cost).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import npc
from npc.analysis.flowspace import FlowSpace
from npc.flows import Flow
from tests.synth import cluster_yaml, policy_yaml, scaled_cluster, scaled_policies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespaces", type=int, default=1000)
    parser.add_argument("--policies", type=int, default=5000)
    parser.add_argument("--node", default="node0")
    parser.add_argument("--sample", type=int, default=5000)
    args = parser.parse_args()
    rng = random.Random(1)
    snap = scaled_cluster(rng, args.namespaces)
    policies = scaled_policies(rng, snap, args.policies)
    bundle = npc.load(
        [npc.Source("p.yaml", policy_yaml(policies)), npc.Source("c.yaml", cluster_yaml(snap))]
    )
    text = npc.compile(bundle, "nft", {"node": args.node}).text
    start = time.perf_counter()
    report = npc.verify(bundle, "nft", [npc.Source("node.nft", text)], node=args.node)
    took = time.perf_counter() - start
    checked = report.pod_flows + report.outside_flows
    print(
        f"{len(snap.pods)} pods, {len(policies)} policies; node {args.node}: "
        f"{report.pod_flows} pod flows + {report.outside_flows} outside flows checked "
        f"({len(report.probes)} probes, {len(report.outside)} outside addresses)"
    )
    print(
        f"verify --node: {took:.1f} s, judge asked {report.asked} times "
        f"({checked / max(report.asked, 1):.0f} flows per question), "
        f"{len(report.differences)} differences"
    )
    judge = npc.api.judge("nft", [npc.Source("node.nft", text)], bundle.snapshot)
    space = FlowSpace(bundle.snapshot or snap, (bundle.policies,), node=args.node)
    sample = []
    for i, j in space.pairs():
        probe = space.probes[len(sample) % len(space.probes)]
        sample.append(
            Flow(space.endpoints[i][4], space.endpoints[j][4], probe.protocol, probe.port)
        )
        if len(sample) >= args.sample:
            break
    start = time.perf_counter()
    for flow in sample:
        judge.decide(flow)
    per = (time.perf_counter() - start) / len(sample)
    print(
        f"nft judge: {per * 1e6:.0f} us/flow; asking it for every flow checked would take "
        f"{per * checked / 3600:.1f} h"
    )


if __name__ == "__main__":
    main()
