"""``npc verify --node`` on the bench cluster: how many flows, and what each side costs.

    .venv/bin/python bench/verify_bench.py [--namespaces 1000] [--policies 5000] [--node node0]

The cluster is ``tests/synth.py``'s :func:`scaled_cluster` (1,000 namespaces x 10 pods on 50
nodes) with :func:`scaled_policies` (5,000). It reports, all measured in this one run:

* the flows one node's ruleset is judged on (pod pairs with a local end, probes, outside
  addresses);
* verify's own cost, with a judge that answers at once (enumeration, the spec side by class
  matrices, flow objects): what verify adds to any judge;
* the Calico judge's cost per flow on a sample, and the whole run extrapolated from it.
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
from npc.analysis.verify import verify
from npc.flows import Flow
from npc.rulesets.base import Decision
from npc.snapshot import Snapshot
from tests.synth import cluster_yaml, policy_yaml, scaled_cluster, scaled_policies


class Instant:
    """A judge that allows everything at once (verify's own cost)."""

    def decide(self, flow: Flow) -> Decision:
        return Decision(True, None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespaces", type=int, default=1000)
    parser.add_argument("--policies", type=int, default=5000)
    parser.add_argument("--node", default="node0")
    parser.add_argument("--sample", type=int, default=20000)
    args = parser.parse_args()
    rng = random.Random(1)
    snap = scaled_cluster(rng, args.namespaces)
    policies = scaled_policies(rng, snap, args.policies)
    space = FlowSpace(snap, (policies,), node=args.node)
    local = sum(space.local)
    pairs = sum(1 for _ in space.pairs())
    print(
        f"{len(snap.pods)} pods, {len(policies)} policies; node {args.node}: {local} local pods, "
        f"{pairs} pod pairs x {len(space.probes)} probes = {pairs * len(space.probes)} pod flows; "
        f"{len(space.outside)} outside addresses"
    )
    # One probe: the per-flow loop is the same for every probe (the class matrices of the
    # others cost a fraction of a second each, as bench/reach_bench.py shows).
    one = space.probes[len(space.probes) // 2 : len(space.probes) // 2 + 1]
    start = time.perf_counter()
    report = verify(policies, snap, Instant(), node=args.node, probes=one)
    own = time.perf_counter() - start
    flows = report.pod_flows + report.outside_flows
    total = flows * len(space.probes)
    print(
        f"verify with an instant judge, probe {one[0]}: {own:.1f} s for {flows} flows "
        f"({own / flows * 1e6:.2f} us/flow); all {len(space.probes)} probes extrapolated: "
        f"{own * len(space.probes) / 60:.1f} min"
    )
    text = npc.compile(_bundle(snap, policies), "calico").text
    judge = npc.api.judge("calico", [npc.Source("c.yaml", text)], snap)
    sample = []
    for i, j in space.pairs():
        src, dst = space.endpoints[i][4], space.endpoints[j][4]
        sample.append(Flow(src, dst, *_probe(space, len(sample))))
        if len(sample) >= args.sample:
            break
    start = time.perf_counter()
    for flow in sample:
        judge.decide(flow)
    per = (time.perf_counter() - start) / len(sample)
    print(
        f"calico judge: {per * 1e6:.1f} us/flow on {len(sample)} flows; the whole node "
        f"extrapolated: {per * total / 3600:.1f} h of judge time"
    )


def _probe(space: FlowSpace, n: int) -> tuple[npc.ir.Protocol, int]:
    probe = space.probes[n % len(space.probes)]
    return probe.protocol, probe.port


def _bundle(snap: Snapshot, policies: npc.ir.PolicySet) -> npc.Bundle:
    return npc.load(
        [npc.Source("p.yaml", policy_yaml(policies)), npc.Source("c.yaml", cluster_yaml(snap))]
    )


if __name__ == "__main__":
    main()
