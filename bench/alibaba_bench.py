"""Benchmark of the alibaba target on a synthetic cluster (issue 10).

Reports compile time (median wall and CPU seconds), output size, how many groups, rules,
PodNetworkings and label changes the output holds, the largest ENI (groups and rules one pod
joins, against ECS's 5 and 1,000), and the time the ECS judge takes to read the output back
and decide a sample of flows.

    .venv/bin/python bench/alibaba_bench.py                          # 100 ns, 1,000 pods
    .venv/bin/python bench/alibaba_bench.py --namespaces 300 --policies 1500
    .venv/bin/python bench/alibaba_bench.py --tiers      # plus ClusterNetworkPolicy guardrails
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.synth

import npc  # noqa: E402
from npc.errors import NpcError  # noqa: E402
from npc.flows import Endpoint, Flow  # noqa: E402
from npc.rulesets.alibaba.evaluate import EcsSemantics  # noqa: E402
from npc.rulesets.alibaba.read import read_ruleset  # noqa: E402
from tests.synth import cluster_yaml, policy_yaml, scaled_cluster, scaled_policies  # noqa: E402

#: Guardrails like a cluster operator's: an admin deny of the metadata address, an admin
#: accept from one namespace, an admin pass from another (to NetworkPolicy), a baseline deny.
TIERS = """\
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {{name: guardrails}}
spec:
  tier: Admin
  priority: 10
  subject: {{namespaces: {{}}}}
  ingress:
  - action: Accept
    from: [{{namespaces: {{matchLabels: {{kubernetes.io/metadata.name: {a}}}}}}}]
    protocols: [{{tcp: {{destinationPort: {{number: 9100}}}}}}]
  - action: Pass
    from: [{{namespaces: {{matchLabels: {{kubernetes.io/metadata.name: {b}}}}}}}]
  egress:
  - action: Deny
    to: [{{networks: [169.254.169.254/32]}}]
---
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {{name: baseline}}
spec:
  tier: Baseline
  priority: 1000
  subject: {{namespaces: {{}}}}
  ingress:
  - action: Deny
    from: [{{namespaces: {{}}}}]
"""


def median_time(runs: int, action: Callable[[], object]) -> tuple[float, float]:
    """Median wall-clock and CPU seconds of ``runs`` calls."""
    wall, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        action()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--namespaces", type=int, default=100)
    parser.add_argument("--pods-per-namespace", type=int, default=10)
    parser.add_argument("--policies", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--tiers", action="store_true", help="add admin and baseline ClusterNetworkPolicies"
    )
    args = parser.parse_args()
    rng = random.Random(1)
    snapshot = scaled_cluster(rng, args.namespaces, args.pods_per_namespace)
    policies = scaled_policies(rng, snapshot, args.policies)
    sources = [
        npc.Source("policies.yaml", policy_yaml(policies)),
        npc.Source("cluster.yaml", cluster_yaml(snapshot)),
    ]
    if args.tiers:
        names = sorted({p.namespace for p in snapshot.pods})
        sources.append(npc.Source("tiers.yaml", TIERS.format(a=names[0], b=names[1])))
    bundle = npc.load(sources)
    print(f"{len(snapshot.pods)} pods, {len(bundle.policies)} policies")
    options = {"unsupported": "deny", "same_node": "trust"}  # 10 pods share each node
    try:
        text = npc.compile(bundle, "alibaba", options).text
    except NpcError as exc:
        print(f"refused: {exc.diagnostics[0].message}")
        return 1
    wall, cpu = median_time(args.runs, lambda: npc.compile(bundle, "alibaba", options))
    data = json.loads(text)
    groups = data["securityGroups"]
    rules = {g["name"]: len(g["ingress"]) + len(g["egress"]) for g in groups}
    enis = [n["spec"]["securityGroupIDs"] for n in data["podNetworkings"]]
    print(f"compile: {wall:.2f} s wall, {cpu:.2f} s CPU; {len(text) / 1e6:.1f} MB JSON")
    print(
        f"{len(groups)} groups, {sum(rules.values())} rules (largest group {max(rules.values())}),"
        f" {len(data['podNetworkings'])} PodNetworkings, {len(data['attachment']['labels'])} "
        "label changes"
    )
    print(
        f"largest ENI: {max(len(e) for e in enis)} groups, "
        f"{max(sum(rules[n] for n in e) for e in enis)} rules"
    )
    start = time.process_time()
    ecs = EcsSemantics(read_ruleset(text, "out.json"), snapshot)
    read = time.process_time() - start
    pods = [p for p in snapshot.pods if not p.host_network]
    sample = [(rng.choice(pods), rng.choice(pods)) for _ in range(2000)]
    start = time.process_time()
    allowed = sum(
        ecs.allowed(Flow(Endpoint.of_pod(a, 4), Endpoint.of_pod(b, 4), npc.ir.Protocol.TCP, 8080))
        for a, b in sample
    )
    decide = time.process_time() - start
    print(
        f"judge (CPU): read + attach {read:.2f} s; {len(sample)} flows in {decide:.2f} s "
        f"({allowed} allowed)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
