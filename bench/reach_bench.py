"""Benchmark: ``npc reach`` on a synthetic 10,000-pod cluster.

    .venv/bin/python bench/reach_bench.py          # 1,000 namespaces x 10 pods, 5,000 policies
    .venv/bin/python bench/reach_bench.py --namespaces 100 --policies 500

The cluster comes from ``tests/synth.py`` (:func:`scaled_cluster`: replicated Deployments,
pod addresses by index in 10.64.0.0/10; :func:`scaled_policies`: default deny, same
namespace, DNS egress, ingress controller, monitoring, app to database, team namespaces,
ipBlocks with except). It reports, all measured in this one run:

* the equivalence classes found, and the time to find them;
* the time to compute the class matrices of every probe (every containerPort);
* the reference semantics pair by pair (``Semantics.pod_allowed``) on a random sample of
  (source, destination, probe) triples, extrapolated to every pair; and the same per class
  pair (what evaluating the oracle once per class pair would cost);
* the ratio between the two, and how many sampled verdicts disagree (must be 0);
* expanding the matrix to pods: JSON rows for a sample of sources, extrapolated, and the
  class-level summary;
* with ``--load``, reading the cluster and policies as YAML through ``npc.load``.

Figures are printed, never asserted (timings depend on the machine).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.synth (the generator lives with the tests)

import npc  # noqa: E402
from npc.analysis.reach import Reach, default_probes  # noqa: E402
from npc.analysis.reach_format import ReachView, json_chunks, summary  # noqa: E402
from npc.analysis.semantics import Semantics  # noqa: E402
from npc.flows import Probe  # noqa: E402
from tests.synth import cluster_yaml, policy_yaml, scaled_cluster, scaled_policies  # noqa: E402

T = TypeVar("T")


def timed(func: Callable[[], T], repeat: int = 1) -> tuple[T, float]:
    """The result of the last run and the median wall time."""
    times = []
    result: T
    for _ in range(repeat):
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
    return result, statistics.median(times)


def seconds(value: float) -> str:
    if value >= 3600:
        return f"{value / 3600:,.1f} h"
    if value >= 60:
        return f"{value / 60:,.1f} min"
    if value >= 1:
        return f"{value:,.2f} s"
    return f"{value * 1000:,.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespaces", type=int, default=1000)
    parser.add_argument("--pods-per-namespace", type=int, default=10)
    parser.add_argument("--policies", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sample", type=int, default=20000, help="oracle calls to time")
    parser.add_argument("--repeat", type=int, default=3, help="runs of the engine (median)")
    parser.add_argument("--load", action="store_true", help="also time npc.load on the YAML")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    (snap, policies), t_gen = timed(
        lambda: (
            s := scaled_cluster(rng, args.namespaces, args.pods_per_namespace),
            scaled_policies(rng, s, args.policies),
        )
    )
    pods = len(snap.pods)
    probes = list(default_probes(snap))
    print(
        f"cluster: {len(snap.namespaces):,} namespaces, {pods:,} pods, {len(policies):,} "
        f"policies (generated in {seconds(t_gen)}); {len(probes)} probes: "
        + ", ".join(str(p) for p in probes)
    )

    # -- the engine: classes, then every probe's class matrix -----------------------------
    reach, t_classes = timed(lambda: Reach(policies, snap), args.repeat)
    classes = len(reach.classes)

    def all_matrices() -> Reach:
        fresh = Reach(policies, snap)
        for probe in probes:
            fresh.matrix(probe)
        return fresh

    reach, t_engine = timed(all_matrices, args.repeat)
    t_matrices = t_engine - t_classes
    sizes = sorted(len(c) for c in reach.classes)
    print(
        f"classes: {classes:,} ({pods / classes:.1f} pods per class on average, largest "
        f"{sizes[-1]}, {sum(1 for s in sizes if s == 1):,} single pods)"
    )
    print(f"  find classes:                    {seconds(t_classes)}")
    print(
        f"  class matrices, {len(probes)} probes:      {seconds(t_matrices)} "
        f"({seconds(t_matrices / len(probes))} per probe)"
    )
    print(f"  total (classes + all matrices):  {seconds(t_engine)}")

    # -- the oracle, pair by pair, on a sample ----------------------------------------------
    sem = Semantics(policies, snap)
    sample_rng = random.Random(args.seed + 1)
    triples = [
        (
            sample_rng.choice(snap.pods),
            sample_rng.choice(snap.pods),
            sample_rng.choice(probes),
        )
        for _ in range(args.sample)
    ]
    for src, _, _ in triples[:2000]:  # warm the oracle's selection cache, as a full run would
        sem.selecting(src)
    verdicts, t_sample = timed(
        lambda: [sem.pod_allowed(s, d, p.protocol, p.port) for s, d, p in triples]
    )
    per_call = t_sample / len(triples)
    disagree = sum(
        1 for (s, d, p), v in zip(triples, verdicts, strict=True) if reach.allowed(s, d, p) != v
    )
    all_pairs = pods * pods * len(probes)
    class_pairs = classes * classes * len(probes)
    t_oracle = per_call * all_pairs
    t_oracle_classes = per_call * class_pairs
    print(
        f"oracle (Semantics.pod_allowed): {per_call * 1e6:.1f} us per pair, "
        f"{len(triples):,} sampled, {disagree} disagreements with reach"
    )
    print(f"  every pod pair ({all_pairs:,}):  {seconds(t_oracle)} (extrapolated)")
    print(f"  once per class pair ({class_pairs:,}):  {seconds(t_oracle_classes)} (extrapolated)")
    print(f"ratio, oracle pair by pair / reach engine:     {t_oracle / t_engine:,.0f}x")
    print(f"ratio, oracle per class pair / reach engine:   {t_oracle_classes / t_engine:,.0f}x")

    # -- expansion to pods ----------------------------------------------------------------
    probe = Probe(8080) if Probe(8080) in probes else probes[0]
    rows = max(1, min(200, pods // 10))
    sources = sample_rng.sample(list(snap.pods), rows)
    view = ReachView.of(reach, [probe], sources, None)
    text, t_rows = timed(lambda: "".join(json_chunks(view)))
    per_row = t_rows / rows
    print(
        f"expansion: JSON for {probe}, {rows} source rows x {pods:,} destinations in "
        f"{seconds(t_rows)}: {seconds(per_row)} per row, {len(text) / rows / 1e6:.2f} MB per "
        f"row; all {pods:,} rows ~ {seconds(per_row * pods)} and "
        f"{len(text) / rows * pods / 1e9:.1f} GB per probe (extrapolated)"
    )
    whole = ReachView.of(reach, probes)
    report, t_summary = timed(lambda: summary(whole))
    print(
        f"class summary, every probe: {seconds(t_summary)}, {report.count(chr(10)):,} lines, "
        f"{len(report) / 1e6:.2f} MB"
    )

    # -- reading YAML (the frontend), optional -------------------------------------------
    if args.load:
        sources_text = [
            npc.Source("cluster.yaml", cluster_yaml(snap)),
            npc.Source("policies.yaml", policy_yaml(policies)),
        ]
        size = sum(len(s.text) for s in sources_text) / 1e6
        _, t_load = timed(lambda: npc.load(sources_text))
        print(f"npc.load of the YAML ({size:.1f} MB): {seconds(t_load)}")


if __name__ == "__main__":
    main()
