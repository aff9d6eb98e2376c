"""Calico target and evaluator cost, as ratios measured in one run.

    .venv/bin/python bench/calico.py [--policies 2000] [--seed 1]

* emit: compiling a synthetic policy set for ``calico`` (both scopes) against the ``ir``
  target on the same loaded bundle (so frontend cost is excluded from both);
* read back: parsing the emitted GlobalNetworkPolicy stream, against emitting it;
* evaluate: flows per second of :class:`npc.rulesets.calico.evaluate.CalicoSemantics` against the
  reference :class:`npc.analysis.semantics.Semantics` on the same flows.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import npc
from npc.analysis.semantics import Semantics
from npc.flows import Endpoint, Flow
from npc.rulesets.calico.evaluate import CalicoSemantics
from npc.rulesets.calico.model import load_objects
from tests.synth import (
    cluster_yaml,
    policy_yaml,
    probe_ports,
    random_cluster,
    random_policies,
)


def timed(fn: Callable[[], object], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--policies", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    snap = random_cluster(rng, namespaces=10, pods=240, ipv6=True)
    policies = random_policies(rng, snap, count=args.policies, ipv6=True)
    bundle = npc.load(
        [npc.Source("p.yaml", policy_yaml(policies)), npc.Source("c.yaml", cluster_yaml(snap))]
    )
    t_ir = timed(lambda: npc.compile(bundle, "ir"))
    t_gnp = timed(lambda: npc.compile(bundle, "calico"))
    t_knp = timed(lambda: npc.compile(bundle, "calico", {"calico_scope": "namespaced"}))
    text = npc.compile(bundle, "calico").text
    t_read = timed(lambda: load_objects(text))
    print(f"{args.policies} policies, {len(snap.pods)} pods; ir target {t_ir * 1000:.0f} ms")
    print(f"emit calico global / ir:      {t_gnp / t_ir:6.2f}x")
    print(f"emit calico namespaced / ir:  {t_knp / t_ir:6.2f}x")
    print(f"read GNP back / emit GNP:     {t_read / t_gnp:6.2f}x")

    pods = list(snap.pods[:60])
    ports = probe_ports(snap, policies)[:10]
    flows = [
        Flow(Endpoint.of_pod(a, 4), Endpoint.of_pod(b, 4), proto, port)
        for a in pods
        for b in pods
        for proto, port in ports
    ]
    calico = CalicoSemantics(load_objects(text), bundle.snapshot or snap)
    spec = Semantics(bundle.policies, bundle.snapshot or snap)
    t_spec = timed(lambda: [spec.allowed(f) for f in flows], repeat=1)
    t_calico = timed(lambda: [calico.allowed(f) for f in flows], repeat=1)
    agree = sum(calico.allowed(f) == spec.allowed(f) for f in flows)
    print(f"evaluate {len(flows)} flows: calico / reference: {t_calico / t_spec:6.2f}x")
    print(f"verdicts agreeing: {agree}/{len(flows)}")


if __name__ == "__main__":
    main()
