"""``npc compile --target alibaba`` through the command line: formats, settings, refusals
(SCTP, quotas, bad settings) with exit 2 and no output file, and the ``aliyun-cli`` script
run against stand-ins for ``aliyun`` and ``kubectl``."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

import npc
from npc.cli import main

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "golden"
SCTP = GOLDEN / "dualstack-named-ports"
APP = GOLDEN / "seed003-my-app-ns"


def _files(case: Path) -> tuple[str, ...]:
    return ("-f", str(case / "input.yaml"), "-f", str(case / "cluster.yaml"))


#: The APP and SCTP clusters put isolated pods on shared nodes: ECS does not filter that
#: traffic, so these tests leave it to another enforcer (the default refuses).
TRUST = ("--same-node", "trust")


def _run(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(["--color", "never", *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_json_is_the_default(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _run("compile", "-t", "alibaba", *_files(APP), *TRUST, capsys=capsys)
    assert status == 0
    data = json.loads(out)
    assert data["regionId"] == "cn-hangzhou"
    status, out, _ = _run(
        "compile", "-t", "alibaba", *_files(APP), *TRUST, "--region", "cn-shanghai", capsys=capsys
    )
    assert status == 0 and json.loads(out)["regionId"] == "cn-shanghai"
    assert out.endswith("}\n")


def test_sctp_is_refused_naming_policy_field_and_target(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out_file = tmp_path / "out.json"
    status, out, err = _run(
        "compile", "-t", "alibaba", *_files(SCTP), "-o", str(out_file), capsys=capsys
    )
    assert status == 2 and out == "" and not out_file.exists()
    assert "input.yaml:82:9: error: spec.ingress[1].ports: NetworkPolicy shop/db" in err
    assert "target alibaba cannot express SCTP" in err and "--unsupported=deny" in err


def test_unsupported_deny_drops_only_sctp_and_warns(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = _run(
        "compile", "-t", "alibaba", *_files(SCTP), *TRUST, "--unsupported", "deny", capsys=capsys
    )
    assert status == 0
    assert "input.yaml:82:9: warning: spec.ingress[1].ports: NetworkPolicy shop/db" in err
    protocols = {
        p["IpProtocol"]
        for g in json.loads(out)["securityGroups"]
        for d in ("ingress", "egress")
        for p in g[d]
    }
    assert protocols <= {"TCP", "UDP", "ALL"} and "TCP" in protocols


@pytest.mark.parametrize(
    ("args", "word"),
    [
        (("--format", "yaml"), "--format"),
        (("--unsupported", "allow"), "--unsupported"),
        (("--region", "Hangzhou!"), "--region"),
    ],
)
def test_bad_settings_are_usage_errors(
    args: tuple[str, str], word: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = _run("compile", "-t", "alibaba", *_files(APP), *args, capsys=capsys)
    assert status == 2 and out == ""
    assert word in err


def test_settings_of_this_target_are_refused_elsewhere(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = _run(
        "compile", "-t", "nft", *_files(APP), "--region", "cn-beijing", capsys=capsys
    )
    assert status == 2 and "--region does not apply to target nft" in err


def test_a_snapshot_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = _run(
        "compile", "-t", "alibaba", "-f", str(APP / "input.yaml"), capsys=capsys
    )
    assert status == 2 and out == "" and "snapshot" in err


def _big_cluster(pods: int) -> str:
    items = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "big"}}]
    for i in range(pods):
        items.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": f"p{i}", "namespace": "big", "labels": {"app": "x"}},
                "spec": {"containers": [{"name": "c", "image": "i"}], "nodeName": f"n{i}"},
                "status": {"phase": "Running", "podIP": f"10.{i // 250}.{i % 250}.{7 + i % 2}"},
            }
        )
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items})


POLICY = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-app, namespace: big}
spec:
  podSelector: {}
  ingress:
  - from:
    - podSelector: {matchLabels: {app: x}}
    ports: [{port: 80}, {port: 443}]
"""


def test_rules_over_a_group_fill_more_groups_and_too_many_are_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "p.yaml").write_text(POLICY, encoding="utf-8")
    files = ("-f", str(tmp_path / "p.yaml"), "-f", str(tmp_path / "c.json"))
    (tmp_path / "c.json").write_text(_big_cluster(120), encoding="utf-8")
    status, out, _ = _run("compile", "-t", "alibaba", *files, capsys=capsys)
    assert status == 0
    data = json.loads(out)
    sizes = {g["name"]: len(g["ingress"]) for g in data["securityGroups"]}
    (networking,) = data["podNetworkings"]
    first, second, egress = networking["spec"]["securityGroupIDs"]
    assert second == f"{first}-2" and (sizes[first], sizes[second]) == (200, 40)
    assert egress == "npc-egress-open"
    (tmp_path / "c.json").write_text(_big_cluster(401), encoding="utf-8")
    status, out, err = _run("compile", "-t", "alibaba", *files, capsys=capsys)
    assert status == 2 and out == ""
    assert "p.yaml:2:1: error: pod big/p0 and 400 more: an ENI would join 6 security groups" in err
    assert "with 803 rules" in err and "ECS allows 5 groups and 1000 rules per ENI" in err
    assert err.count("error:") == 1


STUBS = {
    "aliyun": """#!/bin/sh
echo "aliyun $*" >> "$NPC_LOG"
case "$2" in
CreateSecurityGroup)
  n=$(grep -c CreateSecurityGroup "$NPC_LOG"); echo "{\\"SecurityGroupId\\": \\"sg-$n\\"}";;
*) echo '{}';;
esac
""",
    "kubectl": """#!/bin/sh
echo "kubectl $*" >> "$NPC_LOG"
if [ "$1" = apply ]; then cat > "$NPC_APPLIED"; fi
""",
}


def test_the_aliyun_cli_script_runs_and_applies_the_ids(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    status, script, _ = _run(
        "compile", "-t", "alibaba", *_files(APP), *TRUST, "--format", "aliyun-cli", capsys=capsys
    )
    assert status == 0 and script.startswith("#!/bin/sh\n")
    data = json.loads(
        npc.compile(
            [
                npc.Source(n, (APP / n).read_text(encoding="utf-8"))
                for n in ("input.yaml", "cluster.yaml")
            ],
            "alibaba",
            {"same_node": "trust"},
        ).text
    )
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in STUBS.items():
        (bin_dir / name).write_text(body, encoding="utf-8")
        (bin_dir / name).chmod(0o755)
    (tmp_path / "run.sh").write_text(script, encoding="utf-8")
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "VPC_ID": "vpc-test",
        "NPC_LOG": str(tmp_path / "log"),
        "NPC_APPLIED": str(tmp_path / "applied.json"),
    }
    subprocess.run(["sh", str(tmp_path / "run.sh")], env=env, check=True, timeout=60)
    log = (tmp_path / "log").read_text(encoding="utf-8").splitlines()
    creates = [line for line in log if " CreateSecurityGroup " in line]
    assert len(creates) == len(data["securityGroups"])
    assert all(
        "--VpcId vpc-test" in line and "--SecurityGroupType enterprise" in line for line in creates
    )
    rules = sum(len(g["ingress"]) + len(g["egress"]) for g in data["securityGroups"])
    assert sum(line.count("--Permissions.") for line in log) == rules * 6
    applied = json.loads((tmp_path / "applied.json").read_text(encoding="utf-8"))
    ids = {f"sg-{i}" for i in range(1, len(creates) + 1)}
    names = [g["name"] for g in data["securityGroups"]]
    for got, want in zip(applied["items"], data["podNetworkings"], strict=True):
        expected = [f"sg-{names.index(n) + 1}" for n in want["spec"]["securityGroupIDs"]]
        assert got["spec"]["securityGroupIDs"] == expected
        assert set(expected) <= ids
        assert got["spec"]["selector"] == want["spec"]["selector"]


def test_without_a_vpc_the_script_stops_first(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _, script, _ = _run(
        "compile", "-t", "alibaba", *_files(APP), *TRUST, "--format", "aliyun-cli", capsys=capsys
    )
    (tmp_path / "run.sh").write_text(script, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "VPC_ID"}
    env["PATH"] = "/nonexistent"  # nothing may run before the check
    result = subprocess.run(
        ["/bin/sh", str(tmp_path / "run.sh")], env=env, capture_output=True, timeout=60, check=False
    )
    assert result.returncode != 0 and b"VPC_ID" in result.stderr


def test_selectors_on_the_label_npc_sets_are_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """npc attaches pods by setting ``npc/security-groups``; a selector on that key would
    select other pods once the label commands ran than the groups were planned for. Here
    ``front-web`` makes npc label back and db (``NOT (app=web AND tier=front)`` is no label
    selector) and ``labelled`` selects the labelled pods: it would isolate them while their
    groups, planned before, stay open."""
    case = ROOT / "tests" / "data" / "alibaba-own-label"
    policies, cluster = case / "policies.yaml", case / "cluster.yaml"
    out_file = tmp_path / "out.json"
    args = ("compile", "-t", "alibaba", "-f", str(policies), "-f", str(cluster))
    status, out, err = _run(*args, "-o", str(out_file), capsys=capsys)
    assert status == 2 and out == "" and not out_file.exists()
    assert "policies.yaml:13:16: error: spec.podSelector: NetworkPolicy shop/labelled" in err
    assert "spec.ingress[0].from[0].podSelector: NetworkPolicy shop/from-unlabelled" in err
    assert err.count("npc/security-groups") >= 2


def test_isolated_pods_on_a_shared_node_are_refused_unless_trusted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Fail closed: ECS does not filter traffic between pods of one node, so by default the
    target refuses (exit 2, file:line:col naming the policy, no output file); with
    ``--same-node trust`` it emits and warns."""
    out_file = tmp_path / "groups.json"
    status, out, err = _run(
        "compile", "-t", "alibaba", *_files(APP), "-o", str(out_file), capsys=capsys
    )
    assert status == 2 and out == "" and not out_file.exists()
    line = next(x for x in err.splitlines() if ": error: " in x)
    assert re.match(r"^.+\.yaml:\d+:\d+: error: spec\.podSelector: target alibaba: ", line)
    assert "share node" in line and "--same-node=trust" in err
    status, out, err = _run(
        "compile", "-t", "alibaba", *_files(APP), *TRUST, "-o", str(out_file), capsys=capsys
    )
    assert status == 0 and out_file.exists() and "warning:" in err and "another enforcer" in err
