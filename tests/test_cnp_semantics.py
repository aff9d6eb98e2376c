"""The tiers in the reference semantics and the reach engine: Admin first, then
NetworkPolicy, then Baseline, then allow; priorities; Pass; fail-closed unknown peers; and
the tiered reach engine against the oracle on random clusters."""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

import pytest

from npc import ir, tiers
from npc.analysis.explain import explain_flow
from npc.analysis.reach_tiers import TieredReach, make_reach
from npc.analysis.semantics import Semantics
from npc.cli import main
from npc.flows import Endpoint, Flow, Probe
from npc.snapshot import Snapshot
from tests import kube
from tests.kube import NP, assert_matrix, namespace, pod
from tests.synth import probe_ports, random_cluster, random_policies
from tests.synth_tiers import random_cluster_policies, with_nodes

CNP = """
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
"""

CLUSTER = (
    namespace("a", team="x"),
    namespace("b", team="z"),
    pod("a", "web", "10.0.0.2", {"app": "web"}, [(80, "TCP", "http")]),
    pod("a", "api", "10.0.0.3", {"app": "api"}, [(80, "TCP", "http")]),
    pod("b", "cli", "10.0.1.2", {"app": "cli"}, [(8080, "TCP", "http")]),
)

ALLOW_ALL_TO_WEB = (
    NP
    + """
metadata: {name: web, namespace: a}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress: [{}]
"""
)

DENY_ALL_TO_WEB = (
    NP
    + """
metadata: {name: web, namespace: a}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress]
"""
)


def cnp(name: str, tier: str, priority: int, body: str) -> str:
    return f"{CNP}metadata: {{name: {name}}}\nspec:\n  tier: {tier}\n  priority: {priority}\n{body}"


ADMIN_DENY_Z = cnp(
    "deny-z",
    "Admin",
    10,
    """  subject: {namespaces: {matchLabels: {team: x}}}
  ingress:
  - action: Deny
    from: [{namespaces: {matchLabels: {team: z}}}]
""",
)


def test_admin_deny_overrides_networkpolicy_allow() -> None:
    b = kube.bundle(ALLOW_ALL_TO_WEB + "---" + ADMIN_DENY_Z, *CLUSTER)
    assert_matrix(
        b,
        "80/TCP",
        """
            web api cli
        web  =   +   +
        api  +   =   +
        cli  -   -   =
        """,
    )


def test_admin_accept_overrides_networkpolicy_deny() -> None:
    accept = ADMIN_DENY_Z.replace("Deny", "Accept")
    b = kube.bundle(DENY_ALL_TO_WEB + "---" + accept, *CLUSTER)
    assert_matrix(
        b,
        "80/TCP",
        """
            web api cli
        api  -   =   +
        cli  +   +   =
        """,
    )


def test_pass_hands_to_networkpolicy_and_priority_orders() -> None:
    passing = cnp(
        "pass-cli",
        "Admin",
        5,
        """  subject: {namespaces: {}}
  ingress:
  - action: Pass
    from: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: cli}}}}]
""",
    )
    b = kube.bundle(ALLOW_ALL_TO_WEB + "---" + ADMIN_DENY_Z + "---" + passing, *CLUSTER)
    # cli -> web: Pass (priority 5) before Deny (10), then the NetworkPolicy allows;
    # cli -> api: passed too, nothing isolates api: allowed.
    assert_matrix(
        b,
        "80/TCP",
        """
            web api cli
        cli  +   +   =
        """,
    )
    b = kube.bundle(
        ALLOW_ALL_TO_WEB
        + "---"
        + ADMIN_DENY_Z
        + "---"
        + passing.replace("priority: 5", "priority: 11"),
        *CLUSTER,
    )
    assert_matrix(b, "80/TCP", "    web api cli\ncli  -   -   =")


def test_baseline_applies_only_where_no_networkpolicy_isolates() -> None:
    baseline = cnp(
        "default-deny",
        "Baseline",
        0,
        """  subject: {namespaces: {}}
  ingress:
  - action: Deny
    from: [{namespaces: {}}]
""",
    )
    b = kube.bundle(ALLOW_ALL_TO_WEB + "---" + baseline, *CLUSTER)
    assert_matrix(
        b,
        "80/TCP",
        """
            web api cli
        web  =   -   -
        api  +   =   -
        cli  +   -   =
        """,
    )
    passing = baseline.replace("action: Deny", "action: Pass")
    b = kube.bundle(passing, *CLUSTER)
    assert_matrix(b, "80/TCP", "    web api cli\ncli  +   +   =")


def test_egress_networks_match_pods_and_named_ports() -> None:
    deny = cnp(
        "no-a",
        "Admin",
        0,
        """  subject: {pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: cli}}}}
  egress:
  - action: Deny
    to: [{networks: [10.0.0.3/32]}]
  - action: Accept
    to: [{namespaces: {}}]
    protocols: [{destinationNamedPort: http}]
  - action: Deny
    to: [{namespaces: {}}]
""",
    )
    b = kube.bundle(deny, *CLUSTER)
    assert_matrix(b, "80/TCP", "    web api cli\ncli  +   -   =")
    assert_matrix(b, "81/TCP", "    web api cli\ncli  -   -   =")


def test_host_network_pods_are_never_subjects_nor_pod_peers() -> None:
    cluster = (*CLUSTER, pod("a", "agent", "192.168.0.9", {"app": "agent"}, host_network=True))
    deny = cnp(
        "deny-all",
        "Admin",
        0,
        """  subject: {namespaces: {}}
  ingress:
  - action: Deny
    from: [{namespaces: {}}]
  egress:
  - action: Deny
    to: [{namespaces: {}}]
""",
    )
    b = kube.bundle(deny, *cluster)
    assert_matrix(
        b,
        "80/TCP",
        """
              web agent
        web    =   +
        agent  +   =
        """,
    )


def test_unknown_peer_fails_closed() -> None:
    b = kube.bundle(ALLOW_ALL_TO_WEB, *CLUSTER)
    assert b.snapshot is not None
    web, cli = b.snapshot.pod("a/web"), b.snapshot.pod("b/cli")
    assert web is not None and cli is not None
    flow = Flow(Endpoint.of_pod(cli), Endpoint.of_pod(web), ir.Protocol.TCP, 80)
    for action, allowed in (
        (tiers.Action.ACCEPT, True),  # matches nothing: the NetworkPolicy decides (allows)
        (tiers.Action.DENY, False),  # matches everything
        (tiers.Action.PASS, True),
    ):
        policy = tiers.ClusterPolicy(
            "p",
            tiers.Tier.ADMIN,
            0,
            tiers.Subject(),
            ingress=(tiers.ClusterRule(action, (tiers.UnknownPeer(),)),),
        )
        sem = Semantics(b.policies, b.snapshot, tiers.ClusterPolicySet((policy,)))
        assert sem.allowed(flow) is allowed, action
    baseline_accept = tiers.ClusterPolicy(
        "q",
        tiers.Tier.BASELINE,
        0,
        tiers.Subject(),
        ingress=(tiers.ClusterRule(tiers.Action.DENY, (tiers.UnknownPeer(),)),),
    )
    plain = kube.bundle(
        NP + "metadata: {name: x, namespace: b}\nspec: {podSelector: {matchLabels: {app: none}}}\n",
        *CLUSTER,
    )
    assert plain.snapshot is not None
    sem = Semantics(plain.policies, plain.snapshot, tiers.ClusterPolicySet((baseline_accept,)))
    assert not sem.allowed(flow)


def test_nodes_peer_matches_node_addresses() -> None:
    rng = random.Random(1)
    snap = with_nodes(rng, random_cluster(rng, namespaces=2, pods=3))
    policy = tiers.ClusterPolicy(
        "p",
        tiers.Tier.ADMIN,
        0,
        tiers.Subject(),
        egress=(tiers.ClusterRule(tiers.Action.DENY, (tiers.NodesPeer(ir.EVERYTHING),)),),
    )
    sem = Semantics(ir.PolicySet(), snap, tiers.ClusterPolicySet((policy,)))
    src = snap.pods[0]
    node_ip = snap.nodes[1].addresses[0][1]
    assert not sem.allowed(
        Flow(Endpoint.of_pod(src), Endpoint.of_address(node_ip), ir.Protocol.TCP, 22)
    )
    assert sem.allowed(
        Flow(Endpoint.of_pod(src), Endpoint.of_address("8.8.8.8"), ir.Protocol.TCP, 22)
    )


def test_make_reach_without_tiers_is_the_class_engine() -> None:
    b = kube.bundle(ALLOW_ALL_TO_WEB, *CLUSTER)
    assert b.snapshot is not None
    assert not isinstance(make_reach(b.policies, b.snapshot), TieredReach)


@pytest.mark.parametrize("seed", range(40))
def test_tiered_reach_agrees_with_oracle(seed: int) -> None:
    rng = random.Random(seed)
    ipv6 = seed % 4 == 0
    snap = with_nodes(rng, random_cluster(rng, namespaces=3, pods=12, ipv6=ipv6, host_network=True))
    policies = random_policies(rng, snap, count=rng.randint(0, 5), ipv6=ipv6)
    cluster = random_cluster_policies(rng, count=rng.randint(1, 5), ipv6=ipv6)
    sem = Semantics(policies, snap, cluster)
    reach = TieredReach(policies, snap, cluster)
    wrong = []
    for proto, port in probe_ports(snap, policies):
        probe = Probe(port, proto)
        for src in snap.pods:
            reachable = {p.key for p in reach.reachable(src, probe)}
            for dst in snap.pods:
                want = sem.pod_allowed(src, dst, proto, port)
                got = reach.allowed(src, dst, probe)
                if got != want or (dst.key in reachable) != want:
                    wrong.append(f"{probe} {src.key} -> {dst.key}: oracle {want}, reach {got}")
    assert wrong == []


def _cluster_probes(
    snap: Snapshot, policies: ir.PolicySet, cluster: tiers.ClusterPolicySet
) -> list[Probe]:
    """Every port worth probing: containerPorts, the NetworkPolicies' ports, and the ends of
    every ClusterNetworkPolicy port range."""
    found = {Probe(port, proto) for proto, port in probe_ports(snap, policies)}
    for policy in cluster:
        for direction in ir.DIRECTIONS:
            for rule in policy.rules(direction):
                if isinstance(rule.ports, ir.PortSet):
                    for entry in rule.ports.entries:
                        for r in entry.ranges:
                            found.update(
                                Probe(p, entry.protocol) for p in (r.start, r.end) if p >= 1
                            )
    return sorted(found)


def _with_odd_peers(rng: random.Random, cluster: tiers.ClusterPolicySet) -> tiers.ClusterPolicySet:
    """Some rules gain an unknown peer (fails closed) or a domainNames peer (matches no flow
    here)."""
    odd: tuple[tiers.ClusterPeer, ...] = (tiers.UnknownPeer(), tiers.DomainNamesPeer(("a.b",)))
    out = []
    for policy in cluster:
        changed = {}
        for direction in ir.DIRECTIONS:
            changed[direction.value] = tuple(
                dataclasses.replace(rule, peers=(*rule.peers, rng.choice(odd)))
                if rng.random() < 0.2
                else rule
                for rule in policy.rules(direction)
            )
        out.append(dataclasses.replace(policy, **changed))
    return tiers.ClusterPolicySet(tuple(out))


@pytest.mark.parametrize("seed", range(16))
def test_tiered_reach_agrees_with_oracle_on_replicated_pods(seed: int) -> None:
    """Larger clusters, so classes hold several pods (their diagonal is two distinct pods),
    dual-stack pods, every tier port probed, unknown and domainNames peers."""
    rng = random.Random(1000 + seed)
    ipv6 = seed % 3 == 0
    snap = with_nodes(rng, random_cluster(rng, namespaces=3, pods=27, ipv6=ipv6, host_network=True))
    policies = random_policies(rng, snap, count=rng.randint(0, 8), ipv6=ipv6)
    cluster = _with_odd_peers(rng, random_cluster_policies(rng, count=rng.randint(1, 6), ipv6=ipv6))
    sem = Semantics(policies, snap, cluster)
    reach = make_reach(policies, snap, cluster)
    assert isinstance(reach, TieredReach)
    wrong = []
    for probe in _cluster_probes(snap, policies, cluster):
        for src in snap.pods:
            reachable = {p.key for p in reach.reachable(src, probe)}
            for dst in snap.pods:
                want = sem.pod_allowed(src, dst, probe.protocol, probe.port)
                if reach.allowed(src, dst, probe) != want or (dst.key in reachable) != want:
                    wrong.append(f"{probe} {src.key} -> {dst.key}: oracle {want}")
    assert wrong == []


PASS_CLI = """  subject: {namespaces: {}}
  ingress:
  - name: hand-on
    action: Pass
    from: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: cli}}}}]
"""


def test_explain_names_tier_policy_rule_and_pass() -> None:
    passing = cnp("pass-cli", "Admin", 5, PASS_CLI)
    b = kube.bundle(DENY_ALL_TO_WEB + "---" + ADMIN_DENY_Z + "---" + passing, *CLUSTER)
    assert b.snapshot is not None
    web, cli, api = (b.snapshot.pod(k) for k in ("a/web", "b/cli", "a/api"))
    assert web is not None and cli is not None and api is not None
    got = explain_flow(
        b.policies, b.snapshot, cli, web, Probe(80), b.locate, b.cluster_policies
    ).text()
    assert "DENIED" in got
    assert (
        "Admin tier: ClusterNetworkPolicy pass-cli (priority 5) ingress[0] (hand-on): Pass" in got
    )
    assert "passed on to NetworkPolicy" in got and "isolated by a/web" in got
    got = explain_flow(
        b.policies, b.snapshot, api, cli, Probe(80), b.locate, b.cluster_policies
    ).text()
    assert "ALLOWED" in got and "no ClusterNetworkPolicy rule matches it" in got
    b = kube.bundle(ADMIN_DENY_Z, *CLUSTER)
    assert b.snapshot is not None
    result = explain_flow(b.policies, b.snapshot, cli, api, Probe(80), b.locate, b.cluster_policies)
    assert not result.allowed
    text = result.text()
    assert "the Admin tier denies it" in text
    assert (
        "decided by Admin tier: ClusterNetworkPolicy deny-z (priority 10) ingress[0]: Deny" in text
    )
    assert "(policies.yaml:" in text
    assert result.to_json()["families"][0]["ingress"]["tiers"]


def test_cli_reach_with_tiers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "p.yaml").write_text(ADMIN_DENY_Z.lstrip("\n"))
    (tmp_path / "c.yaml").write_text(kube.cluster(*CLUSTER))
    status = main(
        ["reach", "-f", str(tmp_path / "p.yaml"), "-f", str(tmp_path / "c.yaml"), "-o", "csv"]
    )
    out, _ = capsys.readouterr()
    assert status == 0
    assert "b/cli,a/web,false" in out and "a/web,b/cli,true" in out


def test_cli_explain_a_cluster_policy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`npc explain NAME` for a ClusterNetworkPolicy: its subject and tier, then each rule in
    order with its action and file:line, and what they come to in the snapshot."""
    passing = cnp(
        "pass-cli",
        "Admin",
        5,
        PASS_CLI
        + """  - action: Deny
    from: [{namespaces: {matchLabels: {team: z}}}]
""",
    )
    (tmp_path / "p.yaml").write_text((DENY_ALL_TO_WEB + "---" + passing).lstrip("\n"))
    (tmp_path / "c.yaml").write_text(kube.cluster(*CLUSTER))
    files = ["-f", str(tmp_path / "p.yaml"), "-f", str(tmp_path / "c.yaml")]
    assert main(["explain", *files, "pass-cli"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("pass-cli  (") and lines[0].endswith("p.yaml:9:1)")
    assert "in the Admin tier, priority 5: it applies to every pod in every namespace" in lines[1]
    assert "In the snapshot: 3 pods: a/api, a/web, b/cli." in lines[1]
    assert lines[2].startswith("2. ingress[0] (hand-on): Pass connections from pods in every")
    assert "(in the snapshot, 1 pod: b/cli)" in lines[2]
    assert lines[2].endswith(
        "handed on to NetworkPolicy (then, for pods no NetworkPolicy "
        "isolates, to the Baseline tier) (" + str(tmp_path / "p.yaml") + ":17:5)."
    )
    assert lines[3].startswith("3. ingress[1]: Deny connections from every pod in namespaces")
    assert "denied, whatever NetworkPolicy says" in lines[3]
    assert main(["explain", *files, "-o", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [p["policy"] for p in data["policies"]] == ["a/web", "pass-cli"]
    assert [s["rule"] for s in data["policies"][1]["statements"]] == [
        None,
        "spec.ingress[0]",
        "spec.ingress[1]",
    ]
    assert main(["explain", *files, "pass-clj"]) == 2
    assert "did you mean 'pass-cli'?" in capsys.readouterr().err
