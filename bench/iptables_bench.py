"""Benchmark of the iptables target on a synthetic cluster (issue 9).

Reports, in one run: compile time, output size, restore time (``ipset restore`` and
``iptables-restore --noflush`` into a fresh network namespace, legacy and nft variants), and
the rate of new TCP connections routed through the compiled ruleset relative to a minimal
stateful one, with ipsets and with ``--sets none``, for both variants. The method is
``bench/nft_bench.py``'s (``shared/reference/perf.md`` 2.1): client, router and server
namespaces joined by veth pairs, the ruleset on the router, a C connect/close loop pinned to
one CPU; rounds alternate between the compiled ruleset and the minimal one (the same chains
with ``-j ACCEPT`` inserted right after the ``INVALID`` drop in ``NPC-FORWARD``, so both hold
the same memory) and the figure is the median of the per-round ratios. The probe flow goes
from an isolated client pod to an isolated server pod on an allowed port, through both
dispatch trees and both class chains; a denied port is checked to be dropped.

``--compare-dispatch`` also measures the alternative the issue asks to weigh against the
prefix tree: one ``hash:net`` ipset per class and one ``-m set --match-set ... -g <class>``
rule per class in the dispatch chain (built from the compiled tree by this script).

``--cnp FILE`` adds the ClusterNetworkPolicies of a YAML file (admin and baseline tier chains
around the dispatch; ``bench/tiers.yaml`` holds three that leave the probe flow allowed).

    .venv/bin/python bench/iptables_bench.py                 # 1,000 ns, 10,000 pods, 5,000 pol.
    .venv/bin/python bench/iptables_bench.py --pods 1000 --policies 500 --namespaces 100
    .venv/bin/python bench/iptables_bench.py --cnp bench/tiers.yaml
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.synth, tests.kernel.netns and bench.nft_bench

import npc  # noqa: E402
from bench.nft_bench import ProbeFlow, median_time, probe_flow, rate, reaches  # noqa: E402
from npc import ir, tiers  # noqa: E402
from npc.backends.base import Emitted  # noqa: E402
from npc.targets import get_backend  # noqa: E402
from tests.kernel import netns  # noqa: E402
from tests.kernel.probe import inside  # noqa: E402
from tests.synth import scaled_cluster, scaled_policies  # noqa: E402

VARIANTS = ("legacy", "nft")


def part(text: str, family: int) -> str:
    """One family's part of the restore file."""
    tool = "ip6tables" if family == 6 else "iptables"
    head = text.index(f"# {tool}-restore --noflush")
    return text[head : text.index("COMMIT\n", head) + len("COMMIT\n")]


def counts(rules: str, ipsets: str) -> str:
    chains = len(re.findall(r"^:", rules, re.MULTILINE))
    appended = len(re.findall(r"^-A ", rules, re.MULTILINE))
    sets = len(re.findall(r"^create ", ipsets, re.MULTILINE))
    entries = len(re.findall(r"^add ", ipsets, re.MULTILINE))
    return (
        f"{(len(rules) + len(ipsets)) / 1e6:.2f} MB: {chains:,} chains, {appended:,} rules, "
        f"{sets:,} ipsets with {entries:,} entries"
    )


def restore_times(rules: str, ipsets: str, variant: str, runs: int) -> tuple[float, float, float]:
    """Median seconds of ``ipset restore``, then each family's ``--noflush`` restore, into a
    fresh namespace."""
    out: list[tuple[float, float, float]] = []
    for i in range(runs):
        lab = netns.Lab()
        try:
            name = lab.add_node(f"scratch{i}")
            figures = []
            for command, text in (
                (("ipset", "restore"), ipsets),
                ((f"iptables-{variant}-restore", "--noflush"), part(rules, 4)),
                ((f"ip6tables-{variant}-restore", "--noflush"), part(rules, 6)),
            ):
                start = time.perf_counter()
                netns.run("ip", "netns", "exec", name, *command, stdin=text)
                figures.append(time.perf_counter() - start)
            out.append((figures[0], figures[1], figures[2]))
        finally:
            lab.destroy()
    return (
        statistics.median(f[0] for f in out),
        statistics.median(f[1] for f in out),
        statistics.median(f[2] for f in out),
    )


def set_per_class(rules: str, ipsets: str) -> tuple[str, str]:
    """The IPv4 part with the dispatch trees replaced by one ipset per class, and the
    ipsets with those added: the alternative to the prefix tree, for comparison."""
    text = part(rules, 4)
    goto = re.compile(r"^-A (NPC-(?:EGRESS|INGRESS|ET-\w+|IT-\w+)) -[sd] (\S+) -g (\S+)$")
    tree: dict[str, list[tuple[str, str]]] = {}
    for line in text.splitlines():
        found = goto.match(line)
        if found:
            tree.setdefault(found[1], []).append((found[2], found[3]))
    lines: list[str] = []
    extra: list[str] = []
    for root, kind, side in (("NPC-EGRESS", "E", "src"), ("NPC-INGRESS", "I", "dst")):
        members: dict[str, list[str]] = {}

        def leaves(chain: str, members: dict[str, list[str]] = members) -> None:
            for block, target in tree.get(chain, ()):
                if target in tree:
                    leaves(target)
                else:
                    members.setdefault(target, []).append(block)

        leaves(root)
        for chain, blocks in members.items():
            name = f"NPC-D{kind}-{chain[len('NPC-E-') :]}"
            extra.append(f"create {name} hash:net family inet hashsize 1024 maxelem 65536")
            extra += [f"add {name} {b}" for b in blocks]
            lines.append(f"-A {root} -m set --match-set {name} {side} -g {chain}")
    kept = [
        line
        for line in text.splitlines()
        if not re.match(r"^(:|-A )NPC-(ET|IT)-", line) and not goto.match(line)
    ]
    commit = kept.index("COMMIT")
    return "\n".join([*kept[:commit], *lines, *kept[commit:]]) + "\n", ipsets + "\n".join(
        extra
    ) + "\n"


@contextmanager
def router_lab(flow: ProbeFlow, binary: Path) -> Iterator[netns.Lab]:
    client, server = flow.client, flow.server
    lab = netns.build([("client", client.ips, "router"), ("server", server.ips, "router")])
    server_proc: subprocess.Popen[str] | None = None
    try:
        server_proc = subprocess.Popen(
            ["ip", "netns", "exec", lab.hosts["server"].netns, str(binary), "server",
             str(server.ips[0]), str(flow.port), "1"],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert server_proc.stdout is not None and server_proc.stdout.readline() == "ready\n"
        yield lab
    finally:
        if server_proc is not None:
            server_proc.kill()
            server_proc.wait(timeout=10)
        lab.destroy()


def connection_ratio(
    lab: netns.Lab, flow: ProbeFlow, binary: Path, variant: str, args: argparse.Namespace
) -> tuple[float, float, float]:
    """(minimal/s, compiled/s, median of round ratios) for the ruleset loaded in the router."""
    router = lab.nodes["router"]
    tool = ("ip", "netns", "exec", router, f"iptables-{variant}")
    assert reaches(lab, flow.port, 2.0), "the allowed flow does not get through"
    assert not reaches(lab, flow.denied, 1.0), "a denied port gets through"
    rates: dict[bool, list[int]] = {True: [], False: []}
    rate(lab, binary, flow.port, 0.5)  # warm up
    for i in range(args.rounds):
        for minimal in (True, False) if i % 2 == 0 else (False, True):
            if minimal:
                netns.run(*tool, "-I", "NPC-FORWARD", "3", "-j", "ACCEPT")
            rates[minimal].append(rate(lab, binary, flow.port, args.seconds))
            if minimal:
                netns.run(*tool, "-D", "NPC-FORWARD", "3")
    paired = statistics.median(c / m for c, m in zip(rates[False], rates[True], strict=True))
    return statistics.median(rates[True]), statistics.median(rates[False]), paired


def load(lab: netns.Lab, rules: str, ipsets: str, variant: str) -> None:
    """Load into the router with what ``npc apply`` runs (sets, chains, the FORWARD jump)."""
    backend = get_backend("iptables")
    text = Emitted.of_files((("", rules), (".ipset", ipsets))).text
    with inside(lab.nodes["router"]):
        backend.apply(text, backend.make_options({"variant": variant}))


def unload(lab: netns.Lab, variant: str) -> None:
    router = lab.nodes["router"]
    for tool in ("iptables", "ip6tables"):
        netns.run("ip", "netns", "exec", router, f"{tool}-{variant}", "-F")
        netns.run("ip", "netns", "exec", router, f"{tool}-{variant}", "-X")
    netns.run("ip", "netns", "exec", router, "ipset", "destroy")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespaces", type=int, default=1000)
    parser.add_argument("--pods", type=int, default=10000)
    parser.add_argument("--policies", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=11, help="connection-rate rounds")
    parser.add_argument("--seconds", type=float, default=1.0, help="length of one round")
    parser.add_argument("--compare-dispatch", action="store_true")
    parser.add_argument("--cnp", type=Path, help="ClusterNetworkPolicies to add (YAML)")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    snapshot = scaled_cluster(rng, args.namespaces, max(1, args.pods // args.namespaces))
    generated = scaled_policies(rng, snapshot, args.policies)
    flow = probe_flow(generated, snapshot)
    cluster = npc.load(npc.read_sources([str(args.cnp)])).cluster_policies if args.cnp else None
    bundle = npc.Bundle(
        ir.PolicySet((*generated, flow.egress_policy)),
        snapshot,
        cluster_policies=cluster or tiers.EMPTY,
    )
    print(
        f"npc iptables benchmark: {len(snapshot.namespaces):,} namespaces, "
        f"{len(snapshot.pods):,} pods, {len(generated):,} policies + 1 for the probe flow "
        f"(seed {args.seed})"
        + (f", {len(cluster)} ClusterNetworkPolicies from {args.cnp}" if cluster else "")
    )
    outputs: dict[str, tuple[str, str]] = {}
    for sets in ("ipset", "none"):
        files = dict(npc.compile(bundle, "iptables", {"sets": sets}).files)
        outputs[sets] = (files[""], files[".ipset"])
        wall, cpu = median_time(3, lambda s=sets: npc.compile(bundle, "iptables", {"sets": s}))
        print(f"--sets {sets}: compile (optimizer + plan + render), median of 3: {wall:.2f} s "
              f"({cpu:.2f} s CPU); output {counts(*outputs[sets])}")  # fmt: skip
    reason = netns.netns_unavailable()
    if reason is not None:
        print(f"kernel figures skipped: {reason}")
        return 0
    for variant in VARIANTS:
        for sets, (rules, ipsets) in outputs.items():
            s, four, six = restore_times(rules, ipsets, variant, runs=3)
            print(f"restore into a fresh namespace, {variant}, --sets {sets}, median of 3: "
                  f"ipset {s:.2f} s, iptables {four:.2f} s, ip6tables {six:.2f} s")  # fmt: skip
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        print("connection rate skipped: no C compiler (cc/gcc) to build bench/connloop.c")
        return 0
    work = Path(tempfile.mkdtemp(prefix="npc-bench-"))
    try:
        binary = work / "connloop"
        subprocess.run([compiler, "-O2", "-o", str(binary), str(ROOT / "bench" / "connloop.c")],
                       check=True)  # fmt: skip
        print(
            f"new TCP connections/s, {flow.client.key} ({flow.client.ips[0]}) -> "
            f"{flow.server.key} ({flow.server.ips[0]}):{flow.port}; {flow.isolating[0]} "
            f"policies isolate the client for egress, {flow.isolating[1]} the server for "
            f"ingress; TCP/{flow.denied} is dropped; {args.rounds} rounds x {args.seconds:g} s "
            "against the minimal stateful ruleset:"
        )
        runs: list[tuple[str, str, str, str]] = [
            (v, s, *outputs[s]) for v in VARIANTS for s in ("ipset", "none")
        ]
        if args.compare_dispatch:
            runs.append(("legacy", "ipset, dispatch by one set per class",
                         *set_per_class(*outputs["ipset"])))  # fmt: skip
        with router_lab(flow, binary) as lab:
            for variant, sets, rules, ipsets in runs:
                load(lab, rules, ipsets, variant)
                low, high, paired = connection_ratio(lab, flow, binary, variant, args)
                unload(lab, variant)
                print(f"  {variant:6} --sets {sets}: minimal {low:,.0f}/s, compiled "
                      f"{high:,.0f}/s, median round ratio {paired:.3f} "
                      f"[target >= 0.9: {'met' if paired >= 0.9 else 'MISSED'}]")  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
