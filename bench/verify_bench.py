"""``npc verify`` on the bench cluster: what it checks and what it costs.

    .venv/bin/python bench/verify_bench.py [--namespaces 1000] [--target nft] [--node node000]
    .venv/bin/python bench/verify_bench.py --namespaces 1000 --node ''      # the whole cluster
    .venv/bin/python bench/verify_bench.py --synth --namespaces 300 --policies 1500 --node node0

The cluster is :func:`bench.clusters.bench_cluster` (ten pods per namespace on 100 nodes,
five policies per namespace; 1,000 namespaces make the 10,000-pod, 5,000-policy cluster of
issue 13), or with ``--synth`` the older :func:`tests.synth.scaled_cluster` with
:func:`~tests.synth.scaled_policies` (50 nodes). The target's ruleset (``npc compile --target
T [--node N]``) is verified against the policies, as ``npc verify`` does. It reports, all
measured in this one run: the flows checked (pod pairs with a local end, every probe;
outside addresses), how many questions the judge was asked (once per class of flows that
neither the spec nor the judge tells apart), the time of reading the ruleset and of the
check, and the judge's cost per flow on a sample of pod flows (what asking for every flow
would have cost). ``--profile N`` prints the N costliest functions of the check (cProfile).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import npc
from bench.clusters import bench_cluster
from npc.analysis.flowspace import FlowSpace
from npc.analysis.verify import verify
from npc.flows import Flow
from tests.synth import scaled_cluster, scaled_policies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespaces", type=int, default=1000)
    parser.add_argument("--synth", action="store_true", help="tests.synth's scaled cluster")
    parser.add_argument("--policies", type=int, default=5000, help="with --synth")
    parser.add_argument("--target", default="nft")
    parser.add_argument("--node", default="node000", help="'' verifies the whole cluster")
    parser.add_argument("--sample", type=int, default=5000)
    parser.add_argument("--profile", type=int, default=0)
    args = parser.parse_args()
    node = args.node or None
    if args.synth:
        rng = random.Random(1)
        snap = scaled_cluster(rng, args.namespaces)
        policies = scaled_policies(rng, snap, args.policies)
    else:
        snap, policies = bench_cluster(args.namespaces)
    bundle = npc.Bundle(policies, snap)
    options = {"node": node} if node else {}
    artifact = npc.compile(bundle, args.target, options)
    sources = npc.api.artifact_sources(artifact)
    start = time.perf_counter()
    judge = npc.api.judge(args.target, sources, snap)
    read = time.perf_counter() - start
    profiler = cProfile.Profile() if args.profile else None
    start = time.perf_counter()
    if profiler:
        profiler.enable()
    report = verify(policies, snap, judge, target=args.target, node=node)
    if profiler:
        profiler.disable()
    took = time.perf_counter() - start
    checked = report.pod_flows + report.outside_flows
    print(
        f"{len(snap.pods)} pods, {len(policies)} policies; {args.target}, "
        f"{'node ' + node if node else 'whole cluster'}: {report.pod_flows:,} pod flows + "
        f"{report.outside_flows:,} outside flows checked ({len(report.probes)} probes, "
        f"{len(report.outside)} outside addresses)"
    )
    print(
        f"read {read:.1f} s; verify {took:.1f} s, judge asked {report.asked:,} times "
        f"({checked / max(report.asked, 1):.0f} flows per question), "
        f"{len(report.differences)} differences"
    )
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(args.profile)
    space = FlowSpace(snap, (policies,), node=node)
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
        f"{args.target} judge: {per * 1e6:.0f} us/flow; asking it for every flow checked "
        f"would take {per * checked / 3600:.1f} h"
    )


if __name__ == "__main__":
    main()
