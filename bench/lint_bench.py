"""Benchmark: ``npc lint`` on a synthetic 10,000-pod cluster.

    .venv/bin/python bench/lint_bench.py          # 1,000 namespaces x 10 pods, 5,000 policies
    .venv/bin/python bench/lint_bench.py --namespaces 100 --policies 500

The cluster and policies come from ``tests/synth.py`` (as in ``reach_bench.py``). It reports
the time of every check together, of the checks that need no snapshot (what every load runs),
and the findings by code. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.synth (the generator lives with the tests)

from npc.analysis.lint import lint, written_findings  # noqa: E402
from tests.synth import scaled_cluster, scaled_policies  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespaces", type=int, default=1000)
    parser.add_argument("--pods-per-namespace", type=int, default=10)
    parser.add_argument("--policies", type=int, default=5000)
    args = parser.parse_args()
    snapshot = scaled_cluster(random.Random(1), args.namespaces, args.pods_per_namespace)
    policies = scaled_policies(random.Random(2), snapshot, args.policies)
    print(f"{len(snapshot.pods):,} pods, {len(policies):,} policies")
    start = time.perf_counter()
    written = written_findings(policies)
    print(f"checks run on every load: {time.perf_counter() - start:.2f} s, {len(written)} findings")
    start = time.perf_counter()
    found = lint(policies, snapshot)
    print(f"every check: {time.perf_counter() - start:.2f} s, {len(found):,} findings")
    for code, count in sorted(Counter(str(f.code) for f in found).items()):
        print(f"  {code}: {count:,}")


if __name__ == "__main__":
    main()
