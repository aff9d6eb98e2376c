"""Every output is byte-identical across runs and ``PYTHONHASHSEED``s.

One process per hash seed runs every command on the same input (a random dual-stack cluster
with hostNetwork pods and random policies): every registered target, optimized and not, with
every value of every target setting that has a fixed set of choices (and ``--node``); ``reach``
in every format (``svg`` when Graphviz is installed); ``report`` as JSON and HTML (also with
every judged target and a change, ``--targets`` and ``--against``); ``explain``
of policies and of a flow, as text and JSON; ``validate`` with
text and JSON diagnostics. Stdout, stderr and exit status must agree across the processes.
The list of targets comes from the registry, so a new target is covered without touching
this file.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from npc.targets import REGISTRY, TARGET_SETTINGS, available, get_backend
from tests.synth import cluster_yaml, policy_yaml, random_cluster, random_policies

SEEDS = ("0", "1", "4242")
#: Values to try for settings without fixed choices.
SETTING_VALUES = {"node": ("node0",)}
DOT = shutil.which("dot") is not None

#: Runs each command of argv[1] (a JSON list of argument lists) through the CLI in this
#: process; prints [status, stdout, stderr] per command as JSON.
RUNNER = """
import contextlib, io, json, sys
from npc.cli import main
results = []
for argv in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(argv)
    results.append([status, out.getvalue(), err.getvalue()])
print(json.dumps(results))
"""


def _compile_commands(files: list[str]) -> list[list[str]]:
    commands = []
    for target in available():
        commands.append(["compile", "-t", target, *files])
        commands.append(["compile", "-t", target, "--no-optimize", *files])
        taken = {f.name for f in dataclasses.fields(get_backend(target).options_type)}
        for setting in TARGET_SETTINGS:
            if setting.name in taken:
                for value in setting.choices or SETTING_VALUES.get(setting.name, ()):
                    commands.append(["compile", "-t", target, setting.flag, value, *files])
        # Every choice at its last, most permissive value at once (alibaba needs both
        # --unsupported deny and --same-node trust for the random clusters).
        last = [
            arg
            for s in TARGET_SETTINGS
            if s.name in taken and s.choices
            for arg in (s.flag, s.choices[-1])
        ]
        if len(last) > 2:
            commands.append(["compile", "-t", target, *last, *files])
    return commands


def _report_extra(files: list[str]) -> list[str]:
    judged = ",".join(sorted(t.name for t in REGISTRY.values() if t.reader))
    return ["--targets", judged, "--against", str(Path(files[1]).with_name("before.yaml"))]


def _commands(files: list[str]) -> list[list[str]]:
    flow = ["--from", "ns0/pod0", "--to", "ns1/pod4", "--port", "80/TCP"]
    return [
        ["validate", *files],
        ["--diagnostics", "json", "validate", *files],
        *_compile_commands(files),
        *(["reach", *files, "-o", fmt] for fmt in ("table", "json", "csv", "summary")),
        ["reach", *files, "--port", "8080", "--from", "ns0/", "-o", "json"],
        ["reach", *files, "-o", "dot"],
        ["report", *files, "-o", "-", "--format", "json"],
        # Every judged target's verdict, and the change from a second random policy set.
        ["report", *files, *_report_extra(files), "-o", "-", "--format", "json"],
        # Drawn by Graphviz, when installed (.ci/run installs it).
        *([["reach", *files, "-o", "svg"], ["report", *files, "-o", "-"]] if DOT else []),
        *([["report", *files, *_report_extra(files), "-o", "-"]] if DOT else []),
        ["explain", *files],
        ["explain", *files, "-o", "json"],
        ["explain", *files, *flow],
        ["explain", *files, *flow, "-o", "json"],
    ]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    rng = random.Random(11)
    snapshot = random_cluster(rng, namespaces=3, pods=12, ipv6=True, host_network=True)
    policies = random_policies(rng, snapshot, count=10, ipv6=True)
    folder = tmp_path_factory.mktemp("determinism")
    (folder / "policies.yaml").write_text(policy_yaml(policies), encoding="utf-8")
    (folder / "cluster.yaml").write_text(cluster_yaml(snapshot), encoding="utf-8")
    before = random_policies(rng, snapshot, count=6, ipv6=True)  # for report --against
    (folder / "before.yaml").write_text(policy_yaml(before), encoding="utf-8")
    return ["-f", str(folder / "policies.yaml"), "-f", str(folder / "cluster.yaml")]


def _run_all(commands: list[list[str]], hash_seed: str) -> list[list[object]]:
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, json.dumps(commands)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONHASHSEED": hash_seed, "NO_COLOR": "1"},
        check=True,
        timeout=300,
    )
    results: list[list[object]] = json.loads(done.stdout)
    return results


def test_every_output_is_identical_across_hash_seeds(files: list[str]) -> None:
    commands = _commands(files)
    assert {c[2] for c in commands if c[0] == "compile"} == set(REGISTRY)
    runs = [_run_all(commands, seed) for seed in SEEDS]
    succeeded: set[str] = set()
    for command, first in zip(commands, runs[0], strict=True):
        # Not vacuous: every command prints something; a refusal (a target that cannot
        # express the random policies without a setting, exit 2) prints its diagnostics.
        status, out, err = first
        assert (status == 0 and out) or (status == 2 and err and not out), (command, first)
        if status == 0 and command[0] == "compile":
            succeeded.add(str(command[2]))
    assert succeeded == set(REGISTRY), "every target compiles with some setting"
    for seed, results in zip(SEEDS[1:], runs[1:], strict=True):
        for command, first, other in zip(commands, runs[0], results, strict=True):
            assert other == first, f"`npc {' '.join(command)}` differs with PYTHONHASHSEED={seed}"
