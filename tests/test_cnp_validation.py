"""ClusterNetworkPolicy decoding and validation: the CRD's OpenAPI and CEL rules
(``config/crd/*/policy.networking.k8s.io_clusternetworkpolicies.yaml``, network-policy-api
v0.2.0), a case per rule with exact position and path, and the lowering to :mod:`npc.tiers`.

Policies are written with a fixed header; the spec body starts at line 6, column 3.
"""

from __future__ import annotations

import textwrap

import pytest

import npc
from npc import ir, tiers
from tests.validation_check import E, W, Want, check

HEADER = "apiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\n"
SUBJECT = "subject: {namespaces: {}}"


def cnp(body: str, *, name: str = "cnp", head: str = "tier: Admin\npriority: 10\n") -> str:
    """A ClusterNetworkPolicy whose spec body starts at line 6, column 3."""
    text = head + textwrap.dedent(body).strip("\n")
    lines = text.strip("\n").splitlines()
    indented = "\n".join(f"  {line}" if line else "" for line in lines)
    return f"{HEADER}metadata:\n  name: {name}\nspec:\n{indented}\n"


def only(bundle: npc.Bundle | None) -> tiers.ClusterPolicy:
    assert bundle is not None
    (policy,) = bundle.cluster_policies
    return policy


def test_valid_policy_lowers_to_tiers() -> None:
    bundle = check(
        cnp(
            f"""
            {SUBJECT}
            egress:
            - name: imds
              action: Deny
              to: [{{networks: [169.254.169.254/32, "fd00::/8"]}}]
            - action: Pass
              to:
              - pods: {{namespaceSelector: {{matchLabels: {{team: a}}}}, podSelector: {{}}}}
              - nodes: {{matchLabels: {{role: infra}}}}
              protocols:
              - tcp: {{destinationPort: {{number: 80}}}}
              - udp: {{destinationPort: {{range: {{start: 53, end: 54}}}}}}
            ingress:
            - action: Accept
              from: [{{namespaces: {{matchLabels: {{team: b}}}}}}]
              protocols: [{{destinationNamedPort: http}}]
            """
        )
    )
    policy = only(bundle)
    assert (policy.tier, policy.priority, policy.name) == (tiers.Tier.ADMIN, 10, "cnp")
    assert policy.subject == tiers.Subject()
    deny, passing = policy.egress
    assert deny.action is tiers.Action.DENY and deny.name == "imds"
    assert [str(p.addresses) for p in deny.peers if isinstance(p, ir.AddressPeer)] == [
        "169.254.169.254/32",
        "fd00::/8",
    ]
    assert passing.action is tiers.Action.PASS
    assert passing.peers[1] == tiers.NodesPeer(ir.LabelSelector.of({"role": "infra"}))
    assert passing.ports == ir.PortSet.of(("TCP", 80), ("UDP", (53, 54)))
    (accept,) = policy.ingress
    assert accept.peers == (ir.PodPeer(ir.LabelSelector.of({"team": "b"})),)
    assert accept.ports == ir.PortSet.of(("TCP", "http"), ("UDP", "http"), ("SCTP", "http"))


@pytest.mark.parametrize(
    ("head", "want"),
    [
        ("priority: 1\n", E("6:3", "spec.tier", "tier is required", "Admin")),
        (
            "tier: admin\npriority: 1\n",
            E("6:9", "spec.tier", 'unsupported value "admin"', 'did you mean "Admin"?'),
        ),
        ("tier: Admin\npriority: 1001\n", E("7:13", "spec.priority", "between 0 and 1000")),
        ("tier: Admin\npriority: -1\n", E("7:13", "spec.priority", "between 0 and 1000")),
        ("tier: Baseline\n", E("6:3", "spec.priority", "priority is required", "evaluated first")),
    ],
)
def test_tier_and_priority(head: str, want: Want) -> None:
    check(cnp(SUBJECT, head=head), want)


def test_spec_and_subject_required() -> None:
    check(f"{HEADER}metadata: {{name: x}}\n", E("1:1", "spec", "spec is required"))
    check(cnp(""), E("6:3", "spec.subject", "subject is required", "namespaces"))


@pytest.mark.parametrize(
    ("body", "want"),
    [
        ("subject: {}", E("8:12", "spec.subject", "exactly one of `namespaces`, `pods`")),
        (
            "subject: {namespaces: {}, pods: {podSelector: {}}}",
            E("8:29", "spec.subject.pods", "sets 2"),
        ),
        (
            "subject: {pods: {}}",
            E("8:19", "spec.subject.pods.podSelector", "podSelector is req", "selects every pod"),
        ),
        (
            f"{SUBJECT}\ningress:\n- action: Allow\n  from: [{{namespaces: {{}}}}]",
            E("10:13", "spec.ingress[0].action", '"Allow"', "`Accept`"),
        ),
        (
            f"{SUBJECT}\ningress:\n- from: [{{namespaces: {{}}}}]",
            E("10:5", "spec.ingress[0].action", "action is required", "Accept"),
        ),
        (
            f"{SUBJECT}\ningress:\n- action: Deny",
            E("10:5", "spec.ingress[0].from", "from is required", "namespaces"),
        ),
        (
            f"{SUBJECT}\negress:\n- action: Deny\n  to: []",
            E("11:9", "spec.egress[0].to", "at least one peer"),
        ),
        (
            f"{SUBJECT}\negress:\n- action: Deny\n  to: [{{}}]",
            E("11:10", "spec.egress[0].to[0]", "exactly one of"),
        ),
        (
            f"{SUBJECT}\ningress:\n- action: Deny\n  from: [{{networks: [10.0.0.0/8]}}]",
            E("11:13", "spec.ingress[0].from[0].networks", 'unknown field "networks"', "egress"),
        ),
        (
            f"{SUBJECT}\negress:\n- action: Deny\n  to: [{{networks: [10.0.0.0/8, 10.0.0.0/8]}}]",
            E("11:34", "spec.egress[0].to[0].networks[1]", "duplicate value", "remove"),
        ),
        (
            f"{SUBJECT}\negress:\n- action: Deny\n  to: [{{networks: [10.1.1.1]}}]",
            E("11:22", "spec.egress[0].to[0].networks[0]", "Invalid CIDR", "10.1.1.1/32"),
        ),
        (
            f"{SUBJECT}\negress:\n- action: Accept\n  to: [{{domainNames: ['a*.io']}}]",
            E("11:25", "spec.egress[0].to[0].domainNames[0]", "not a domain name", "e.g."),
        ),
        (
            f"{SUBJECT}\negress:\n- action: Accept\n  to: [{{networks: [10.0.0.0/8]}}]\n"
            "  protocols: [{destinationNamedPort: http}]",
            E(
                "12:40",
                "spec.egress[0].protocols[0].destinationNamedPort",
                "no namedPorts",
                "rule of its own",
            ),
        ),
        (
            f"{SUBJECT}\negress:\n- action: Deny\n  to: [{{namespaces: {{}}}}]\n  protocols: []",
            E("12:16", "spec.egress[0].protocols", "at least one protocol"),
        ),
        (
            f"{SUBJECT}\negress:\n- action: Deny\n  to: [{{namespaces: {{}}}}]\n"
            "  protocols: [{tcp: {}}]",
            E("12:23", "spec.egress[0].protocols[0].tcp.destinationPort", "is required", "range"),
        ),
        (
            f"{SUBJECT}\negress:\n- action: Deny\n  to: [{{namespaces: {{}}}}]\n"
            "  protocols: [{tcp: {destinationPort: {number: 0}}}]",
            E("12:50", "spec.egress[0].protocols[0].tcp.destinationPort.number", "1 and 65535"),
        ),
        (
            f"{SUBJECT}\negress:\n- action: Deny\n  to: [{{namespaces: {{}}}}]\n"
            "  protocols: [{udp: {destinationPort: {range: {start: 9, end: 9}}}}]",
            E(
                "12:49",
                "spec.egress[0].protocols[0].udp.destinationPort.range",
                "Start port must be less than End port",
                "number: 9",
            ),
        ),
        (
            f"{SUBJECT}\negress:\n- action: Deny\n  to: [{{namespaces: {{}}}}]\n"
            "  protocols: [{tcp: {destinationPort: {number: 1}}, udp: {destinationPort: "
            "{number: 1}}}]",
            E("12:55", "spec.egress[0].protocols[0].udp", "sets 2", "ORed"),
        ),
        (
            f"{SUBJECT}\negress:\n- action: Deny\n  to: [{{namespaces: {{}}}}]\n"
            "  ports: [{port: 80}]",
            E("12:5", "spec.egress[0].ports", 'unknown field "ports"', "protocols"),
        ),
        (
            f"{SUBJECT}\negress:\n- action: Deny\n  name: {'x' * 101}\n"
            "  to: [{namespaces: {}}]",
            E("11:11", "spec.egress[0].name", "at most 100 characters"),
        ),
    ],
)
def test_crd_rules(body: str, want: Want) -> None:
    check(cnp(body), want)


def test_too_many_rules() -> None:
    rules = "\n".join("- {action: Deny, to: [{namespaces: {}}]}" for _ in range(26))
    check(cnp(f"{SUBJECT}\negress:\n{rules}"), E("10:3", "spec.egress", "at most 25 rules"))


def test_same_priority_warns_and_orders_by_name() -> None:
    text = cnp(SUBJECT, name="b") + "---\n" + cnp(SUBJECT, name="a")
    bundle = check(text, W("7:13", "spec.priority", "npc evaluates a first", "own priority"))
    assert bundle is not None
    assert [p.name for p in bundle.cluster_policies] == ["a", "b"]


def test_duplicate_name() -> None:
    text = cnp(SUBJECT) + "---\n" + cnp(SUBJECT, head="tier: Admin\npriority: 11\n")
    check(text, E("13:9", "metadata.name", "defined twice", "kubectl"))


def test_cluster_scoped_namespace_warns() -> None:
    text = cnp(SUBJECT).replace("  name: cnp\n", "  name: cnp\n  namespace: x\n")
    check(text, W("5:14", "metadata.namespace", "cluster-scoped", "remove"))


@pytest.mark.parametrize("kind", ["AdminNetworkPolicy", "BaselineAdminNetworkPolicy"])
def test_v1alpha1_kinds_refused_with_hint(kind: str) -> None:
    text = f"apiVersion: policy.networking.k8s.io/v1alpha1\nkind: {kind}\nmetadata: {{name: x}}\n"
    check(text, E("2:7", "kind", "replaced by ClusterNetworkPolicy", "`Accept`"))


def test_wrong_version() -> None:
    text = cnp(SUBJECT).replace("v1alpha2", "v1alpha1")
    check(text, E("1:13", "apiVersion", "not served", "v1alpha2"))
