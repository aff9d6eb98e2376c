"""The ``calico`` target: the converter form exactly, GNP naming and splitting, refusals."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import netaddr
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import npc
from npc import ir
from npc.analysis.semantics import Semantics
from npc.backends.calico.backend import CalicoOptions
from npc.backends.calico.gnp import MAX_NAME, gnp_names
from npc.cli import cli
from npc.errors import UnsupportedError
from npc.flows import Endpoint, Flow
from npc.rulesets.calico.evaluate import CalicoSemantics, endpoint_labels
from npc.rulesets.calico.model import load_objects
from npc.rulesets.calico.selector import parse_selector
from npc.snapshot import Pod
from npc.targets import get_backend
from tests.helpers import source

SHOP = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: web
  namespace: shop
spec:
  podSelector:
    matchLabels: {tier: front, app: web}
    matchExpressions:
    - {key: env, operator: In, values: [prod, canary]}
    - {key: track, operator: NotIn, values: [beta]}
    - {key: owner, operator: Exists}
    - {key: legacy, operator: DoesNotExist}
  policyTypes: [Ingress, Egress]
  ingress:
  - from:
    - podSelector: {matchLabels: {role: client}}
    - namespaceSelector: {}
      podSelector: {matchLabels: {role: monitor}}
    - namespaceSelector: {matchLabels: {team: ops}}
    - ipBlock: {cidr: 10.1.0.0/16, except: [10.1.2.0/24, 10.1.3.0/24]}
    ports:
    - {protocol: UDP, port: 53}
    - {port: 80}
    - {protocol: TCP, port: 81}
    - {protocol: TCP, port: 8000, endPort: 8080}
    - {protocol: TCP, port: http}
    - {protocol: SCTP}
  egress:
  - {}
  - ports: [{port: 443}]
"""

_PEERS = """\
    source:
      selector: projectcalico.org/orchestrator == 'k8s' && role == 'client'
  - action: Allow
    destination:{DST}
    protocol: {PROTO}
    source:
      namespaceSelector: all()
      selector: projectcalico.org/orchestrator == 'k8s' && role == 'monitor'
  - action: Allow
    destination:{DST}
    protocol: {PROTO}
    source:
      namespaceSelector: team == 'ops'
      selector: projectcalico.org/orchestrator == 'k8s'
  - action: Allow
    destination:{DST}
    protocol: {PROTO}
    source:
      nets:
      - 10.1.0.0/16
      notNets:
      - 10.1.2.0/24
      - 10.1.3.0/24
"""


def _block(proto: str, dst: str) -> str:
    head = f"  - action: Allow\n    destination:{dst}\n    protocol: {proto}\n"
    return head + _PEERS.replace("{DST}", dst).replace("{PROTO}", proto)


TCP_PORTS = "\n      ports:\n      - http\n      - '80:81'\n      - '8000:8080'"
SHOP_NAMESPACED = (
    """\
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata:
  name: web
  namespace: shop
spec:
  egress:
  - action: Allow
    destination: {}
    source: {}
  - action: Allow
    destination:
      ports:
      - 443
    protocol: TCP
    source: {}
  ingress:
"""
    + _block("SCTP", " {}")
    + _block("TCP", TCP_PORTS)
    + _block("UDP", "\n      ports:\n      - 53")
    + """\
  order: 1000
  selector: projectcalico.org/orchestrator == 'k8s' && app == 'web' && tier == 'front' && \
env in { 'prod', 'canary' } && track not in { 'beta' } && has(owner) && ! has(legacy)
  tier: default
  types:
  - Ingress
  - Egress
"""
)


def test_namespaced_form_is_the_converters() -> None:
    """libcalico-go K8sNetworkPolicyToCalico: sorted matchLabels, expressions as written,
    rules per (protocol, peer) with protocols sorted, SimplifyPorts, TCP default, empty
    entities, order 1000; keys sorted as calicoctl prints them."""
    text = npc.compile([source(SHOP)], "calico", {"calico_scope": "namespaced"}).text
    assert text == SHOP_NAMESPACED


CONVERTER_CASES = sorted((Path(__file__).parent / "data" / "calico-converter").glob("*.input.yaml"))


@pytest.mark.parametrize("case", CONVERTER_CASES, ids=lambda p: p.name.split(".")[0])
def test_namespaced_form_cases(case: Path) -> None:
    """Hand-checked converter outputs (``<case>.input.yaml`` -> ``<case>.expected.yaml``):
    an empty podSelector, ``ingress: []``, IPv6 ipBlock with except, matchExpressions in
    both selectors, a named port and an endPort range."""
    expected = case.with_name(case.name.replace(".input.", ".expected."))
    text = npc.compile(
        [npc.Source(case.name, case.read_text(encoding="utf-8"))],
        "calico",
        {"calico_scope": "namespaced"},
    ).text
    assert text == expected.read_text(encoding="utf-8")


def test_namespaced_form_is_not_optimized() -> None:
    backend = get_backend("calico")
    assert backend.optimizes(CalicoOptions("global"))
    assert not backend.optimizes(CalicoOptions("namespaced"))


def test_global_form_scopes_namespaces() -> None:
    text = npc.compile([source(SHOP)], "calico").text
    (doc,) = yaml.safe_load_all(text)
    assert doc["kind"] == "GlobalNetworkPolicy"
    assert doc["metadata"]["name"] == "shop.web"
    assert doc["metadata"]["annotations"] == {"npc/source": "shop/web"}
    spec = doc["spec"]
    assert spec["selector"].startswith(
        "projectcalico.org/orchestrator == 'k8s' && projectcalico.org/namespace == 'shop' && "
    )
    assert (spec["tier"], spec["order"], spec["types"]) == ("default", 1000, ["Ingress", "Egress"])
    sources = [r["source"] for r in spec["ingress"] if r["protocol"] == "UDP"]
    assert sources == [
        {
            "selector": "projectcalico.org/orchestrator == 'k8s' && "
            "projectcalico.org/namespace == 'shop' && role == 'client'"
        },
        {
            "selector": "projectcalico.org/orchestrator == 'k8s' && role == 'monitor'",
            "namespaceSelector": "all()",
        },
        {
            "selector": "projectcalico.org/orchestrator == 'k8s'",
            "namespaceSelector": "team == 'ops'",
        },
        {"nets": ["10.1.0.0/16"], "notNets": ["10.1.2.0/24", "10.1.3.0/24"]},
    ]
    # The optimizer ran: the TCP/443 egress rule is subsumed by the allow-all one.
    assert spec["egress"] == [{"action": "Allow"}]


# -- splitting and naming ------------------------------------------------------------------


def _emit(policies: list[ir.Policy], scope: str = "global") -> str:
    return (
        get_backend("calico").emit(ir.PolicySet(tuple(policies)), None, CalicoOptions(scope)).text
    )


def _docs(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def test_splits_rules_ports_and_nets() -> None:
    many_rules = tuple(
        ir.Rule((ir.AddressPeer.block(f"10.9.{i // 256}.{i % 256}/32"),)) for i in range(1500)
    )
    ports = ir.PortSet.of(*((ir.Protocol.TCP, 2 * k + 1) for k in range(120)))
    holes = [f"10.8.{k // 128}.{2 * (k % 128)}/32" for k in range(300)]
    policy = ir.Policy(
        "ns",
        "big",
        ir.EVERYTHING,
        (
            *many_rules,
            ir.Rule(ports=ports),
            ir.Rule((ir.AddressPeer.block("10.8.0.0/16", *holes),)),
        ),
        (),
    )
    docs = _docs(_emit([policy]))
    assert [d["metadata"]["name"] for d in docs] == ["ns.big", "ns.big.part-2"]
    assert [d["metadata"]["annotations"]["npc/part"] for d in docs] == ["1/2", "2/2"]
    # The empty egress direction isolates through the first part only.
    assert [d["spec"]["types"] for d in docs] == [["Ingress", "Egress"], ["Ingress"]]
    assert [len(d["spec"]["ingress"]) for d in docs] == [1024, 1500 - 1024 + 3 + 2]
    rest = docs[1]["spec"]["ingress"][1500 - 1024 :]
    assert [len(r["destination"]["ports"]) for r in rest[:3]] == [50, 50, 20]
    assert rest[2]["destination"]["ports"][-1] == 239
    nets = [r["source"] for r in rest[3:]]
    assert all("notNets" not in n and len(n["nets"]) <= 256 for n in nets)
    assert sum(len(n["nets"]) for n in nets) > 256
    assert all(doc["spec"]["selector"] == docs[0]["spec"]["selector"] for doc in docs)


def test_namespaced_form_refuses_beyond_limits() -> None:
    ports = ir.PortSet.of(*((ir.Protocol.TCP, 2 * k + 1) for k in range(51)))
    policy = ir.Policy("ns", "wide", ir.EVERYTHING, (ir.Rule(ports=ports),), None)
    with pytest.raises(UnsupportedError) as info:
        _emit([policy], "namespaced")
    (d,) = info.value.diagnostics
    assert "NetworkPolicy ns/wide: target calico cannot express 51 TCP ports" in d.message
    assert d.path == "spec.ingress[0].ports"
    assert d.hint is not None and "--calico-scope global" in d.hint


def test_long_and_clashing_names_are_hashed() -> None:
    long_name = "n" * 253
    names = gnp_names(
        [("ns", long_name, 0), ("ns", long_name, 1), ("a", "b.part-2", 0), ("a", "b", 1)]
    )
    assert all(len(n) <= MAX_NAME for n in names)
    assert len(set(names)) == 4
    assert names[0].startswith("ns.nnnn") and names[0] != names[1]
    # Two objects wanting "a.b.part-2": neither keeps it, both get stable hashed names.
    assert "a.b.part-2" not in names
    assert names[2:] == gnp_names([("a", "b", 1), ("a", "b.part-2", 0)])[::-1]
    assert gnp_names([("ns", "web", 0)]) == ["ns.web"]
    assert gnp_names([("ns", "Bad Name!", 0)])[0].startswith("ns.bad-name-")


def test_long_names_compile_to_valid_objects() -> None:
    name = "p" * 253
    doc = _docs(_emit([ir.Policy("a-very-long-namespace-name", name, ir.EVERYTHING, (), None)]))[0]
    assert len(doc["metadata"]["name"]) <= MAX_NAME
    assert doc["metadata"]["annotations"]["npc/source"] == f"a-very-long-namespace-name/{name}"


# -- refusals (fail closed) ----------------------------------------------------------------

RESERVED = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: sneaky, namespace: shop}
spec:
  podSelector: {matchLabels: {projectcalico.org/namespace: other}}
  ingress:
  - from:
    - podSelector: {matchLabels: {pcns.env: prod}}
    - namespaceSelector: {matchLabels: {projectcalico.org/name: ops}}
"""


@pytest.mark.parametrize("scope", ["global", "namespaced"])
def test_labels_calico_rewrites_are_refused(scope: str) -> None:
    with pytest.raises(UnsupportedError) as info:
        npc.compile([source(RESERVED)], "calico", {"calico_scope": scope})
    rendered = [d.render() for d in info.value.diagnostics]
    assert len(rendered) == 3
    assert all("NetworkPolicy shop/sneaky: target calico cannot express" in r for r in rendered)
    paths = sorted(d.path for d in info.value.diagnostics)
    assert paths == [
        "spec.ingress[0].from[0].podSelector",
        "spec.ingress[0].from[1].namespaceSelector",
        "spec.podSelector",
    ]


def test_cli_refusal_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(textwrap.dedent(RESERVED), encoding="utf-8")
    out = tmp_path / "out.yaml"
    result = CliRunner().invoke(
        cli, ["compile", "-t", "calico", "-f", str(tmp_path / "p.yaml"), "-o", str(out)]
    )
    assert result.exit_code == 2
    assert (
        "error: spec.podSelector: NetworkPolicy shop/sneaky: target calico cannot" in result.output
    )
    assert "Traceback" not in result.output
    assert not out.exists()


def _selector_policy(value: str) -> ir.Policy:
    sel = ir.LabelSelector((("app", value),))
    return ir.Policy("ns", "q", sel, (ir.Rule((ir.PodPeer(ir.SAME_NAMESPACE, sel),)),), None)


def test_values_are_quoted_safely() -> None:
    doc = _docs(_emit([_selector_policy("it's")]))[0]
    selector = parse_selector(doc["spec"]["selector"])
    labels = {
        "app": "it's",
        "projectcalico.org/orchestrator": "k8s",
        "projectcalico.org/namespace": "ns",
    }
    assert selector.evaluate(labels)
    assert not selector.evaluate({**labels, "app": "its"})
    assert 'app == "it\'s"' in doc["spec"]["ingress"][0]["source"]["selector"]


def test_unwritable_values_and_long_selectors_are_refused() -> None:
    with pytest.raises(UnsupportedError, match="both ' and"):
        _emit([_selector_policy('it\'s "x"')])
    values = tuple(f"value-{i:04d}" for i in range(100))
    sel = ir.LabelSelector((), (ir.Requirement("app", ir.Operator.IN, values),))
    with pytest.raises(UnsupportedError, match="Calico allows 1024"):
        _emit([ir.Policy("ns", "long", sel, (), None)])


def test_rules_that_match_nothing_emit_nothing() -> None:
    """An empty port entry or an empty peer list must not become "any port" / "any peer"."""
    nothing = ir.PortSet((ir.ProtocolPorts(ir.Protocol.TCP),))
    rules = (
        ir.Rule(ports=nothing),
        ir.Rule(peers=()),
        ir.Rule((ir.AddressPeer(ir.AddressSet(())),)),
    )
    for scope in ("global", "namespaced"):
        (doc,) = _docs(_emit([ir.Policy("ns", "none", ir.EVERYTHING, rules, None)], scope))
        assert "ingress" not in doc["spec"], scope
        assert doc["spec"]["types"] == ["Ingress"]


def test_unknown_scope_is_refused() -> None:
    with pytest.raises(UnsupportedError, match="calico scope must be one of"):
        npc.compile([source(SHOP)], "calico", {"calico_scope": "cluster"})
    result = CliRunner().invoke(
        cli, ["compile", "-t", "ir", "--calico-scope", "global", "-f", "-"], input=SHOP
    )
    assert result.exit_code == 2


def test_cli_scopes(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(textwrap.dedent(SHOP), encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(
        cli,
        ["compile", "-t", "calico", "--calico-scope", "namespaced", "-f", str(tmp_path / "p.yaml")],
    )
    assert result.exit_code == 0, result.output
    assert SHOP_NAMESPACED in result.output
    out = tmp_path / "out.calico.yaml"
    result = runner.invoke(
        cli, ["compile", "-t", "calico", "-f", str(tmp_path / "p.yaml"), "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8").startswith(
        "---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\n"
    )


def test_output_is_identical_across_hash_seeds(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(textwrap.dedent(SHOP), encoding="utf-8")
    outputs = set()
    for seed in ("0", "1", "12345"):
        for scope in ("global", "namespaced"):
            env = {**os.environ, "PYTHONHASHSEED": seed}
            run = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "npc",
                    "compile",
                    "-t",
                    "calico",
                    "--calico-scope",
                    scope,
                    "-f",
                    str(tmp_path / "p.yaml"),
                ],
                capture_output=True,
                text=True,
                check=True,
                env=env,
            )
            outputs.add((scope, run.stdout))
    assert len(outputs) == 2


# -- emitted selectors mean what the IR selectors mean --------------------------------------

KEYS = ("app", "tier", "example.com/role")
VALUES = ("web", "db", "", "it's", 'say "hi"')


def _requirements() -> st.SearchStrategy[ir.Requirement]:
    keys, values = st.sampled_from(KEYS), st.sampled_from(VALUES)
    return st.one_of(
        st.builds(
            ir.Requirement,
            keys,
            st.sampled_from((ir.Operator.IN, ir.Operator.NOT_IN)),
            st.lists(values, min_size=1, max_size=3).map(tuple),
        ),
        st.builds(
            ir.Requirement, keys, st.sampled_from((ir.Operator.EXISTS, ir.Operator.DOES_NOT_EXIST))
        ),
    )


SELECTORS = st.builds(
    ir.LabelSelector,
    st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), max_size=2).map(
        lambda d: tuple(d.items())
    ),
    st.lists(_requirements(), max_size=3).map(tuple),
)
LABELS = st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), max_size=3)


@settings(max_examples=150, deadline=None)
@given(
    SELECTORS,
    SELECTORS,
    SELECTORS,
    st.lists(LABELS, min_size=1, max_size=4),
    st.lists(LABELS, min_size=1, max_size=4),
)
def test_emitted_selectors_evaluate_like_the_ir(
    pods: ir.LabelSelector,
    peer_pods: ir.LabelSelector,
    peer_namespaces: ir.LabelSelector,
    pod_labels: list[dict[str, str]],
    ns_labels: list[dict[str, str]],
) -> None:
    rule = ir.Rule(
        (ir.PodPeer(ir.SAME_NAMESPACE, peer_pods), ir.PodPeer(peer_namespaces, peer_pods))
    )
    policy = ir.Policy("ns", "p", pods, (rule,), None)
    for scope in ("global", "namespaced"):
        (doc,) = _docs(_emit([policy], scope))
        spec = doc["spec"]
        selector = parse_selector(spec["selector"])
        same_ns, other_ns = spec["ingress"][0]["source"], spec["ingress"][1]["source"]
        peer_selector = parse_selector(same_ns["selector"])
        ns_peer_selector = parse_selector(other_ns["selector"])
        ns_selector = parse_selector(other_ns["namespaceSelector"])
        for labels in pod_labels:
            for namespace in ("ns", "other"):
                ep = endpoint_labels(Pod(namespace, "x", labels), {})
                in_ns = namespace == "ns" or scope == "namespaced"  # namespaced: Calico scopes
                assert selector.evaluate(ep) == (in_ns and pods.matches(labels))
                assert peer_selector.evaluate(ep) == (in_ns and peer_pods.matches(labels))
                assert ns_peer_selector.evaluate(ep) == peer_pods.matches(labels)
        for labels in ns_labels:
            assert ns_selector.evaluate(labels) == peer_namespaces.matches(labels)


SPOOF_POLICY = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-prod, namespace: shop}
spec:
  podSelector: {}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {env: prod}}
"""
SPOOF_CLUSTER = """
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: shop, labels: {env: prod}}}
- {apiVersion: v1, kind: Namespace, metadata: {name: dev, labels: {env: dev}}}
- apiVersion: v1
  kind: Pod
  metadata: {name: db, namespace: shop}
  spec: {containers: [{name: c, image: i}], nodeName: "n"}
  status: {phase: Running, podIP: 10.0.0.2, podIPs: [{ip: 10.0.0.2}]}
- apiVersion: v1
  kind: Pod
  metadata: {name: intruder, namespace: dev, labels: {pcns.env: prod}}
  spec: {containers: [{name: c, image: i}], nodeName: "n"}
  status: {phase: Running, podIP: 10.0.1.2, podIPs: [{ip: 10.0.1.2}]}
"""


def test_pods_impersonating_namespace_labels_are_refused() -> None:
    """Calico lets a pod's own ``pcns.env`` label beat its namespace's ``env``: with such a
    pod in the snapshot the output would admit it, so npc refuses (without a snapshot it
    cannot know; the evaluator shows the widening)."""
    bundle = npc.load([source(SPOOF_POLICY), source(SPOOF_CLUSTER, "cluster.yaml")])
    with pytest.raises(UnsupportedError) as info:
        npc.compile(bundle, "calico")
    (d,) = info.value.diagnostics
    assert d.path == "metadata.labels[pcns.env]"
    assert "Pod dev/intruder carries label 'pcns.env'" in d.message
    text = npc.compile([source(SPOOF_POLICY)], "calico").text
    assert bundle.snapshot is not None
    intruder, db = (bundle.snapshot.pod(k) for k in ("dev/intruder", "shop/db"))
    assert intruder is not None and db is not None
    flow = Flow(Endpoint.of_pod(intruder), Endpoint.of_pod(db), ir.Protocol.TCP, 80)
    assert not Semantics(bundle.policies, bundle.snapshot).allowed(flow)
    assert CalicoSemantics(load_objects(text), bundle.snapshot).allowed(flow)


def test_blocks_are_written_from_what_they_allow_when_the_spelling_disagrees() -> None:
    """An AddressPeer compares by addresses; if its written cidr/except no longer match
    them (built by hand or by a pass), the addresses are what gets emitted."""
    stale = ir.AddressPeer(ir.AddressSet.of("10.0.0.0/25"), cidr=netaddr.IPNetwork("10.0.0.0/24"))
    policy = ir.Policy("ns", "p", ir.EVERYTHING, (ir.Rule((stale,)),), None)
    for scope in ("global", "namespaced"):
        (doc,) = _docs(_emit([policy], scope))
        assert doc["spec"]["ingress"][0]["source"] == {"nets": ["10.0.0.0/25"]}, scope


CONVERTER_PORTS = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: ports
  namespace: shop
spec:
  podSelector: {}
  policyTypes: [Ingress]
  ingress:
  - ports:
    - port: web
    - port: 80
    - port: metrics
  - ports:
    - port: web
    - port: web
  - ports:
    - port: 90
    - port: web
    - port: 80
    - port: 81
    - protocol: UDP
    - protocol: UDP
      port: 53
  egress:
  - ports:
    - port: 443
"""


def test_namespaced_form_keeps_the_converters_port_spelling() -> None:
    """libcalico-go ``SimplifyPorts``: with fewer than two numeric ports the written list as
    is (order and duplicates); otherwise named ports in written order, then sorted ranges; a
    protocol entry without a port allows every port of it; egress rules of a policy that
    does not isolate egress are kept (its ``types`` say Calico ignores them)."""
    docs = _docs(
        npc.compile([source(CONVERTER_PORTS)], "calico", {"calico_scope": "namespaced"}).text
    )
    spec = docs[0]["spec"]
    assert spec["types"] == ["Ingress"]
    assert [r.get("destination", {}).get("ports") for r in spec["ingress"]] == [
        ["web", 80, "metrics"],
        ["web", "web"],
        ["web", "80:81", 90],
        None,
    ]
    assert [r.get("protocol") for r in spec["ingress"]] == ["TCP", "TCP", "TCP", "UDP"]
    assert spec["egress"] == [
        {"action": "Allow", "protocol": "TCP", "source": {}, "destination": {"ports": [443]}}
    ]
