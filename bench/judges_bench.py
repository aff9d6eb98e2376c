"""Benchmark of the judges (``npc.rulesets.nft``, ``npc.rulesets.iptables``).

Reports, for npc's nft output on a synthetic cluster: the time to read the ruleset back (parse,
resolve) and the rate of flow decisions over pod-to-pod flows; and the same for a kube-router
node's iptables-save and ipset save files (``tests/data/iptables/kube-router``), the decisions
repeated over its flows. ``npc verify`` reads a ruleset once and decides every flow of a
snapshot, so these two figures bound its cost.

    .venv/bin/python bench/judges_bench.py                       # 100 ns, 2,000 pods, 500 policies
    .venv/bin/python bench/judges_bench.py --pods 10000 --namespaces 1000 --policies 5000
"""

from __future__ import annotations

import argparse
import itertools
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.synth

import npc  # noqa: E402
from npc import ir  # noqa: E402
from npc.flows import Endpoint, Flow  # noqa: E402
from npc.rulesets import iptables, nft  # noqa: E402
from tests.synth import scaled_cluster, scaled_policies  # noqa: E402


@dataclass(frozen=True)
class Text:
    name: str
    text: str


def _rate(judge: nft.NftJudge | iptables.IptablesJudge, flows: list[Flow]) -> tuple[float, int]:
    start = time.perf_counter()
    allowed = sum(judge.decide(f).allowed for f in flows)
    return len(flows) / (time.perf_counter() - start), allowed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespaces", type=int, default=100)
    parser.add_argument("--pods", type=int, default=2000)
    parser.add_argument("--policies", type=int, default=500)
    parser.add_argument("--flows", type=int, default=50000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    snapshot = scaled_cluster(rng, args.namespaces, max(1, args.pods // args.namespaces))
    policies = scaled_policies(rng, snapshot, args.policies)
    text = npc.compile(npc.Bundle(policies, snapshot), "nft").text
    print(
        f"nft judge: {len(snapshot.pods):,} pods, {len(policies):,} policies, ruleset "
        f"{len(text) / 1e6:.2f} MB, {text.count(chr(10)):,} lines"
    )
    start = time.perf_counter()
    judge = nft.read([Text("ruleset.nft", text)])
    print(f"  read (parse + resolve): {time.perf_counter() - start:.2f} s")
    pods = list(snapshot.pods)
    pairs = ((a, b) for a, b in itertools.product(pods, pods) if a is not b)
    flows = [
        Flow(Endpoint.of_pod(a), Endpoint.of_pod(b), ir.Protocol.TCP, rng.choice((80, 443, 8080)))
        for a, b in itertools.islice(pairs, args.flows)
    ]
    per_second, allowed = _rate(judge, flows)
    print(f"  decide: {per_second:,.0f} flows/s ({allowed:,} of {len(flows):,} allowed)")

    data = ROOT / "tests" / "data" / "iptables" / "kube-router"
    names = ("iptables-save.txt", "ip6tables-save.txt", "ipset-save.txt")
    texts = [Text(n, (data / n).read_text(encoding="utf-8")) for n in names]
    start = time.perf_counter()
    for _ in range(100):
        ipt = iptables.read(texts)
    print(f"iptables judge (kube-router node): read {(time.perf_counter() - start) * 10:.2f} ms")
    addresses = ["10.1.0.2", "10.1.0.3", "10.2.0.5", "192.0.2.1", "192.0.2.200"]
    sample = [
        Flow(Endpoint.of_address(a), Endpoint.of_address(b), ir.Protocol.TCP, port)
        for a, b in itertools.permutations(addresses, 2)
        for port in (80, 443, 8080)
    ]
    per_second, _ = _rate(ipt, sample * max(1, args.flows // len(sample)))
    print(f"  decide: {per_second:,.0f} flows/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
