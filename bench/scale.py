"""Compile time at cluster scale, against the floor (issue 13), in one run.

    .venv/bin/python bench/scale.py                       # 100 and 1,000 namespaces
    .venv/bin/python bench/scale.py --sizes 100,1000,3000 --repeat 3
    .venv/bin/python bench/scale.py --sizes 100 --no-process     # the quick smoke run

For each size (namespaces of :mod:`bench.clusters`: ten pods and five policies each) and each
input format (JSON as ``kubectl get -o json`` prints it, YAML as ``-o yaml``), it prints:

* the floor: parsing the same texts with the fastest plain loader (``json.loads``; libyaml's
  ``yaml.CSafeLoader`` for YAML);
* each stage of ``npc.load`` + ``npc.compile`` in this process (load, validate, lower, the
  capability check, the passes, and per target: resolve, plan and render), and ``npc reach``
  (classes, matrices and the summary), ``npc lint`` (every check, findings located), and
  ``npc verify --target nft --node node000`` of that node's ruleset (``verify read``: the
  nft judge reading it; ``verify check``: every flow the node enforces), as seconds and as
  ratios to the floor;
* the whole ``npc compile --target T`` process (a subprocess reading the files, writing
  ``-o``), with its peak RSS and output size; ``--node`` for one node of
  :data:`~bench.clusters.NODES` against the whole cluster; ``npc apply --target nft`` into a
  throwaway network namespace when run as root with ``ip`` and ``nft`` installed;
* the growth from the smallest to the largest size, next to the growth of the input.

Stage times are exclusive (a stage nested in another is not counted twice); they come from
timers wrapped around npc's functions for the duration of one run, so they include a
microsecond of overhead per call. Each figure is the best of ``--repeat`` runs. Generated
inputs are cached in ``--workdir``. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import npc  # noqa: E402
import npc.api  # noqa: E402
import npc.frontend.bundle as bundle_module  # noqa: E402
from bench.clusters import NODES, write_cluster  # noqa: E402
from npc.analysis.reach import Reach  # noqa: E402
from npc.analysis.reach_format import ReachView, summary  # noqa: E402
from npc.backends import grants as grants_module  # noqa: E402
from npc.flows import default_probes  # noqa: E402
from npc.targets import available, get_target, settings_for  # noqa: E402

FORMATS = ("json", "yaml")
NPC = str(Path(sys.executable).with_name("npc"))
#: The node whose ruleset ``--node`` compiles and verify checks.
VERIFY_NODE = "node000"


# -- exclusive stage timers -----------------------------------------------------------------


@dataclass
class Stopwatch:
    """Accumulates exclusive wall time per stage for functions wrapped with :meth:`wrap`."""

    #: ``time.perf_counter`` (wall) or ``time.process_time`` (CPU, with ``--cpu``).
    clock: Callable[[], float] = time.perf_counter
    totals: dict[str, float] = field(default_factory=dict)
    _stack: list[float] = field(default_factory=list)
    _undo: list[tuple[Any, str, Any]] = field(default_factory=list)

    def wrap(self, owner: Any, attr: str, stage: str) -> None:
        original = owner.__dict__[attr] if isinstance(owner, type) else getattr(owner, attr)

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = self.clock()
            self._stack.append(0.0)
            try:
                return original(*args, **kwargs)
            finally:
                elapsed = self.clock() - start
                self.add(stage, elapsed - self._stack.pop())
                if self._stack:
                    self._stack[-1] += elapsed

        setattr(owner, attr, timed)
        self._undo.append((owner, attr, original))

    def add(self, stage: str, seconds: float) -> None:
        self.totals[stage] = self.totals.get(stage, 0.0) + seconds

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time a block as ``name`` (exclusive of wrapped calls inside it)."""
        self.wrap(_Block, "run", name)
        try:
            yield
        finally:
            self.restore()

    def restore(self) -> None:
        while self._undo:
            owner, attr, original = self._undo.pop()
            setattr(owner, attr, original)


class _Block:
    @staticmethod
    def run(fn: Callable[[], Any]) -> Any:
        return fn()


#: Settings the bench cluster needs: its ten pods per namespace share nodes, which the
#: alibaba target refuses unless same-node traffic is trusted to another enforcer.
SETTINGS = {"same_node": "trust"}


def _settings(target: str) -> dict[str, str]:
    """The :data:`SETTINGS` that ``target`` takes."""
    return settings_for(target, SETTINGS)


def _flags(target: str) -> list[str]:
    return [a for k, v in _settings(target).items() for a in ("--" + k.replace("_", "-"), v)]


def _frontend_timers(watch: Stopwatch) -> None:
    for name in ("validate_network_policy", "lint_network_policy", "_add_snapshot_object"):
        if hasattr(bundle_module, name):  # the lint moved out of the loader on some versions
            watch.wrap(bundle_module, name, "validate")
    watch.wrap(bundle_module.Decoder, "decode", "validate")
    watch.wrap(bundle_module.ClusterBuilder, "build", "validate")
    watch.wrap(bundle_module, "lower_network_policy", "lower")
    watch.wrap(npc.api, "check", "check")
    watch.wrap(npc.api, "optimize", "passes")


#: Per target: (module, attribute, stage suffix) of the functions that plan and render.
_BACKEND_TIMERS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "nft": (("npc.backends.nft.backend", "plan", "plan"),),
    "calico": (
        ("npc.backends.calico.backend", "global_policies", "plan"),
        ("npc.backends.calico.backend", "namespaced_policies", "plan"),
        ("npc.backends.calico.backend", "check_namespace_label_spoofing", "plan"),
        ("npc.backends.calico.backend", "dump", "render"),
    ),
    "ir": (("npc.kubeyaml", "safe_dump", "render"), ("yaml", "safe_dump", "render")),
    "alibaba": (
        ("npc.backends.alibaba.backend", "build", "plan"),
        ("npc.backends.alibaba.backend", "attach", "plan"),
        ("npc.backends.alibaba.backend", "document", "render"),
        ("npc.backends.alibaba.backend", "dumps", "render"),
    ),
}


def _backend_timers(watch: Stopwatch, target: str) -> None:
    """Resolve (the shared grants), plan and render of one target. What is not timed
    otherwise inside the backend's ``emit`` counts as its render (nft: the template), or
    as its plan where the target's table above names only a render (ir: building the data)."""
    for method in ("__init__", "classes", "grants"):
        watch.wrap(grants_module.Grants, method, f"{target} resolve")
    named = _BACKEND_TIMERS.get(target, ())
    for module, attr, suffix in named:
        watch.wrap(importlib.import_module(module), attr, f"{target} {suffix}")
    rest = "plan" if named and all(s == "render" for *_, s in named) else "render"
    if not named:
        rest = "emit"
    module_name, _, class_name = get_target(target).emitter.partition(":")
    backend = getattr(importlib.import_module(module_name), class_name)
    watch.wrap(backend, "emit", f"{target} {rest}")


# -- one size, one format -------------------------------------------------------------------


@dataclass
class Run:
    """Figures of one (size, format): seconds per stage, process figures, output sizes."""

    size: int
    fmt: str
    input_bytes: int
    stages: dict[str, float] = field(default_factory=dict)
    #: command -> (wall seconds, CPU seconds, peak RSS in KiB)
    process: dict[str, tuple[float, float, int]] = field(default_factory=dict)
    output: dict[str, int] = field(default_factory=dict)


def _best(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: min(r.get(k, 0.0) for r in runs) for k in runs[0]}


def _floor(texts: list[str], fmt: str, clock: Callable[[], float]) -> float:
    start = clock()
    for text in texts:
        if fmt == "json":
            json.loads(text)
        else:
            list(yaml.load_all(text, Loader=yaml.CSafeLoader))
    return clock() - start


def _in_process(
    files: list[Path],
    targets: list[str],
    analyses: tuple[bool, bool],
    clock: Callable[[], float],
) -> tuple[dict[str, float], dict[str, int]]:
    """Stage times of loading ``files`` and compiling them for each target; output sizes."""
    sources = [npc.Source(str(f), f.read_text(encoding="utf-8")) for f in files]
    gc.collect()
    stages = {"floor": _floor([s.text for s in sources], files[0].suffix[1:], clock)}
    watch = Stopwatch(clock)
    _frontend_timers(watch)
    try:
        with watch.stage("load"):
            bundle = _Block.run(lambda: npc.load(sources))
    finally:
        watch.restore()
    stages.update(watch.totals)
    snapshot = bundle.snapshot
    assert snapshot is not None
    sizes: dict[str, int] = {}
    for number, target in enumerate(targets):
        watch = Stopwatch(clock)
        _frontend_timers(watch)
        _backend_timers(watch, target)
        try:
            artifact = npc.compile(bundle, target, _settings(target))
        finally:
            watch.restore()
        for stage, seconds in watch.totals.items():
            # The check and the passes run again for every target: count them once.
            if stage.startswith(f"{target} ") or number == 0:
                stages[stage] = seconds
        sizes[target] = len(artifact.text.encode())
    reach, verify = analyses
    if reach:
        watch = Stopwatch(clock)
        with watch.stage("reach"):
            _Block.run(
                lambda: summary(
                    ReachView.of(Reach(bundle.policies, snapshot), default_probes(snapshot))
                )
            )
        with watch.stage("lint"):  # the other whole-cluster analysis
            _Block.run(lambda: npc.lint(bundle))
        stages.update(watch.totals)
    if verify:
        stages.update(_verify(bundle, clock))
    return stages, sizes


def _verify(bundle: npc.Bundle, clock: Callable[[], float]) -> dict[str, float]:
    """``npc verify --target nft --node`` on npc's own ruleset for that node: reading it
    (the judge) and the check; the report must find no difference."""
    from npc.analysis.verify import verify  # noqa: PLC0415

    snapshot = bundle.snapshot
    assert snapshot is not None
    artifact = npc.compile(bundle, "nft", {"node": VERIFY_NODE})
    watch = Stopwatch(clock)
    with watch.stage("verify read"):
        judge = _Block.run(
            lambda: npc.api.judge("nft", npc.api.artifact_sources(artifact), snapshot)
        )
    with watch.stage("verify check"):
        report = _Block.run(
            lambda: verify(
                bundle.policies,
                snapshot,
                judge,
                target="nft",
                node=VERIFY_NODE,
                cluster_policies=bundle.cluster_policies,
            )
        )
    if report.differences:
        raise SystemExit(f"verify found {len(report.differences)} differences in npc's nft output")
    return watch.totals


#: Runs the npc commands for us. A child's peak RSS counts the memory of the process it was
#: forked from (Linux keeps the high-water mark across exec), and this one holds a loaded
#: cluster: so commands are started by this small process, itself started before anything
#: big was loaded. It reads a JSON argv per line and answers [wall s, cpu s, KiB, status,
#: stderr].
_LAUNCHER = """
import json, os, subprocess, sys, time
for line in sys.stdin:
    argv = json.loads(line)
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = proc.stderr.read().decode(errors="replace")
    _, status, use = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    cpu = use.ru_utime + use.ru_stime
    answer = [wall, cpu, use.ru_maxrss, os.waitstatus_to_exitcode(status), err]
    print(json.dumps(answer), flush=True)
"""


class Launcher:
    """The small process that starts npc commands (see :data:`_LAUNCHER`)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(self, argv: list[str], netns: str | None = None) -> tuple[float, float, int]:
        """Wall seconds, CPU seconds and peak RSS (KiB) of one command (in ``netns``)."""
        if netns is not None:
            argv = ["ip", "netns", "exec", netns, *argv]
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(argv) + "\n")
        self.proc.stdin.flush()
        wall, cpu, kib, status, stderr = json.loads(self.proc.stdout.readline())
        if status != 0:
            raise SystemExit(f"{' '.join(argv)} failed ({status}):\n{stderr}")
        return wall, cpu, kib

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait()


def _can_apply() -> bool:
    return os.geteuid() == 0 and all(shutil.which(t) for t in ("ip", "nft"))


def _processes(
    launcher: Launcher, files: list[Path], targets: list[str], out: Path, apply: bool
) -> dict[str, tuple[float, float, int]]:
    inputs = [a for f in files for a in ("-f", str(f))]
    found: dict[str, tuple[float, float, int]] = {}
    for target in targets:
        found[f"npc compile --target {target}"] = launcher.run(
            [NPC, "compile", "--target", target, *inputs, *_flags(target), "-o", str(out / target)]
        )
    if "nft" in targets:
        node = ["--node", VERIFY_NODE, "-o", str(out / "node")]
        found[f"npc compile --target nft --node {VERIFY_NODE}"] = launcher.run(
            [NPC, "compile", "--target", "nft", *inputs, *node]
        )
        if apply and _can_apply():
            netns = f"npc-bench-{os.getpid()}"
            subprocess.run(["ip", "netns", "add", netns], check=True)
            try:
                found["npc apply --target nft"] = launcher.run(
                    [NPC, "apply", "--target", "nft", *inputs], netns
                )
            finally:
                subprocess.run(["ip", "netns", "delete", netns], check=True)
    return found


def measure(size: int, fmt: str, args: argparse.Namespace, launcher: Launcher) -> Run:
    directory = args.workdir / f"ns{size}-seed{args.seed}"
    if not (directory / "policies.yaml").exists():
        write_cluster(size, directory, args.seed)
    files = [directory / f"cluster.{fmt}", directory / f"policies.{fmt}"]
    run = Run(size, fmt, sum(f.stat().st_size for f in files))
    stage_runs, process_runs = [], []
    for _ in range(args.repeat):
        stages, run.output = _in_process(
            files, args.targets, (not args.no_reach, not args.no_verify), args.clock
        )
        stage_runs.append(stages)
        if not args.no_process:
            with tempfile.TemporaryDirectory() as out:
                process_runs.append(
                    _processes(launcher, files, args.targets, Path(out), not args.no_apply)
                )
    run.stages = _best(stage_runs)
    if process_runs:
        run.process = {
            k: (
                min(r[k][0] for r in process_runs),
                min(r[k][1] for r in process_runs),
                max(r[k][2] for r in process_runs),
            )
            for k in process_runs[0]
        }
    return run


# -- the table ------------------------------------------------------------------------------


_FRONT = ("load", "validate", "lower", "check", "passes")
_BACK = ("resolve", "plan", "render", "emit")
_AFTER = ("reach", "lint", "verify read", "verify check")


def _stage_order(stage: str) -> tuple[int, str, int]:
    """Pipeline order: the frontend, then each target's stages, then reach and verify."""
    if stage in _FRONT:
        return (0, "", _FRONT.index(stage))
    if stage in _AFTER:
        return (2, "", _AFTER.index(stage))
    target, _, step = stage.partition(" ")
    if step in _BACK:
        return (1, target, _BACK.index(step))
    return (3, stage, 0)


def _rows(runs: list[Run]) -> Iterator[str]:
    small, large = runs[0], runs[-1]
    floor = {r.size: r.stages["floor"] for r in runs}
    head = "".join(f"{f'{r.size:,} ns':>22}" for r in runs)
    yield f"{'':44}{head}{'growth':>10}"
    yield f"{'':44}{'     seconds  x floor' * len(runs)}"
    input_growth = large.input_bytes / small.input_bytes

    def line(label: str, values: list[float | None], ratio: bool = True) -> str:
        cells = "".join(
            f"{'-':>22}"
            if v is None
            else f"{v:12.3f}{v / floor[r.size]:9.2f}x"
            if ratio
            else f"{v:12.3f}{'':10}"
            for r, v in zip(runs, values, strict=True)
        )
        growth = ""
        if len(runs) > 1 and values[0] and values[-1]:
            growth = f"{values[-1] / values[0]:9.1f}x"
        return f"{label:44}{cells}{growth}"

    yield (
        f"{'input bytes':44}"
        + "".join(f"{r.input_bytes:>22,}" for r in runs)
        + (f"{input_growth:9.1f}x" if len(runs) > 1 else "")
    )
    order = sorted((s for s in runs[-1].stages if s != "floor"), key=_stage_order)
    yield line(
        f"floor ({'json.loads' if small.fmt == 'json' else 'yaml CSafeLoader'})",
        [r.stages["floor"] for r in runs],
    )
    for stage in order:
        yield line(f"  {stage}", [r.stages.get(stage) for r in runs])
    yield line(
        "  sum of stages", [sum(v for k, v in r.stages.items() if k != "floor") for r in runs]
    )
    for name in runs[-1].process:
        yield line(name, [r.process[name][0] if name in r.process else None for r in runs])
        yield line(
            "  its CPU seconds", [r.process[name][1] if name in r.process else None for r in runs]
        )
    for name in runs[-1].process:
        yield f"{'  peak RSS (MiB) ' + name[4:]:44}" + "".join(
            f"{r.process[name][2] / 1024:>12.0f}{'':10}" if name in r.process else f"{'-':>22}"
            for r in runs
        )
    for target in runs[-1].output:
        yield f"{'  output bytes --target ' + target:44}" + "".join(
            f"{r.output.get(target, 0):>22,}" for r in runs
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="100,1000", help="namespaces, comma-separated")
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--targets", default=",".join(available()))
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "npc-bench-scale"
    )
    parser.add_argument("--no-process", action="store_true", help="skip the npc subprocesses")
    parser.add_argument("--no-apply", action="store_true", help="skip npc apply")
    parser.add_argument("--no-reach", action="store_true", help="skip npc reach and npc lint")
    parser.add_argument("--no-verify", action="store_true", help="skip npc verify")
    parser.add_argument(
        "--cpu",
        action="store_true",
        help="time stages in CPU seconds (steadier on a shared machine) instead of wall",
    )
    args = parser.parse_args()
    args.clock = time.process_time if args.cpu else time.perf_counter
    args.targets = args.targets.split(",")
    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        f"npc {npc.__version__}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; "
        f"{NODES} nodes, 10 pods and 5 policies per namespace; best of {args.repeat}; "
        f"stages in {'CPU' if args.cpu else 'wall'} seconds"
    )
    launcher = Launcher()  # first, while this process is small
    try:
        for fmt in args.formats.split(","):
            runs = [measure(size, fmt, args, launcher) for size in sizes]
            print(f"\n== {fmt.upper()} input ==")
            for row in _rows(runs):
                print(row)
    finally:
        launcher.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS of this process: {peak:.0f} MiB")


if __name__ == "__main__":
    main()
