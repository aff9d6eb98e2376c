"""Benchmark: ``npc reach`` with ClusterNetworkPolicy tiers against plain NetworkPolicy.

    .venv/bin/python bench/reach_tiers_bench.py                 # 100 and 1,000 namespaces
    .venv/bin/python bench/reach_tiers_bench.py --sizes 100 --probes all --sample 5000

The cluster and its NetworkPolicies are those of :mod:`bench.clusters` (ten pods and five
policies per namespace). :func:`cluster_policies` adds the ClusterNetworkPolicies an operator
writes first:

* Admin, priority 10: every pod is denied egress to the cloud metadata address
  (``169.254.169.254/32``) and to a quarantined range of pod addresses (a /24 of the pod
  network);
* Admin, priority 20: ingress from the ``monitoring`` namespace is passed on to
  NetworkPolicy (the namespace owners decide), as is DNS egress to ``kube-system``;
* Baseline, priority 100: a default deny, ingress from every pod and egress to every address.

For each size it prints, measured in this one run: the classes and the time to find them and
to compute the class matrices of the chosen probes, for the NetworkPolicies alone (the plain
class engine) and with the tiers (:func:`npc.analysis.reach_tiers.make_reach`), with their
ratio; and how many of ``--sample`` random (source, destination, probe) triples disagree with
the reference semantics (must be 0). Times are wall time, or with ``--cpu`` this process's CPU
time (steadier on a shared machine). Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.clusters import bench_cluster  # noqa: E402
from npc import ir, tiers  # noqa: E402
from npc.analysis.reach import Reach  # noqa: E402
from npc.analysis.reach_tiers import make_reach  # noqa: E402
from npc.analysis.semantics import Semantics  # noqa: E402
from npc.flows import Probe, default_probes  # noqa: E402
from npc.snapshot import Snapshot  # noqa: E402

_ALL_NAMESPACES = ir.PodPeer(ir.EVERYTHING)


def _namespace(name: str) -> ir.LabelSelector:
    return ir.LabelSelector.of({"kubernetes.io/metadata.name": name})


def cluster_policies() -> tiers.ClusterPolicySet:
    """The ClusterNetworkPolicies of the benchmark (see the module docstring)."""
    everyone = tiers.Subject(ir.EVERYTHING)
    deny, passes = tiers.Action.DENY, tiers.Action.PASS
    dns = ir.PortSet.of((ir.Protocol.UDP, 53), (ir.Protocol.TCP, 53))
    return tiers.ClusterPolicySet(
        (
            tiers.ClusterPolicy(
                "deny-metadata-and-quarantine",
                tiers.Tier.ADMIN,
                10,
                everyone,
                egress=(
                    tiers.ClusterRule(deny, (ir.AddressPeer.block("169.254.169.254/32"),)),
                    tiers.ClusterRule(deny, (ir.AddressPeer.block("10.64.8.0/24"),)),
                ),
            ),
            tiers.ClusterPolicy(
                "pass-monitoring-and-dns",
                tiers.Tier.ADMIN,
                20,
                everyone,
                ingress=(tiers.ClusterRule(passes, (ir.PodPeer(_namespace("monitoring")),)),),
                egress=(tiers.ClusterRule(passes, (ir.PodPeer(_namespace("kube-system")),), dns),),
            ),
            tiers.ClusterPolicy(
                "default-deny",
                tiers.Tier.BASELINE,
                100,
                everyone,
                ingress=(tiers.ClusterRule(deny, (_ALL_NAMESPACES,)),),
                egress=(tiers.ClusterRule(deny, (ir.AddressPeer.block("0.0.0.0/0"),)),),
            ),
        )
    )


def seconds(value: float) -> str:
    if value >= 60:
        return f"{value / 60:,.1f} min"
    if value >= 1:
        return f"{value:,.2f} s"
    return f"{value * 1000:,.1f} ms"


def measure(
    snap: Snapshot,
    policies: ir.PolicySet,
    cluster: tiers.ClusterPolicySet,
    probes: list[Probe],
    repeat: int,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[Reach, float, float]:
    """The engine, and the median times to build it (its classes) and to compute the
    probes' class matrices, over ``repeat`` fresh engines."""
    builds, matrices = [], []
    for _ in range(repeat):
        start = clock()
        engine = make_reach(policies, snap, cluster)
        built = clock()
        for probe in probes:
            engine.matrix(probe)
        builds.append(built - start)
        matrices.append(clock() - built)
    return engine, statistics.median(builds), statistics.median(matrices)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000", help="namespaces, comma-separated")
    parser.add_argument(
        "--probes", default="one", choices=("one", "all"), help="8080/TCP, or every containerPort"
    )
    parser.add_argument("--sample", type=int, default=2000, help="triples checked by the oracle")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each engine (median)")
    parser.add_argument(
        "--cpu", action="store_true", help="CPU time of this process instead of wall time"
    )
    args = parser.parse_args()
    cluster = cluster_policies()
    clock = time.process_time if args.cpu else time.perf_counter
    for size in (int(s) for s in args.sizes.split(",")):
        snap, policies = bench_cluster(size)
        probes = [Probe(8080)] if args.probes == "one" else list(default_probes(snap))
        print(
            f"== {size:,} namespaces: {len(snap.pods):,} pods, {len(policies):,} "
            f"NetworkPolicies, {len(cluster)} ClusterNetworkPolicies, {len(probes)} "
            f"probe{'s' if len(probes) > 1 else ''} =="
        )
        figures = {}
        for label, tiered in (("NetworkPolicy only", tiers.EMPTY), ("with tiers", cluster)):
            engine, t_classes, t_matrices = measure(
                snap, policies, tiered, probes, args.repeat, clock
            )
            t_total = t_classes + t_matrices
            figures[label] = (engine, t_total)
            print(
                f"  {label:<20} {len(engine.classes):>6,} classes  classes "
                f"{seconds(t_classes):>9}  + matrices {seconds(t_matrices):>9}  = "
                f"{seconds(t_total):>9}"
            )
        ratio = figures["with tiers"][1] / figures["NetworkPolicy only"][1]
        print(f"  ratio, with tiers / NetworkPolicy only: {ratio:.2f}x")
        engine = figures["with tiers"][0]
        oracle = Semantics(policies, snap, cluster)
        rng = random.Random(size)
        wrong = 0
        for _ in range(args.sample):
            src, dst, probe = rng.choice(snap.pods), rng.choice(snap.pods), rng.choice(probes)
            want = oracle.pod_allowed(src, dst, probe.protocol, probe.port)
            wrong += engine.allowed(src, dst, probe) != want
        print(f"  oracle check: {args.sample:,} sampled triples, {wrong} disagreements")


if __name__ == "__main__":
    main()
