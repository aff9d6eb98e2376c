"""``npc lint``: one test per check, each on the seed scenario it comes from, and a clean corpus
(the golden cases that are not mistakes, and examples/) with no finding at all."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import npc
from npc.analysis.cni import CNIS, Feature
from npc.cli import main
from npc.errors import Code, Severity
from tests.helpers import source

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "golden"
SEED004 = ROOT / "tests" / "data" / "seed004"

#: Golden cases whose policies hold a mistake lint must report, with the codes it reports.
MISTAKES = {
    # The upstream conformance manifest writes `podSelector:` (null) in its NetworkPolicy.
    "conformance-integration-anp-np-banp": {Code.DEFAULTED},
    # The conformance manifests hold rules an earlier rule covers, on purpose: the tests
    # reorder or change them later, and check the connections before that (W617 is right).
    **{
        f"conformance-{case}": {Code.TIER_RULE_NEVER_REACHED}
        for case in (
            "admin-egress-sctp",
            "admin-egress-tcp",
            "admin-egress-udp",
            "admin-gress",
            "admin-ingress-sctp",
            "admin-ingress-tcp",
            "admin-ingress-udp",
            "admin-priority-field",
            "baseline-egress-sctp",
            "baseline-egress-tcp",
            "baseline-egress-udp",
            "baseline-gress",
            "baseline-ingress-sctp",
            "baseline-ingress-tcp",
            "baseline-ingress-udp",
        )
    },
    "cnp-admin-pass-baseline": {Code.BASELINE_PASS},
    "dualstack-named-ports": {Code.NO_DNS, Code.DNS_TCP_BLOCKED},
    "ipblock-except": {Code.IPBLOCK_HOLDS_PODS},
    "named-port-in-two-containers": {Code.NO_DNS},
    "seed000-data-isolation": {Code.AND_OR_CONFUSION, Code.NO_DNS},
    "seed001-default-deny-egress": {Code.NO_DNS},
    "seed001-test-network-policy": {Code.AND_OR_CONFUSION, Code.NO_DNS},
    "seed002-deny-all-traffic": {Code.NO_DNS},
    "seed002-tomcat-egress": {Code.NO_DNS},
    "seed003-my-app-ns": {
        Code.AND_OR_CONFUSION,
        Code.UNKNOWN_NAMESPACE_LABEL,
        Code.PEER_MATCHES_NOTHING,
        Code.REDUNDANT_POLICY,
    },
}


def _case_sources(case: Path) -> list[npc.Source]:
    return [
        npc.Source(str(p.relative_to(ROOT)), p.read_text(encoding="utf-8"))
        for p in sorted(case.glob("*.yaml"))
        if not p.name.startswith(("expected", "actual"))
    ]


def _valid_cases() -> list[Path]:
    cases = []
    for case in sorted(p for p in GOLDEN.iterdir() if (p / "input.yaml").exists()):
        try:
            npc.load(_case_sources(case))
        except npc.NpcError:
            continue  # invalid input: not lint's business
        cases.append(case)
    return cases


CASES = _valid_cases()


@pytest.mark.parametrize("case", [c for c in CASES if c.name not in MISTAKES], ids=str)
def test_clean_golden_cases_get_no_finding(case: Path) -> None:
    assert npc.lint(_case_sources(case)) == ()


def test_the_bundled_example_gets_no_finding() -> None:
    assert npc.lint(npc.read_sources([str(ROOT / "examples")])) == ()


@pytest.mark.parametrize("case", sorted(MISTAKES), ids=str)
def test_golden_mistakes_get_exactly_their_findings(case: str) -> None:
    found = npc.lint(_case_sources(GOLDEN / case))
    assert {f.code for f in found} == MISTAKES[case]
    assert all(f.location is not None and f.policy for f in found)


def _lint(policies: str, cluster: str | None = None, cni: str | None = None) -> list[npc.Finding]:
    sources = [source(policies, "np.yaml")]
    if cluster is not None:
        sources.append(source(cluster, "cluster.yaml"))
    return list(npc.lint(sources, cni=cni))


def _namespaces(*specs: str) -> str:
    return "".join(
        f"---\napiVersion: v1\nkind: Namespace\nmetadata: {{{spec}}}\n" for spec in specs
    )


def _pod(namespace: str, name: str, labels: str, ip: str, extra: str = "") -> str:
    return (
        f"---\napiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: {namespace}, "
        f"labels: {{{labels}}}}}\nspec: {{nodeName: n1, containers: [{{name: c{extra}}}]}}\n"
        f"status: {{phase: Running, podIP: {ip}}}\n"
    )


# -- check 1 (seed 002): a namespaceSelector on a label no namespace has ---------------------

SEED002_NAMESPACE_ALLOW = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: namespace-allow
  namespace: testing
spec:
  policyTypes: ["Ingress"]
  podSelector: {}
  ingress:
    - from:
      - namespaceSelector:
          matchExpressions:
            - key: name
              operator: In
              values: ["testing", "kube-system"]
"""
SEED002_CLUSTER = _namespaces("name: testing", "name: kube-system") + _pod(
    "testing", "web", "app: web", "10.244.1.5"
)


def test_check1_namespace_selector_on_a_label_no_namespace_has() -> None:
    (finding,) = _lint(SEED002_NAMESPACE_ALLOW, SEED002_CLUSTER)
    assert finding.code is Code.UNKNOWN_NAMESPACE_LABEL and finding.severity is Severity.WARNING
    assert finding.policy == "testing/namespace-allow"
    assert finding.path == "spec.ingress[0].from[0].namespaceSelector"
    assert finding.location is not None
    assert (finding.location.line, finding.location.column) == (12, 11)
    assert "matches no namespace" in finding.message
    assert finding.hint is not None and "kubernetes.io/metadata.name" in finding.hint
    fixed = SEED002_NAMESPACE_ALLOW.replace("key: name", "key: kubernetes.io/metadata.name")
    assert _lint(fixed, SEED002_CLUSTER) == []


def test_check1_not_in_on_a_missing_label_excludes_nothing() -> None:
    """Seed 004's `region NotIn [bar]` in a cluster whose namespaces carry no region label."""
    text = (SEED004 / "policies.yaml").read_text(encoding="utf-8")
    (finding,) = _lint(text, _namespaces("name: tekton-pipelines", "name: bar"))
    assert finding.code is Code.UNKNOWN_NAMESPACE_LABEL
    assert "excludes none" in finding.message


# -- check 2 (seed 003): OR where AND was meant ----------------------------------------------


def test_check2_or_of_namespace_and_pod_selectors() -> None:
    text = (GOLDEN / "seed003-my-app-ns" / "input.yaml").read_text(encoding="utf-8")
    (finding,) = [f for f in _lint(text) if f.code is Code.AND_OR_CONFUSION]
    assert finding.policy == "my-app-ns/allow-ns2-app3-access-ns-apps"
    assert finding.path == "spec.ingress[0].from"
    assert finding.hint is not None and "remove the '-' before `podSelector`" in finding.hint
    anded = text.replace(
        "    - podSelector:\n        matchLabels:\n          app: app3",
        "      podSelector:\n        matchLabels:\n          app: app3",
    )
    assert anded != text
    assert not [f for f in _lint(anded) if f.code is Code.AND_OR_CONFUSION]


def test_check2_all_pods_of_the_own_namespace_next_to_a_namespace_is_meant_as_or() -> None:
    text = SEED002_NAMESPACE_ALLOW.replace(
        "      - namespaceSelector:", "      - podSelector: {}\n      - namespaceSelector:"
    )
    assert not [f for f in _lint(text) if f.code is Code.AND_OR_CONFUSION]


# -- check 3 (seed 004): an ipBlock that a NodePort's source NAT never lets match -------------


def _seed004(etp: str = "Cluster", policy: str | None = None) -> list[npc.Finding]:
    cluster = (SEED004 / "cluster.yaml").read_text(encoding="utf-8")
    text = policy or (SEED004 / "policies.yaml").read_text(encoding="utf-8")
    return _lint(
        text, cluster.replace("externalTrafficPolicy: Cluster", f"externalTrafficPolicy: {etp}")
    )


def test_check3_nodeport_snat_hides_the_load_balancer() -> None:
    (finding,) = _seed004()
    assert finding.code is Code.SNAT_HIDES_CLIENT
    assert finding.policy == "tekton-pipelines/test-network-policy"
    assert finding.path == "spec.ingress[0].from[0].ipBlock"
    assert finding.location is not None and finding.location.line == 17
    assert "10.233.90.0, 10.233.92.0" in finding.message and "10.2.3.4/32" in finding.message
    assert finding.hint is not None and "externalTrafficPolicy: Local" in finding.hint


def test_check3_local_traffic_policy_keeps_the_client_address() -> None:
    assert _seed004("Local") == []


def test_check3_admitting_the_tunnel_addresses_admits_the_clients() -> None:
    """The article's first fix (tunl0 addresses in the allowlist) lets the clients in: no
    finding, though it opens the pods to everything those nodes forward."""
    text = (SEED004 / "policies.yaml").read_text(encoding="utf-8")
    tunnels = "".join(
        f"    - ipBlock:\n        cidr: {a}/32\n"
        for a in ("10.233.90.0", "10.233.96.0", "10.233.92.0")
    )
    allowlist = text.replace("    - namespaceSelector:", tunnels + "    - namespaceSelector:")
    assert _seed004(policy=allowlist) == []


# -- check 4: egress isolation without DNS -----------------------------------------------------

DNS_CLUSTER = (
    _namespaces("name: shop", "name: kube-system")
    + _pod("shop", "web", "app: web", "10.244.1.5")
    + _pod("kube-system", "coredns", "k8s-app: kube-dns", "10.244.0.10")
)
EGRESS = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-egress, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Egress]
  egress:
  - to:
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}
      podSelector: {matchLabels: {k8s-app: kube-dns}}
    ports: PORTS
"""


def test_check4_default_deny_egress_kills_dns() -> None:
    """Seed 001's default-deny-egress, with and without a snapshot."""
    text = (GOLDEN / "seed001-default-deny-egress" / "input.yaml").read_text(encoding="utf-8")
    (finding,) = _lint(text)
    assert finding.code is Code.NO_DNS and "DNS" in finding.message
    assert finding.path == "spec.policyTypes"
    cluster = DNS_CLUSTER.replace("name: shop", "name: default").replace(
        "namespace: shop", "namespace: default"
    )
    (finding,) = _lint(text, cluster)
    assert finding.code is Code.NO_DNS and "default/web" in finding.message
    (finding,) = _lint(text, _namespaces("name: default"))  # a snapshot without pods
    assert finding.code is Code.NO_DNS


@pytest.mark.parametrize(
    ("ports", "codes"),
    [
        ("[{port: 53, protocol: UDP}, {port: 53, protocol: TCP}]", []),
        ("[{port: 53, protocol: UDP}]", [Code.DNS_TCP_BLOCKED]),
        ("[{port: 5353, protocol: UDP}]", [Code.NO_DNS]),
    ],
)
def test_check4_dns_to_the_dns_pods(ports: str, codes: list[Code]) -> None:
    found = _lint(EGRESS.replace("PORTS", ports), DNS_CLUSTER)
    assert [f.code for f in found] == codes
    assert all(f.path == "spec.egress" for f in found)


# -- check 5: rules of a direction policyTypes leaves out --------------------------------------


def test_check5_ignored_egress_rules_and_validate_prints_the_same(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Seed 002's tomcat policy with policyTypes [Ingress]: its egress rules do nothing."""
    text = (GOLDEN / "seed002-tomcat-egress" / "input.yaml").read_text(encoding="utf-8")
    ignored = text.replace('policyTypes: ["Egress"]', 'policyTypes: ["Ingress"]')
    assert ignored != text
    (finding,) = _lint(ignored)
    assert finding.code is Code.IGNORED_RULES and finding.path == "spec.egress"
    path = tmp_path / "np.yaml"
    path.write_text(ignored, encoding="utf-8")
    assert main(["validate", "-f", str(path)]) == 0
    validate_err = capsys.readouterr().err
    assert main(["lint", "-f", str(path)]) == 1
    lint_out = capsys.readouterr().out
    assert validate_err.splitlines()[:2] == lint_out.splitlines()[:2]
    assert "spec.egress: these egress rules are ignored" in lint_out


# -- check 6: selectors matching nothing -------------------------------------------------------


def test_check6_pod_selector_and_peer_matching_nothing() -> None:
    text = (GOLDEN / "seed003-my-app-ns" / "input.yaml").read_text(encoding="utf-8")
    cluster = (GOLDEN / "seed003-my-app-ns" / "cluster.yaml").read_text(encoding="utf-8")
    (peer,) = [f for f in _lint(text, cluster) if f.code is Code.PEER_MATCHES_NOTHING]
    assert peer.path == "spec.ingress[0].from[1].podSelector" and "app3-access" in peer.message
    typo = text.replace("      app: app2-access", "      app: app2-acess", 1)
    assert typo != text
    nothing = [f for f in _lint(typo, cluster) if f.code is Code.SELECTS_NOTHING]
    assert [(f.policy, f.path) for f in nothing] == [
        ("my-app-ns/allow-app1-access-app2", "spec.podSelector")
    ]


# -- check 7: ipBlocks holding pod addresses ---------------------------------------------------


def test_check7_ipblock_on_pod_addresses_depends_on_the_plugin() -> None:
    sources = _case_sources(GOLDEN / "ipblock-except")
    generic = npc.lint(sources)
    assert {f.code for f in generic} == {Code.IPBLOCK_HOLDS_PODS}
    assert all(f.path.endswith(".ipBlock") for f in generic)
    assert npc.lint(sources, cni="calico") == ()
    cilium = [f for f in npc.lint(sources, cni="cilium") if f.path.endswith(".ipBlock")]
    assert {f.code for f in cilium} == {Code.CNI_IGNORES} and len(cilium) == len(generic)


# -- check 8: host bits ------------------------------------------------------------------------


def test_check8_cidr_with_host_bits() -> None:
    text = (GOLDEN / "seed001-default-deny-egress" / "input.yaml").read_text(encoding="utf-8")
    text = text.replace(
        "  - Egress", "  - Ingress\n  ingress:\n  - from:\n    - ipBlock: {cidr: 10.0.1.10/4}"
    )
    (finding,) = _lint(text)
    assert finding.code is Code.CIDR_HOST_BITS
    assert finding.path == "spec.ingress[0].from[0].ipBlock.cidr"
    assert finding.policy == "default/default-deny"


# -- check 9: shadowed rules, redundant policies -----------------------------------------------


def test_check9_redundant_policy_seed003() -> None:
    """Seed 003 'updates' the app1 policy to port 80 under a new name: the first still
    admits every port, so the second adds nothing."""
    text = (GOLDEN / "seed003-my-app-ns" / "input.yaml").read_text(encoding="utf-8")
    (finding,) = [f for f in _lint(text) if f.code is Code.REDUNDANT_POLICY]
    assert finding.policy == "my-app-ns/allow-app1-access-app2-port80"
    assert finding.path == "metadata.name" and "my-app-ns/allow-app1-access-app2" in finding.message


def test_check9_shadowed_rule() -> None:
    text = (GOLDEN / "seed002-allow-myapp-ingress" / "input.yaml").read_text(encoding="utf-8")
    assert _lint(text) == []
    covered = (
        "    - from:\n      - podSelector:\n          matchLabels:\n            app: myapp\n"
        "      ports:\n      - {protocol: TCP, port: 80}\n"
    )
    found = _lint(text + covered)
    assert [(f.code, f.path) for f in found] == [(Code.SHADOWED_RULE, "spec.ingress[1]")]
    assert "spec.ingress[0]" in found[0].message


# -- check 10: what the plugin ignores ---------------------------------------------------------


def test_check10_flannel_enforces_nothing() -> None:
    text = (GOLDEN / "seed002-allow-myapp-ingress" / "input.yaml").read_text(encoding="utf-8")
    (finding,) = _lint(text, cni="flannel")
    assert finding.code is Code.CNI_IGNORES and "flannel" in finding.message
    assert _lint(text, cni="calico") == []


def test_check10_port_ranges_and_sctp_on_cilium() -> None:
    text = EGRESS.replace(
        "PORTS",
        "[{port: 53, protocol: UDP}, {port: 53, protocol: TCP}, "
        "{port: 2905, protocol: SCTP}, {port: 8000, endPort: 8080}]",
    )
    found = _lint(text, cni="cilium")
    assert {(f.code, f.severity) for f in found} == {
        (Code.CNI_IGNORES, Severity.WARNING),
        (Code.CNI_VERSION, Severity.INFO),
    }
    assert any("SCTP" in f.message for f in found) and any("1.16" in f.message for f in found)


def test_the_cni_table_gives_each_fact_a_version_and_a_source() -> None:
    assert {"flannel", "calico", "cilium", "kube-router", "antrea"} <= set(CNIS)
    assert {"terway-veth", "terway-ipvlan", "terway-eni"} <= set(CNIS)
    for cni in CNIS.values():
        assert cni.fact(Feature.POLICY) is not None, cni.name
        for fact in cni.facts:
            if fact.enforced is not None:
                assert fact.version and fact.source, (cni.name, fact.feature)


# -- output, exit status ------------------------------------------------------------------------


def test_json_shape_and_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["lint", "-f", str(SEED004), "-o", "json"]
    assert main(args) == 1
    data = json.loads(capsys.readouterr().out)
    (finding,) = data["findings"]
    assert set(finding) == {"code", "severity", "file", "line", "policy", "path", "message", "hint"}
    assert finding["code"] == "W607" and finding["line"] == 17
    assert main(["lint", "-f", str(ROOT / "examples"), "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"findings": []}
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "kind: NetworkPolicy\napiVersion: networking.k8s.io/v1\nspec: 3\n", encoding="utf-8"
    )
    assert main(["lint", "-f", str(bad)]) == 2
    assert capsys.readouterr().out == ""
    assert main(["lint", "-f", str(SEED004), "--cni", "nope"]) == 2


def test_info_findings_alone_exit_0(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "np.yaml"
    path.write_text(EGRESS.replace("PORTS", "[{port: 53, protocol: UDP}]"), encoding="utf-8")
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text(DNS_CLUSTER, encoding="utf-8")
    assert main(["lint", "-f", str(path), "-f", str(cluster)]) == 0
    out = capsys.readouterr().out
    assert ": info: spec.egress:" in out
