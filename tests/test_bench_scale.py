"""A smoke run of ``bench/scale.py`` (issue 13) on the small cluster: it runs and prints
its table. No figure is asserted: timings belong to the machine, not to npc."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_scale_bench_prints_its_table(tmp_path: Path) -> None:
    command = [sys.executable, str(ROOT / "bench" / "scale.py"), "--sizes", "100"]
    command += ["--targets", "nft,ir", "--no-apply", "--workdir", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for heading in ("== JSON input ==", "== YAML input =="):
        assert heading in out
    for row in (
        "floor (json.loads)",
        "floor (yaml CSafeLoader)",
        "  load ",
        "  validate ",
        "  lower ",
        "  passes ",
        "  nft resolve ",
        "  nft plan ",
        "  nft render ",
        "  ir render ",
        "  reach ",
        "  lint ",
        "  verify read ",
        "  verify check ",
        "npc compile --target nft ",
        "npc compile --target nft --node node000 ",
        "peak RSS (MiB) compile --target nft ",
        "output bytes --target ir ",
    ):
        assert row in out, f"missing row {row!r} in:\n{out}"
    # Two targets keep it short (the calico stages are timed the same way).
    # The generated cluster is what the issue describes, at 100 namespaces.
    assert (tmp_path / "ns100-seed13" / "cluster.json").is_file()


def test_reach_tiers_bench_runs_and_agrees_with_the_oracle() -> None:
    """A smoke run of ``bench/reach_tiers_bench.py`` on a tiny cluster: it prints both
    engines' figures, and the tiered engine agrees with the oracle on its sample."""
    command = [sys.executable, str(ROOT / "bench" / "reach_tiers_bench.py"), "--sizes", "5"]
    command += ["--repeat", "1", "--sample", "300", "--probes", "all"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "NetworkPolicy only" in done.stdout and "with tiers" in done.stdout
    assert "300 sampled triples, 0 disagreements" in done.stdout
