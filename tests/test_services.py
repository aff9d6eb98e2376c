"""Services and Nodes in the snapshot, and a client outside the cluster reaching pods through a
NodePort or LoadBalancer Service (seed 004, end to end)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import netaddr
import pytest

import npc
from npc import tiers
from npc.analysis.services import reach_service
from npc.cli import main
from npc.snapshot import CALICO_IPIP_TUNNEL

SEED004 = Path(__file__).resolve().parent / "data" / "seed004"
SVC = "svc/tekton-pipelines/tekton-dashboard"


def _inputs(tmp_path: Path, etp: str = "Cluster", cni_hint: str = "") -> list[str]:
    cluster = (SEED004 / "cluster.yaml").read_text(encoding="utf-8")
    cluster = cluster.replace("externalTrafficPolicy: Cluster", f"externalTrafficPolicy: {etp}")
    path = tmp_path / f"cluster-{etp}{cni_hint}.yaml"
    path.write_text(cluster, encoding="utf-8")
    return ["-f", str(SEED004 / "policies.yaml"), "-f", str(path)]


def test_services_and_nodes_are_read_into_the_snapshot() -> None:
    bundle = npc.load(npc.read_sources([str(SEED004)]))
    assert bundle.snapshot is not None
    (service,) = bundle.snapshot.services
    assert (service.type, service.external_traffic_policy) == ("NodePort", "Cluster")
    (port,) = service.ports
    assert (port.port, port.target_port, port.node_port) == (9097, "http", 31602)
    (pod,) = service.endpoints(bundle.snapshot)
    assert service.target_port(port, pod) == 9097
    node1 = bundle.snapshot.nodes[0]
    assert node1.annotations == {CALICO_IPIP_TUNNEL: "10.233.90.0"}
    assert node1.address("InternalIP") == netaddr.IPAddress("10.102.123.117")


def test_seed004_cluster_denies_the_load_balancer_local_allows_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["reach", *_inputs(tmp_path), "--from", "10.2.3.4", "--to", SVC, "-o", "json"]) == 0
    (answer,) = json.loads(capsys.readouterr().out)["services"]
    assert answer["allowed"] is False and answer["externalTrafficPolicy"] == "Cluster"
    seen = {p["node"]: (p["source"], p["allowed"]) for p in answer["paths"]}
    assert seen == {
        "node1": ("10.233.90.0", False),  # tunl0 of node1, forwarding to node2
        "node2": ("10.102.123.104", True),  # node2's own address: the pod's node is admitted
        "node3": ("10.233.92.0", False),
    }
    local = _inputs(tmp_path, "Local")
    assert main(["reach", *local, "--from", "10.2.3.4", "--to", f"{SVC}:9097", "-o", "json"]) == 0
    (answer,) = json.loads(capsys.readouterr().out)["services"]
    assert answer["allowed"] is True
    assert [(p["node"], p["source"]) for p in answer["paths"]] == [("node2", "10.2.3.4")]


def test_reach_text_says_which_address_the_policy_saw(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["reach", *_inputs(tmp_path), "--from", "10.2.3.4", "--to", SVC]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == (
        "10.2.3.4 -> svc/tekton-pipelines/tekton-dashboard 9097/TCP (nodePort 31602): "
        "DENIED through 2 of 3 paths"
    )
    assert "the policy sees 10.233.90.0: source NAT to node1's Calico IPIP tunnel address" in out


def test_cni_chooses_the_node_address(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With --cni cilium (a routed pod network), node1 forwards from its InternalIP."""
    args = ["reach", *_inputs(tmp_path), "--from", "10.2.3.4", "--to", SVC, "--cni", "cilium"]
    assert main([*args, "-o", "json"]) == 0
    (answer,) = json.loads(capsys.readouterr().out)["services"]
    assert answer["paths"][0]["source"] == "10.102.123.117"
    assert answer["nodeAddresses"] == "internal"


def test_explain_through_a_service_shows_each_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["explain", *_inputs(tmp_path), "--from", "10.2.3.4", "--to", SVC]) == 0
    out = capsys.readouterr().out
    assert (
        "    10.233.90.0 -> tekton-pipelines/tekton-dashboard-75c65d785b-xbgk6 on 9097/TCP: DENIED"
        in out
    )
    assert "from[0] 10.233.90.0 is not in 10.2.3.4/32" in out
    args = ["explain", *_inputs(tmp_path, "Local"), "--from", "10.2.3.4", "--to", SVC]
    assert main([*args, "--port", "9097", "-o", "json"]) == 0
    (answer,) = json.loads(capsys.readouterr().out)["services"]
    assert answer["allowed"] is True and answer["paths"][0]["source"] == "10.2.3.4"


def test_service_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["reach", *_inputs(tmp_path)]
    assert main([*base, "--from", "tekton-pipelines/", "--to", SVC]) == 2
    assert main([*base, "--from", "10.2.3.4", "--to", "svc/tekton-pipelines/nope"]) == 2
    assert main([*base, "--from", "10.2.3.4", "--to", f"{SVC}:80"]) == 2
    err = capsys.readouterr().err
    assert "no Service 'tekton-pipelines/nope'" in err and "has no port 80" in err


def test_readme_example_is_current(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README shows real output of `npc reach` through seed 004's Service."""
    root = SEED004.parent.parent.parent
    readme = (root / "README.md").read_text(encoding="utf-8")
    section = readme.split("Seed 004, with `tests/data/seed004/`:", 1)[1]
    block = section.split("```text\n", 1)[1].split("```", 1)[0]
    command, _, expected = block.removeprefix("$ npc ").partition("\n")
    monkeypatch.chdir(root)
    assert main(shlex.split(command)) == 0
    assert capsys.readouterr().out == expected


def test_without_node_objects_the_address_is_unknown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Pods name their nodes, but without Node objects npc cannot say which address a node
    forwards from: the answer says so; lint still reports the ipBlock (some node address
    replaces the client's, whichever it is)."""
    cluster = (SEED004 / "cluster.yaml").read_text(encoding="utf-8")
    items = cluster.split("\n- ")
    kept = [i for i in items if not i.startswith("apiVersion: v1\n  kind: Node")]
    path = tmp_path / "cluster.yaml"
    path.write_text("\n- ".join(kept), encoding="utf-8")
    args = ["-f", str(SEED004 / "policies.yaml"), "-f", str(path)]
    assert main(["reach", *args, "--from", "10.2.3.4", "--to", SVC]) == 0
    out = capsys.readouterr().out
    assert "UNKNOWN on 1 of 2 paths" in out and "add the Node objects" in out
    assert main(["lint", *args, "-o", "json"]) == 1
    (finding,) = json.loads(capsys.readouterr().out)["findings"]
    assert finding["code"] == "W607"


ADMIN_ACCEPT_PODS = """\
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: pods-talk}
spec:
  tier: Admin
  priority: 5
  subject: {namespaces: {}}
  ingress:
  - action: Accept
    from: [{namespaces: {}}]
"""


def test_service_paths_are_decided_with_the_tiers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The tiers are consulted on every path: an Admin rule for pods does not match a client
    outside the cluster (ingress peers are pods), so NetworkPolicy still decides; a rule with
    a peer npc does not know fails closed and denies it."""
    cnp = tmp_path / "cnp.yaml"
    cnp.write_text(ADMIN_ACCEPT_PODS, encoding="utf-8")
    args = ["explain", *_inputs(tmp_path, "Local"), "-f", str(cnp), "--from", "10.2.3.4"]
    assert main([*args, "--to", SVC]) == 0
    out = capsys.readouterr().out
    assert "ALLOWED through every path (1)" in out
    assert "no ClusterNetworkPolicy rule matches it" in out
    bundle = npc.load(npc.read_sources(_inputs(tmp_path, "Local")[1::2]))
    assert bundle.snapshot is not None
    (service,) = bundle.snapshot.services
    unknown = tiers.ClusterPolicySet(
        (
            tiers.ClusterPolicy(
                "fail-closed",
                tiers.Tier.ADMIN,
                1,
                tiers.Subject(),
                ingress=(tiers.ClusterRule(tiers.Action.DENY, (tiers.UnknownPeer(),)),),
            ),
        )
    )
    client = netaddr.IPAddress("10.2.3.4")
    port = service.ports[0]
    assert reach_service(bundle.policies, bundle.snapshot, client, service, port).allowed
    denied = reach_service(
        bundle.policies, bundle.snapshot, client, service, port, cluster_policies=unknown
    )
    assert not denied.allowed
    assert "the Admin tier denies it" in denied.text(detail=True)
