"""The one enumeration of flows the equivalence tests walk (targets, passes, judges)."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

from npc import ir
from npc.flows import Endpoint, Flow
from npc.snapshot import Snapshot
from tests.synth import probe_ports


def endpoints(snapshot: Snapshot, outside: Sequence[str] = ()) -> list[Endpoint]:
    """Every address of every pod (hostNetwork pods as plain addresses) and ``outside``."""
    found = [Endpoint.of_pod(p, a.version) for p in snapshot.pods for a in p.ips]
    return found + [Endpoint.of_address(a) for a in outside]


def flows(
    snapshot: Snapshot,
    policies: ir.PolicySet,
    outside: Sequence[str] = (),
    rng: random.Random | None = None,
    sample: int = 6,
) -> Iterator[Flow]:
    """The flows the equivalence tests walk: between every two distinct endpoints of one
    family (pods and ``outside`` addresses), on every :func:`probe_ports` port, or on
    ``sample`` of them drawn per pair with ``rng``."""
    ports = probe_ports(snapshot, policies)
    every = endpoints(snapshot, outside)
    for src in every:
        for dst in every:
            if src.address.version != dst.address.version or src.name == dst.name:
                continue
            chosen = ports if rng is None else rng.sample(ports, min(sample, len(ports)))
            for protocol, port in chosen:
                yield Flow(src, dst, protocol, port)
