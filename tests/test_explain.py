"""``npc explain``: plain-language statements per policy, and verdicts with their reasons."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

import npc
from npc import ir
from npc.analysis.explain import explain_flow, explain_policy
from npc.analysis.semantics import Semantics
from npc.cli import main
from npc.flows import Probe
from tests.kube import bundle, namespace, pod
from tests.synth import random_cluster, random_policies

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = str(ROOT / "examples" / "testing")
SEED001 = str(ROOT / "golden" / "seed001-test-network-policy" / "input.yaml")
MYAPP = "testing/myapp-6d8d776547-5xz2q"
NGINX = "testing/nginx-7c5ddbdf54-2wlqs"
NP = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_seed001_statements(capsys: pytest.CaptureFixture[str]) -> None:
    """The five statements the seed article makes about its example, in its order."""
    status, out, _ = run(capsys, "explain", "-f", SEED001)
    assert status == 0
    assert out == (
        f"default/test-network-policy  ({SEED001}:3:1)\n"
        "1. The pods in namespace default matching `role=db` are isolated for ingress and "
        "egress: they accept and open only the connections statements 2-5 allow, or that other "
        "policies selecting them allow.\n"
        "2. Every address in 172.17.0.0/16 except 172.17.1.0/24 (pod addresses included) may "
        "connect to them on TCP port 6379.\n"
        "3. Every pod in namespaces matching `project=myproject` may connect to them on TCP "
        "port 6379.\n"
        "4. Pods in namespace default matching `role=frontend` may connect to them on TCP port "
        "6379.\n"
        "5. They may connect to every address in 10.0.0.0/24 (pod addresses included) on TCP "
        "port 5978.\n"
    )


def test_statements_with_a_snapshot_name_the_pods(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "explain", "-f", EXAMPLE, "testing/myapp-policy")
    assert status == 0
    policies = f"{EXAMPLE}/policies.yaml"
    assert out == (
        f"testing/myapp-policy  ({policies}:17:1)\n"
        "1. The pods in namespace testing matching `app=myapp` are isolated for ingress and "
        "egress: they accept and open only the connections statements 2-5 allow, or that other "
        f"policies selecting them allow. In the snapshot: 1 pod: {MYAPP}.\n"
        "2. Pods in namespace testing matching `app=nginx` (in the snapshot, 1 pod: "
        f"{NGINX}) may connect to them on TCP port 80.\n"
        "3. Every pod in namespaces matching `ns=kube-system` (in the snapshot, 1 pod: "
        "kube-system/coredns-5d78c9869d-7xk2p) may connect to them on every port and protocol.\n"
        "4. They may connect to pods in namespace testing matching `app=nginx` (in the "
        f"snapshot, 1 pod: {NGINX}) on every port and protocol.\n"
        "5. They may connect to every pod in namespaces matching `ns=kube-system` (in the "
        "snapshot, 1 pod: kube-system/coredns-5d78c9869d-7xk2p) on every port and protocol.\n"
    )


def _statements(policy_yaml: str, *objects: dict[str, object]) -> list[str]:
    b = bundle(policy_yaml, *objects)
    (policy,) = b.policies
    return [s.text for s in explain_policy(policy, b.snapshot, b.locate).statements]


def test_default_deny_and_one_direction() -> None:
    deny = _statements(NP + "metadata: {name: d, namespace: a}\nspec: {podSelector: {}}")
    assert deny == [
        "All pods in namespace a are isolated for ingress, and this policy allows nothing: "
        "every connection to them is denied unless another policy selecting them allows it. "
        "This policy does not restrict their egress."
    ]
    egress = _statements(
        NP + "metadata: {name: e, namespace: a}\n"
        "spec: {podSelector: {matchLabels: {app: web}}, policyTypes: [Ingress, Egress], "
        "egress: [{ports: [{port: 53, protocol: UDP}]}]}"
    )
    assert egress == [
        "The pods in namespace a matching `app=web` are isolated for ingress and egress: they "
        "accept and open only the connections statement 2 allows, or that other policies "
        "selecting them allow. No ingress connection is allowed by this policy.",
        "They may connect to any destination (every pod and address) on UDP port 53.",
    ]


def test_ports_in_words() -> None:
    texts = _statements(
        NP + "metadata: {name: p, namespace: a}\n"
        "spec:\n"
        "  podSelector: {matchExpressions: [{key: tier, operator: In, values: [b, a]}]}\n"
        "  ingress:\n"
        "  - from: [{namespaceSelector: {}, podSelector: {matchLabels: {app: api}}}]\n"
        "    ports: [{port: 8000, endPort: 8080}, {port: 443}, {protocol: UDP}, "
        "{port: 3868, protocol: SCTP}]\n"
        "  - from: [{namespaceSelector: {}}]\n"
        "    ports: [{port: http}, {port: metrics}]\n"
        "  egress:\n"
        "  - to: [{podSelector: {}}]\n"
        "    ports: [{port: dns, protocol: UDP}]\n"
    )
    assert texts[1:] == [
        "Pods in every namespace matching `app=api` may connect to them on SCTP port 3868, "
        "TCP ports 443 and 8000-8080 and every UDP port.",
        "Every pod in every namespace may connect to them on the TCP ports named `http` and "
        "`metrics` on the pod.",
        "They may connect to every pod in namespace a on the UDP port named `dns` on the "
        "destination pod.",
    ]
    assert texts[0].startswith("The pods in namespace a matching `tier in (a,b)` are isolated")


def test_statements_point_at_the_peer_in_the_file() -> None:
    b = npc.load([npc.Source("p.yaml", Path(SEED001).read_text(encoding="utf-8"))])
    (policy,) = b.policies
    data = explain_policy(policy, None, b.locate).to_json()
    assert data["policy"] == "default/test-network-policy"
    assert data["location"] == "p.yaml:3:1"
    assert [(s["number"], s["kind"], s["rule"], s["location"]) for s in data["statements"]] == [
        (1, "isolation", None, None),
        (2, "ingress", "spec.ingress[0].from[0]", "p.yaml:17:7"),
        (3, "ingress", "spec.ingress[0].from[1]", "p.yaml:21:7"),
        (4, "ingress", "spec.ingress[0].from[2]", "p.yaml:24:7"),
        (5, "egress", "spec.egress[0].to[0]", "p.yaml:32:7"),
    ]


def test_seed003_statement_shows_the_peer_that_matches_nobody(
    capsys: pytest.CaptureFixture[str],
) -> None:
    case = ROOT / "golden" / "seed003-my-app-ns"
    status, out, _ = run(
        capsys,
        "explain",
        "-f",
        str(case / "input.yaml"),
        "-f",
        str(case / "cluster.yaml"),
        "allow-ns2-app3-access-ns-apps",
        "-o",
        "json",
    )
    assert status == 0
    (policy,) = json.loads(out)["policies"]
    texts = [s["text"] for s in policy["statements"]]
    assert texts[1] == (
        "Every pod in namespaces matching `name=my-app-ns2` (no namespace in the snapshot "
        "matches `name=my-app-ns2`, so this peer matches nobody) may connect to them on TCP "
        "port 9000."
    )
    assert texts[2] == (
        "Pods in namespace my-app-ns matching `app=app3-access` (no pod in the snapshot "
        "matches, so this peer matches nobody) may connect to them on TCP port 9000."
    )


# -- verdicts with reasons --------------------------------------------------------------------


def test_allowed_flow_names_the_admitting_rules(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(
        capsys, "explain", "-f", EXAMPLE, "--from", NGINX, "--to", MYAPP, "--port", "80/TCP"
    )
    assert status == 0
    policies = f"{EXAMPLE}/policies.yaml"
    assert out == (
        f"{NGINX} -> {MYAPP} on 80/TCP: ALLOWED\n"
        "  the source's egress side and the destination's ingress side both allow it\n"
        "\n"
        "over IPv4 (10.244.1.11 -> 10.244.1.10): allowed\n"
        f"egress from {NGINX}: allowed (a rule admits it)\n"
        f"  isolated by testing/nginx-policy ({policies}:50:1), "
        f"testing/testing-default ({policies}:6:1)\n"
        f"  admitted by testing/nginx-policy spec.egress[0] ({policies}:70:7): any peer, "
        "every port and protocol\n"
        f"ingress to {MYAPP}: allowed (a rule admits it)\n"
        f"  isolated by testing/myapp-policy ({policies}:17:1), "
        f"testing/testing-default ({policies}:6:1)\n"
        f"  admitted by testing/myapp-policy spec.ingress[0] ({policies}:30:7): pods in "
        "namespace testing matching `app=nginx`, TCP port 80\n"
    )


def test_denied_flow_says_why_each_rule_does_not_admit(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, _ = run(
        capsys, "explain", "-f", EXAMPLE, "--from", NGINX, "--to", MYAPP, "--port", "8080"
    )
    assert status == 0
    policies = f"{EXAMPLE}/policies.yaml"
    assert out.splitlines()[:2] == [
        f"{NGINX} -> {MYAPP} on 8080/TCP: DENIED",
        "  the destination's ingress side denies it",
    ]
    assert out.splitlines()[-5:] == [
        f"  isolated by testing/myapp-policy ({policies}:17:1), "
        f"testing/testing-default ({policies}:6:1)",
        "  no rule admits it:",
        f"    testing/myapp-policy spec.ingress[0] ({policies}:30:7): 8080/TCP is not TCP port 80",
        f"    testing/myapp-policy spec.ingress[1] ({policies}:36:7): from[0] namespace testing "
        "(labels kubernetes.io/metadata.name=testing) does not match `ns=kube-system`",
        f"    testing/testing-default spec.ingress ({policies}:6:1): no ingress rules",
    ]


def test_flow_json(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(
        capsys,
        "explain",
        "-f",
        EXAMPLE,
        "--from",
        MYAPP,
        "--to",
        "8.8.8.8",
        "--port",
        "53/udp",
        "-o",
        "json",
    )
    assert status == 0
    data = json.loads(out)
    assert (data["from"], data["to"], data["port"], data["protocol"]) == (
        MYAPP,
        "8.8.8.8",
        53,
        "UDP",
    )
    assert data["allowed"] is False
    (family,) = data["families"]
    assert family["ingress"]["note"] == "not a pod: no policy applies to it"
    egress = family["egress"]
    assert [p["policy"] for p in egress["isolated_by"]] == [
        "testing/myapp-policy",
        "testing/testing-default",
    ]
    assert [(r["rule"], r["admits"]) for r in egress["rules"]] == [
        ("spec.egress[0]", False),
        ("spec.egress[1]", False),
        ("spec.egress", False),
    ]
    reason = egress["rules"][0]["reason"]
    assert reason == "to[0] 8.8.8.8 is not a pod; pod selectors never match it"


def test_an_address_of_a_pod_means_that_pod(capsys: pytest.CaptureFixture[str]) -> None:
    _, by_ip, _ = run(
        capsys, "explain", "-f", EXAMPLE, "--from", "10.244.1.11", "--to", MYAPP, "--port", "80"
    )
    _, by_name, _ = run(
        capsys, "explain", "-f", EXAMPLE, "--from", NGINX, "--to", MYAPP, "--port", "80"
    )
    assert by_ip == by_name


def test_same_pod_and_no_shared_family() -> None:
    b = bundle(
        NP + "metadata: {name: d, namespace: a}\nspec: {podSelector: {}, policyTypes: [Egress]}",
        namespace("a"),
        pod("a", "v4", "10.0.0.1"),
        pod("a", "v6", "fd00::1"),
    )
    assert b.snapshot is not None
    v4, v6 = b.snapshot.pods
    same = explain_flow(b.policies, b.snapshot, v4, v4, Probe(80), b.locate)
    assert same.allowed and "always connect to itself" in same.reason and not same.families
    apart = explain_flow(b.policies, b.snapshot, v4, v6, Probe(80), b.locate)
    assert not apart.allowed and apart.reason == "they share no address family, so cannot connect"


def test_host_network_and_dual_stack_reasons() -> None:
    b = bundle(
        NP + "metadata: {name: t, namespace: a}\n"
        "spec:\n"
        "  podSelector: {matchLabels: {app: t}}\n"
        "  ingress: [{from: [{podSelector: {}}, {ipBlock: {cidr: 10.0.0.0/8}}]}]\n",
        namespace("a"),
        pod("a", "t", ["10.0.0.1", "fd00::1"], {"app": "t"}),
        pod("a", "dual", ["10.0.0.2", "fd00::2"]),
        pod("a", "agent", "192.168.0.1", host_network=True, node="node-2"),
        pod("a", "local", "192.168.0.5", host_network=True),
    )
    assert b.snapshot is not None
    target, agent, dual, local = (b.snapshot.pod(f"a/{n}") for n in ("t", "agent", "dual", "local"))
    assert target is not None and agent is not None and dual is not None and local is not None
    own = explain_flow(b.policies, b.snapshot, local, target, Probe(80), b.locate)
    assert own.allowed
    assert own.families[0].ingress.note == (
        "a/local is its own node (node-1): traffic between a pod and its node is always "
        "allowed (semantics rule 8)"
    )
    host = explain_flow(b.policies, b.snapshot, agent, target, Probe(80), b.locate)
    assert not host.allowed
    checks = host.families[0].ingress.checks
    assert checks[0].reason == (
        "from[0] a/agent is a hostNetwork pod; pod selectors never match it; "
        "from[1] 192.168.0.1 is not in 10.0.0.0/8"
    )
    assert host.families[0].egress.note == "a hostNetwork pod: no policy selects it"
    both = explain_flow(b.policies, b.snapshot, dual, target, Probe(80), b.locate)
    assert both.allowed
    assert [f.version for f in both.families] == [4, 6]
    assert "dual-stack" in both.reason


def test_dual_stack_pair_open_over_one_family_is_allowed() -> None:
    """A reachability audit must not hide the IPv4 path of a pair whose IPv6 path is closed."""
    b = bundle(
        NP + "metadata: {name: t, namespace: a}\n"
        "spec:\n"
        "  podSelector: {matchLabels: {app: t}}\n"
        "  ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8}}]}]\n",
        namespace("a"),
        pod("a", "t", ["10.0.0.1", "fd00::1"], {"app": "t"}),
        pod("a", "dual", ["10.0.0.2", "fd00::2"]),
    )
    assert b.snapshot is not None
    dual, target = b.snapshot.pod("a/dual"), b.snapshot.pod("a/t")
    assert dual is not None and target is not None
    verdict = explain_flow(b.policies, b.snapshot, dual, target, Probe(80), b.locate)
    assert verdict.allowed
    assert [f.allowed for f in verdict.families] == [True, False]
    assert verdict.reason.endswith("over IPv4 (dual-stack: not over IPv6)")


@pytest.mark.parametrize("seed", range(12))
def test_flow_verdicts_agree_with_the_oracle(seed: int) -> None:
    rng = random.Random(seed)
    snap = random_cluster(rng, namespaces=2, pods=6, ipv6=seed % 2 == 0, host_network=True)
    policies = random_policies(rng, snap, count=5, ipv6=seed % 2 == 0)
    sem = Semantics(policies, snap)
    for probe in (Probe(80), Probe(53, ir.Protocol.UDP), Probe(8080)):
        for src in snap.pods:
            for dst in snap.pods:
                got = explain_flow(policies, snap, src, dst, probe)
                assert got.allowed == sem.pod_allowed(src, dst, probe.protocol, probe.port)
                assert bool(got.to_json()["allowed"]) == got.allowed


# -- command-line errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--from", NGINX, "--to", MYAPP], "needs --from, --to and --port; missing --port"),
        (["--from", NGINX, "--port", "80"], "missing --to"),
        (["testing/myapp-policy", "--from", NGINX, "--to", MYAPP, "--port", "80"], "not both"),
        (
            ["--from", "testing/nginx", "--to", MYAPP, "--port", "80"],
            f"no pod 'testing/nginx' in the snapshot (give NAMESPACE/POD or an IP address); "
            f"did you mean '{NGINX}'?",
        ),
        (["testing/myapp-polcy"], "no policy 'testing/myapp-polcy' in the input; did you mean"),
        (["--from", NGINX, "--to", MYAPP, "--port", "80/ICMP"], 'unknown protocol "ICMP"'),
    ],
)
def test_usage_errors(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    status, out, err = run(capsys, "explain", "-f", EXAMPLE, *argv)
    assert (status, out) == (2, "")
    assert message in err
    assert "Traceback" not in err


def test_flow_needs_a_snapshot_but_statements_do_not(capsys: pytest.CaptureFixture[str]) -> None:
    policies = f"{EXAMPLE}/policies.yaml"
    status, out, err = run(
        capsys, "explain", "-f", policies, "--from", NGINX, "--to", MYAPP, "--port", "80"
    )
    assert (status, out) == (2, "")
    assert "npc explain --from/--to needs a cluster snapshot" in err
    status, out, err = run(capsys, "explain", "-f", policies, "-o", "json")
    assert (status, err) == (0, "")
    data = json.loads(out)
    assert [p["policy"] for p in data["policies"]] == [
        "testing/myapp-policy",
        "testing/nginx-policy",
        "testing/testing-default",
    ]
    assert "In the snapshot" not in out
