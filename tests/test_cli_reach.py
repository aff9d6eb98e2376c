"""``npc reach`` through the command line: formats, options, errors, determinism."""

from __future__ import annotations

import json
import os
import random
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from npc.cli import main
from tests.synth import cluster_yaml, policy_yaml, scaled_cluster, scaled_policies

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = str(ROOT / "examples" / "testing")
DEBUG = "default/debug"
DNS = "kube-system/coredns-5d78c9869d-7xk2p"
MYAPP = "testing/myapp-6d8d776547-5xz2q"
NGINX = "testing/nginx-7c5ddbdf54-2wlqs"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


TABLE = """\
53/TCP, 53/UDP, 9153/TCP  (rows: from, columns: to)
                                         1 2 3 4
1  default/debug                         = + - -
2  kube-system/coredns-5d78c9869d-7xk2p  + = + +
3  testing/myapp-6d8d776547-5xz2q        - + = -
4  testing/nginx-7c5ddbdf54-2wlqs        + + - =

80/TCP  (rows: from, columns: to)
                                         1 2 3 4
1  default/debug                         = + - +
2  kube-system/coredns-5d78c9869d-7xk2p  + = + +
3  testing/myapp-6d8d776547-5xz2q        - + = +
4  testing/nginx-7c5ddbdf54-2wlqs        + + + =

+ allowed   - denied   = the pod itself (always allowed)
"""


def test_table_probes_every_container_port(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "reach", "-f", EXAMPLE)
    assert (status, err) == (0, "")
    assert out == TABLE


def test_table_with_from_and_to(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(
        capsys, "reach", "-f", EXAMPLE, "--from", "testing/", "--to", "!run", "--port", "80"
    )
    assert status == 0
    assert out == (
        "to:\n"
        "  1  kube-system/coredns-5d78c9869d-7xk2p\n"
        "  2  testing/myapp-6d8d776547-5xz2q\n"
        "  3  testing/nginx-7c5ddbdf54-2wlqs\n"
        "\n"
        "80/TCP  (rows: from, columns: to)\n"
        "                                   1 2 3\n"
        "2  testing/myapp-6d8d776547-5xz2q  + = +\n"
        "3  testing/nginx-7c5ddbdf54-2wlqs  + + =\n"
        "\n"
        "+ allowed   - denied   = the pod itself (always allowed)\n"
    )


def test_json_is_exactly_the_documented_shape(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "reach", "-f", EXAMPLE, "-o", "json", "--port", "80/TCP")
    assert status == 0
    data = json.loads(out)
    pods = [DEBUG, DNS, MYAPP, NGINX]
    row = dict.fromkeys(pods, True)
    expected = {
        "pods": pods,
        "probes": [
            {
                "port": 80,
                "protocol": "TCP",
                "allowed": {
                    DEBUG: {**row, MYAPP: False},
                    DNS: row,
                    MYAPP: {**row, DEBUG: False},
                    NGINX: row,
                },
            }
        ],
    }
    assert data == expected
    # Byte for byte what json.dumps prints, keys in the documented order, rows sorted.
    assert out == json.dumps(expected) + "\n"


def test_json_probes_sorted_and_rows_restricted(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(
        capsys,
        "reach",
        "-f",
        EXAMPLE,
        "-o",
        "json",
        "--port",
        "53/UDP",
        "--port",
        "80",
        "--port",
        "53/udp",
        "--from",
        "app=myapp",
        "--to",
        "testing/",
    )
    assert status == 0
    data = json.loads(out)
    assert data["pods"] == [MYAPP, NGINX]
    assert [(p["port"], p["protocol"]) for p in data["probes"]] == [(53, "UDP"), (80, "TCP")]
    assert data["probes"][0]["allowed"] == {MYAPP: {MYAPP: True, NGINX: False}}
    assert data["probes"][1]["allowed"] == {MYAPP: {MYAPP: True, NGINX: True}}


def test_csv(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(
        capsys, "reach", "-f", EXAMPLE, "-o", "csv", "--port", "80", "--port", "53/UDP"
    )
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == "from,to,53/UDP,80/TCP"
    assert len(lines) == 1 + 16
    assert f"{DEBUG},{MYAPP},false,false" in lines
    assert f"{NGINX},{MYAPP},false,true" in lines
    assert f"{MYAPP},{MYAPP},true,true" in lines


def test_summary(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "reach", "-f", EXAMPLE, "-o", "summary", "--port", "80")
    assert status == 0
    assert out == (
        "4 pods (from) x 4 pods (to) in 4 classes: the pods of a class are treated alike by "
        "every policy\n"
        "probes: 80/TCP\n"
        "\n"
        "classes:\n"
        "  C1  1 pod  default/debug\n"
        "  C2  1 pod  kube-system/coredns-5d78c9869d-7xk2p\n"
        "  C3  1 pod  testing/myapp-6d8d776547-5xz2q\n"
        "  C4  1 pod  testing/nginx-7c5ddbdf54-2wlqs\n"
        "\n"
        "80/TCP: 14 of 16 pairs allowed (88%)\n"
        "  C1 C3 (2 pods) -> C2 C4  (2 pods each)\n"
        "  C2 C4 (2 pods) -> all  (3 pods each)\n"
        "\n"
        "C1 -> C2: every pod of C1 may connect to every pod of C2 (C1 -> C1: to the other pods "
        "of C1); (N pods each): how many destinations that is for one source, itself not "
        "counted. Use -o json or -o csv for every pair.\n"
    )


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> str:
    """120 pods in 12 namespaces of replicated Deployments."""
    rng = random.Random(4)
    snap = scaled_cluster(rng, namespaces=12, pods_per_namespace=10)
    policies = scaled_policies(rng, snap, count=40)
    folder = tmp_path_factory.mktemp("big")
    (folder / "cluster.yaml").write_text(cluster_yaml(snap), encoding="utf-8")
    (folder / "policies.yaml").write_text(policy_yaml(policies), encoding="utf-8")
    return str(folder)


def test_large_table_switches_to_the_summary(capsys: pytest.CaptureFixture[str], big: str) -> None:
    status, out, err = run(capsys, "reach", "-f", big, "--port", "8080")
    assert status == 0
    assert "is too large for a table" in err and "printing the class summary" in err
    assert out.startswith("120 pods (from) x 120 pods (to) in ")
    _, summary, _ = run(capsys, "reach", "-f", big, "--port", "8080", "-o", "summary")
    assert out == summary
    # Narrowed with --to, the table fits again.
    status, out, err = run(capsys, "reach", "-f", big, "--port", "8080", "--to", "ns0003/")
    assert (status, err) == (0, "")
    assert out.startswith("to:\n")


def test_summary_counts_agree_with_json(capsys: pytest.CaptureFixture[str], big: str) -> None:
    _, out, _ = run(capsys, "reach", "-f", big, "--port", "8080", "-o", "json")
    allowed = json.loads(out)["probes"][0]["allowed"]
    count = sum(v for row in allowed.values() for v in row.values())
    _, summary, _ = run(capsys, "reach", "-f", big, "--port", "8080", "-o", "summary")
    assert f"8080/TCP: {count:,} of 14,400 pairs allowed" in summary


def test_colour(capsys: pytest.CaptureFixture[str]) -> None:
    _, coloured, _ = run(capsys, "--color", "always", "reach", "-f", EXAMPLE, "--port", "80")
    assert "\x1b[32m+\x1b[0m" in coloured and "\x1b[31m-\x1b[0m" in coloured
    assert "\x1b[2m=\x1b[0m" in coloured
    _, plain, _ = run(capsys, "--color", "never", "reach", "-f", EXAMPLE, "--port", "80")
    assert "\x1b[" not in plain
    _, auto, _ = run(capsys, "reach", "-f", EXAMPLE, "--port", "80")  # not a terminal
    assert auto == plain


@pytest.mark.parametrize(
    ("option", "value", "column"),
    [
        ("--from", "testing/app=,", 14),
        ("--to", "app in (a,b", 12),
        ("--from", "app==web,=x", 10),
    ],
)
def test_selector_syntax_errors_are_usage_errors_with_the_column(
    capsys: pytest.CaptureFixture[str], option: str, value: str, column: int
) -> None:
    status, out, err = run(capsys, "reach", "-f", EXAMPLE, option, value)
    assert status == 2
    assert out == ""
    assert any(
        option in e and f"invalid selector at column {column}:" in e for e in err.splitlines()
    )
    lines = err.splitlines()
    i = lines.index(f"  {value}")
    assert lines[i + 1] == "  " + " " * (column - 1) + "^"
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("port", "message"),
    [
        ("http", '"http" is not PORT[/PROTOCOL]'),
        ("80/ICMP", 'unknown protocol "ICMP"'),
        ("0", "port 0 is not between 1 and 65535"),
    ],
)
def test_bad_port(capsys: pytest.CaptureFixture[str], port: str, message: str) -> None:
    status, out, err = run(capsys, "reach", "-f", EXAMPLE, "--port", port)
    assert (status, out) == (2, "")
    assert any("--port" in e and message in e for e in err.splitlines())


def test_without_a_snapshot(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "reach", "-f", str(Path(EXAMPLE) / "policies.yaml"))
    assert (status, out) == (2, "")
    assert err == (
        "npc: error: npc reach needs a cluster snapshot (Namespace and Pod objects), but the "
        "input has none\n"
        "  hint: add one: `kubectl get ns,pods -A -o yaml > cluster.yaml`, then `-f cluster.yaml`\n"
    )


def test_snapshot_without_container_ports_needs_port(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "c.yaml").write_text(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n"
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: a}\nstatus: {podIP: 10.0.0.1}\n",
        encoding="utf-8",
    )
    status, out, err = run(capsys, "reach", "-f", str(tmp_path))
    assert (status, out) == (2, "")
    assert "the snapshot declares no containerPort to probe; give ports with --port 80/TCP" in err
    status, out, _ = run(capsys, "reach", "-f", str(tmp_path), "--port", "80", "-o", "json")
    assert status == 0
    assert json.loads(out)["probes"][0]["allowed"] == {"a/p": {"a/p": True}}


def test_selection_matching_nothing_warns(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(
        capsys, "reach", "-f", EXAMPLE, "--from", "app=nope", "--port", "80", "-o", "json"
    )
    assert status == 0
    assert err == "npc: warning: --from 'app=nope': no pod\n"
    assert json.loads(out)["probes"][0]["allowed"] == {}


def test_invalid_input_reports_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "p.yaml").write_text(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
        "metadata: {name: x, namespace: a}\nspec: {podSelecter: {}}\n",
        encoding="utf-8",
    )
    status, out, err = run(capsys, "reach", "-f", str(tmp_path), "-f", EXAMPLE)
    assert (status, out) == (2, "")
    assert "p.yaml:4:8: error: spec.podSelecter: unknown field" in err
    assert "Traceback" not in err


def test_output_is_identical_across_hash_seeds(big: str) -> None:
    outputs = set()
    for seed in ("0", "1"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        result = subprocess.run(
            [sys.executable, "-m", "npc", "reach", "-f", big, "-o", "summary"],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        json_result = subprocess.run(
            [sys.executable, "-m", "npc", "reach", "-f", big, "--port", "8080", "-o", "json"],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        outputs.add(result.stdout + json_result.stdout)
    assert len(outputs) == 1


def test_readme_examples_are_current(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README shows real output of `npc reach` and `npc explain` on the bundled example."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("On the bundled example", 1)[1]
    block = section.split("```text\n", 1)[1].split("```", 1)[0]
    sessions = [s for s in block.split("$ npc ") if s.strip()]
    assert len(sessions) == 3
    monkeypatch.chdir(ROOT)
    for session in sessions:
        command, _, expected = session.partition("\n")
        status = main(shlex.split(command))
        out, _ = capsys.readouterr()
        assert status == 0
        assert out.rstrip("\n") == expected.rstrip("\n"), command
