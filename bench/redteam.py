"""Differential test of two npc trees: random and mutated inputs, every command, both trees.

    .venv/bin/python bench/redteam.py OLD_TREE NEW_TREE --cases 500 --seed 1 [--hashseed 0]
        [--new-hashseed 1] [--big DIR]

Each tree runs bench/redteam_worker.py in its own venv (``TREE/.venv/bin/python``). Inputs
(bench/redteam_inputs.py) are the golden cases, random clusters with random policies, a
bench/clusters.py cluster with ``--big``, and up to three mutations of either. For each
input the same commands run on both trees (validate; compile for every target, with
--node and --no-optimize; reach; lint; explain; verify of a ruleset the new tree wrote, by
both trees' judges) and their exit status, stdout, stderr and output files must be equal
byte for byte; the alibaba JSON only after json.loads (its layout may differ), and it must
be valid JSON. A difference is written under ``--out`` (input files, argv and both
answers) and counted; the exit status is 1 when any was found. Everything derives from
``--seed``: a case replays from its number.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling redteam_inputs

import redteam_inputs as inputs

ROOT = Path(__file__).resolve().parent.parent
WORKER = ROOT / "bench" / "redteam_worker.py"


# --- running -------------------------------------------------------------------------------


class Worker:
    def __init__(self, tree: Path, hashseed: str) -> None:
        env = dict(os.environ, PYTHONHASHSEED=hashseed, NO_COLOR="1")
        self.proc = subprocess.Popen(
            [str(tree / ".venv" / "bin" / "python"), str(WORKER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=str(tree),
        )

    def run(self, cwd: str, argv: list[str], outputs: list[str]) -> dict[str, Any]:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps({"cwd": cwd, "argv": argv, "outputs": outputs}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("worker died")
        return dict(json.loads(line))

    def close(self) -> None:
        assert self.proc.stdin
        self.proc.stdin.close()
        self.proc.wait()


def commands(
    rng: random.Random, files: list[str], nodes: list[str], out: str
) -> list[tuple[str, list[str], list[str]]]:
    f: list[str] = []
    for name in files:
        f += ["-f", name]
    g = ["--color", "never"] + (["--diagnostics", "json"] if rng.random() < 0.2 else [])
    cmds = [("validate", [*g, "validate", *f], [])]
    for target in ("nft", "iptables", "calico", "ir"):
        extra = ["--no-optimize"] if rng.random() < 0.15 else []
        if rng.random() < 0.3:  # the options that change what a target writes
            extra += {
                "nft": ["--table", "t2"],
                "iptables": rng.choice((["--sets", "none"], ["--family", "6"], ["--family", "4"])),
                "calico": ["--calico-scope", "namespaced"],
                "ir": [],
            }[target]
        outputs = [out] + ([out + ".ipset"] if target == "iptables" else [])
        cmds.append((target, [*g, "compile", "--target", target, *extra, *f, "-o", out], outputs))
    cmds.append(
        (
            "alibaba",
            [*g, "compile", "--target", "alibaba", "--same-node", "trust", *f, "-o", out]
            + (["--no-optimize"] if rng.random() < 0.15 else []),
            [out],
        )
    )
    cmds.append(
        (
            "alibaba-cli",
            [
                *g,
                "compile",
                "--target",
                "alibaba",
                "--same-node",
                "trust",
                "--format",
                "aliyun-cli",
                *f,
                "-o",
                out,
            ],
            [out],
        )
    )
    if rng.random() < 0.3:
        cmds.append(
            (
                "alibaba-deny",
                [*g, "compile", "--target", "alibaba", "--unsupported", "deny", *f, "-o", out],
                [out],
            )
        )
    node = rng.choice([*nodes, "nosuchnode"]) if nodes else "node0"
    cmds.append(
        ("nft-node", [*g, "compile", "--target", "nft", "--node", node, *f, "-o", out], [out])
    )
    cmds.append(
        (
            "iptables-node",
            [*g, "compile", "--target", "iptables", "--node", node, *f, "-o", out],
            [out, out + ".ipset"],
        )
    )
    cmds.append(("reach", [*g, "reach", "-o", "json", *f], []))
    cmds.append(("lint", [*g, "lint", *f], []))
    if rng.random() < 0.5:
        cmds.append(("reach-summary", [*g, "reach", "-o", "summary", "--port", "80/TCP", *f], []))
        cmds.append(("lint-cni", [*g, "lint", "--cni", "calico", "-o", "json", *f], []))
        cmds.append(("explain", [*g, "explain", *f], []))
    if rng.random() < 0.5:
        # verify: the new tree writes the ruleset, both trees' judges read it
        for target, extra in (("nft", []), ("iptables", []), ("alibaba", ["--same-node", "trust"])):
            ruleset = f"{out}.{target}"
            cmds.append(
                (
                    f"setup-{target}",
                    [*g, "compile", "--target", target, *extra, *f, "-o", ruleset],
                    [],
                )
            )
            rulesets = ["--ruleset", ruleset] + (
                ["--ruleset", ruleset + ".ipset"] if target == "iptables" else []
            )
            cmds.append((f"verify-{target}", [*g, "verify", "--target", target, *rulesets, *f], []))
    return cmds


def same(name: str, a: dict[str, Any], b: dict[str, Any]) -> str | None:
    """None when equal, else what differs."""
    if name.startswith("alibaba") and not name.endswith("cli"):
        for path, text in a["files"].items():
            other = b["files"].get(path)
            if (text is None) != (other is None):
                return f"file {path} presence"
            if text is not None:
                try:
                    left, right = json.loads(text), json.loads(other)
                except ValueError as exc:
                    return f"invalid json: {exc}"
                if left != right:
                    return "alibaba json differs"
        for key in ("rc", "stdout", "stderr"):
            if a[key] != b[key]:
                return key
        return None
    for key in ("rc", "stdout", "stderr", "files"):
        if a[key] != b[key]:
            return key
    return None


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--hashseed", default="0")
    parser.add_argument(
        "--new-hashseed", help="PYTHONHASHSEED of the new tree (default: --hashseed)"
    )
    parser.add_argument("--out", type=Path, default=Path("/tmp/redteam-diffs"))
    parser.add_argument("--big", type=Path, help="a bench/clusters.py directory to mutate too")
    args = parser.parse_args()
    seeds = inputs.load_seeds()
    big: list[tuple[list[Any], list[Any]]] = []
    if args.big:
        pol_doc = json.loads((args.big / "policies.json").read_text())
        clu_doc = json.loads((args.big / "cluster.json").read_text())
        big.append((list(pol_doc["items"]), list(clu_doc["items"])))
    old = Worker(args.old, args.hashseed)
    new = Worker(args.new, args.new_hashseed or args.hashseed)
    counts: dict[str, int] = {}
    rcs: dict[str, int] = {}
    diffs = 0
    with tempfile.TemporaryDirectory(prefix="redteam-") as tmp:
        for case in range(args.cases):
            crng = random.Random(f"{args.seed}-{case}")
            if big and crng.random() < 0.5:
                pol, clu = copy.deepcopy(big[0])
            elif crng.random() < 0.4:
                pol, clu = copy.deepcopy(crng.choice(seeds))
                if not clu:
                    clu, _, _ = inputs.rand_cluster(crng)
            else:
                clu, nss, _ = inputs.rand_cluster(crng)
                pol = inputs.rand_policies(crng, nss)
            for _ in range(crng.choice((0, 0, 0, 0, 0, 1, 1, 2, 3))):
                inputs.mutate(crng, crng.choice((pol, pol, clu)))
            if crng.random() < 0.15:
                inputs.odd_names(crng, pol)
            nodes = sorted(
                {
                    d["spec"]["nodeName"]
                    for d in clu
                    if isinstance(d, dict)
                    and d.get("kind") == "Pod"
                    and isinstance(d.get("spec"), dict)
                    and isinstance(d["spec"].get("nodeName"), str)
                }
            )
            for stale in Path(tmp).glob("*"):
                if stale.is_file():
                    stale.unlink()
            texts: dict[str, str] = {}
            if crng.random() < 0.15 and len(pol) > 1:
                cut = crng.randrange(1, len(pol))
                for part, docs in (("a", pol[:cut]), ("b", pol[cut:])):
                    text, suffix = inputs.render(crng, docs, False)
                    texts[f"policies-{part}{suffix}"] = text
            else:
                text, suffix = inputs.render(crng, pol, False)
                texts[f"policies{suffix}"] = text
            ctext, csuf = inputs.render(crng, clu, True)
            texts[f"cluster{csuf}"] = ctext
            files = list(texts)
            if crng.random() < 0.05:
                files.append(files[0])  # the same file twice
            for name, text in texts.items():
                Path(tmp, name).write_text(text)
            out = os.path.join(tmp, "out")
            for name, argv, outputs in commands(crng, files, nodes, out):
                if name.startswith("setup-"):
                    new.run(tmp, argv, outputs)
                    continue
                a = old.run(tmp, argv, outputs)
                b = new.run(tmp, argv, outputs)
                counts[name] = counts.get(name, 0) + 1
                key = f"{name}:rc{a['rc']}"
                rcs[key] = rcs.get(key, 0) + 1
                what = same(name, a, b)
                if what:
                    diffs += 1
                    where = args.out / f"s{args.seed}-c{case}-{name}"
                    where.mkdir(parents=True, exist_ok=True)
                    for name2, text in texts.items():
                        Path(where, name2).write_text(text)
                    Path(where, "argv.json").write_text(json.dumps(argv))
                    Path(where, "old.json").write_text(json.dumps(a, indent=1))
                    Path(where, "new.json").write_text(json.dumps(b, indent=1))
                    print(f"DIFF case {case} {name}: {what} -> {where}", flush=True)
            if case % 50 == 0:
                print(f"case {case}", flush=True)
    old.close()
    new.close()
    print(json.dumps({"counts": counts, "exit": dict(sorted(rcs.items())), "diffs": diffs}))
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
