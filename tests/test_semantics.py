"""Every rule of the reference semantics, each on a small cluster with its expected matrix.

Inputs are YAML loaded through :func:`npc.load`; each matrix is checked against the oracle
(:class:`npc.analysis.semantics.Semantics`) and the reach engine (see ``tests/kube.py``). Rows are
sources, columns destinations: ``+`` allowed, ``-`` denied, ``=`` a pod to itself.
"""

from __future__ import annotations

import pytest

from npc import ir
from npc.analysis.semantics import Semantics
from npc.flows import Endpoint, Flow
from tests.kube import (
    NP,
    PEERS_CLUSTER,
    assert_matrix,
    bundle,
    column,
    namespace,
    pod,
    web_ingress,
)


def test_no_policy_allows_everything() -> None:
    b = bundle("", *PEERS_CLUSTER)
    assert_matrix(b, "80/TCP", column({"api-a", "api-b", "db-b", "api-c"}))


def test_ingress_only_isolation() -> None:
    """A default-deny ingress policy isolates its namespace's pods for ingress only: they
    still connect out, and pods elsewhere are untouched."""
    b = bundle(
        NP + "metadata: {name: deny-ingress, namespace: a}\nspec: {podSelector: {}}",
        *PEERS_CLUSTER,
    )
    assert_matrix(
        b,
        "80/TCP",
        """
              web  api-a  api-b  db-b  api-c
        web   =    -      +      +     +
        api-a -    =      +      +     +
        api-b -    -      =      +     +
        db-b  -    -      +      =     +
        api-c -    -      +      +     =
        """,
    )


def test_egress_only_isolation() -> None:
    b = bundle(
        NP + "metadata: {name: deny-egress, namespace: a}\n"
        "spec: {podSelector: {}, policyTypes: [Egress]}",
        *PEERS_CLUSTER,
    )
    assert_matrix(
        b,
        "80/TCP",
        """
              web  api-a  api-b  db-b  api-c
        web   =    -      -      -     -
        api-a -    =      -      -     -
        api-b +    +      =      +     +
        db-b  +    +      +      =     +
        api-c +    +      +      +     =
        """,
    )


def test_both_sides_must_allow() -> None:
    """a's pods may only send to namespace b; b's pods accept only role=client pods."""
    b = bundle(
        NP + "metadata: {name: to-b, namespace: a}\n"
        "spec:\n"
        "  podSelector: {}\n"
        "  policyTypes: [Egress]\n"
        "  egress: [{to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: b}}}]}]\n"
        "---\n" + NP + "metadata: {name: from-clients, namespace: b}\n"
        "spec:\n"
        "  podSelector: {}\n"
        "  ingress:\n"
        "  - from: [{namespaceSelector: {}, podSelector: {matchLabels: {role: client}}}]\n",
        namespace("a"),
        namespace("b"),
        pod("a", "a1", "10.0.0.1", {"role": "client"}),
        pod("a", "a2", "10.0.0.2"),
        pod("b", "b1", "10.0.1.1"),
        pod("b", "b2", "10.0.1.2", {"role": "client"}),
    )
    assert_matrix(
        b,
        "80/TCP",
        """
            a1  a2  b1  b2
        a1  =   -   +   +
        a2  -   =   -   -
        b1  +   +   =   -
        b2  +   +   +   =
        """,
    )


@pytest.mark.parametrize(
    ("rule", "admitted"),
    [
        # podSelector alone: pods of the policy's own namespace.
        ("{from: [{podSelector: {matchLabels: {app: api}}}]}", {"api-a"}),
        # namespaceSelector alone: every pod of the matching namespaces.
        ("{from: [{namespaceSelector: {matchLabels: {team: x}}}]}", {"api-a", "api-b", "db-b"}),
        # both in one peer: AND.
        (
            "{from: [{namespaceSelector: {matchLabels: {team: x}}, "
            "podSelector: {matchLabels: {app: api}}}]}",
            {"api-a", "api-b"},
        ),
        # two peers: OR.
        (
            "{from: [{namespaceSelector: {matchLabels: {team: 'y'}}}, "
            "{podSelector: {matchLabels: {app: api}}}]}",
            {"api-a", "api-c"},
        ),
        # the API server labels every namespace with its name.
        (
            "{from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: c}}}]}",
            {"api-c"},
        ),
    ],
    ids=["pod-selector-alone", "namespace-selector-alone", "both-and", "two-peers-or", "ns-name"],
)
def test_peers(rule: str, admitted: set[str]) -> None:
    assert_matrix(bundle(web_ingress(rule), *PEERS_CLUSTER), "80/TCP", column(admitted))


@pytest.mark.parametrize(
    ("rule", "admitted"),
    [
        # empty podSelector: every pod of the policy's namespace.
        ("{from: [{podSelector: {}}]}", {"api-a"}),
        # empty namespaceSelector: every pod of every namespace.
        ("{from: [{namespaceSelector: {}}]}", {"api-a", "api-b", "db-b", "api-c"}),
        (
            "{from: [{namespaceSelector: {}, podSelector: {matchLabels: {app: api}}}]}",
            {"api-a", "api-b", "api-c"},
        ),
        # an empty rule, or from absent or empty: everything.
        ("{}", {"api-a", "api-b", "db-b", "api-c"}),
        ("{from: []}", {"api-a", "api-b", "db-b", "api-c"}),
        ("{ports: []}", {"api-a", "api-b", "db-b", "api-c"}),
        ("{from: [{podSelector: {matchLabels: {app: api}}}], ports: []}", {"api-a"}),
    ],
    ids=[
        "empty-pod-selector",
        "empty-namespace-selector",
        "any-namespace-api",
        "empty-rule",
        "empty-from",
        "empty-ports",
        "empty-ports-with-peer",
    ],
)
def test_empty_selectors_versus_absent(rule: str, admitted: set[str]) -> None:
    assert_matrix(bundle(web_ingress(rule), *PEERS_CLUSTER), "80/TCP", column(admitted))


def test_empty_rule_list_isolates_and_allows_nothing() -> None:
    b = bundle(
        NP + "metadata: {name: web, namespace: a}\n"
        "spec: {podSelector: {matchLabels: {app: web}}, ingress: [], policyTypes: [Ingress]}",
        *PEERS_CLUSTER,
    )
    assert_matrix(b, "80/TCP", column(set()))


def test_policy_types_default_adds_egress_when_egress_rules_exist() -> None:
    """Without policyTypes, a policy with egress rules isolates both directions."""
    b = bundle(
        NP + "metadata: {name: web, namespace: a}\n"
        "spec:\n"
        "  podSelector: {matchLabels: {app: web}}\n"
        "  egress: [{to: [{podSelector: {matchLabels: {app: api}}}]}]\n",
        *PEERS_CLUSTER,
    )
    assert_matrix(
        b,
        "80/TCP",
        """
              web  api-a  api-b  db-b  api-c
        web   =    +      -      -     -
        api-a -    =      +      +     +
        api-b -    +      =      +     +
        db-b  -    +      +      =     +
        api-c -    +      +      +     =
        """,
    )


OPERATORS_CLUSTER = (
    namespace("a"),
    pod("a", "target", "10.0.0.1", {"role": "target"}),
    pod("a", "prod", "10.0.0.2", {"env": "prod"}),
    pod("a", "dev", "10.0.0.3", {"env": "dev"}),
    pod("a", "none", "10.0.0.4"),
)


@pytest.mark.parametrize(
    ("expression", "admitted"),
    [
        ("{key: env, operator: NotIn, values: [prod]}", {"dev", "none"}),
        ("{key: env, operator: In, values: [prod, dev]}", {"prod", "dev"}),
        ("{key: env, operator: Exists}", {"prod", "dev"}),
        ("{key: env, operator: DoesNotExist}", {"none"}),
    ],
    ids=["not-in", "in", "exists", "does-not-exist"],
)
def test_match_expressions_operators(expression: str, admitted: set[str]) -> None:
    """NotIn and DoesNotExist also match pods without the key; In and Exists do not."""
    b = bundle(
        NP + "metadata: {name: t, namespace: a}\n"
        "spec:\n"
        "  podSelector: {matchLabels: {role: target}}\n"
        f"  ingress: [{{from: [{{podSelector: {{matchExpressions: [{expression}]}}}}]}}]\n",
        *OPERATORS_CLUSTER,
    )
    names = ["target", "prod", "dev", "none"]
    assert_matrix(b, "80/TCP", column(admitted, names, "target"))


def test_multiple_policies_stack() -> None:
    """Two policies selecting web: the union of their rules, per port."""
    b = bundle(
        web_ingress("{from: [{podSelector: {matchLabels: {app: api}}}], ports: [{port: 80}]}")
        + "---\n"
        + NP
        + "metadata: {name: web-tls, namespace: a}\n"
        "spec:\n"
        "  podSelector: {matchLabels: {app: web}}\n"
        "  ingress: [{from: [{namespaceSelector: {matchLabels: {team: 'y'}}}], "
        "ports: [{port: 443}]}]\n"
        "---\n" + NP + "metadata: {name: web-egress-only, namespace: a}\n"
        "spec: {podSelector: {matchLabels: {app: web}}, policyTypes: [Egress], egress: [{}]}\n",
        *PEERS_CLUSTER,
    )
    assert_matrix(b, "80/TCP", column({"api-a"}))
    assert_matrix(b, "443/TCP", column({"api-c"}))
    assert_matrix(b, "8080/TCP", column(set()))


def test_policy_selects_only_its_own_namespace() -> None:
    b = bundle(
        NP + "metadata: {name: deny-api, namespace: a}\n"
        "spec: {podSelector: {matchLabels: {app: api}}}",
        *PEERS_CLUSTER,
    )
    assert_matrix(
        b,
        "80/TCP",
        """
              web  api-a  api-b  api-c
        web   =    -      +      +
        api-a +    =      +      +
        api-b +    -      =      +
        api-c +    -      +      =
        """,
    )


IPBLOCK_CLUSTER = (
    namespace("a"),
    namespace("b"),
    pod("a", "web", "10.0.0.2", {"app": "web"}),
    pod("b", "inside", "10.0.0.5"),
    pod("b", "excepted", "10.0.0.9"),
    pod("b", "outside", "10.0.1.5"),
)


def test_ipblock_with_except_over_pod_ips() -> None:
    b = bundle(
        web_ingress("{from: [{ipBlock: {cidr: 10.0.0.0/24, except: [10.0.0.8/29]}}]}"),
        *IPBLOCK_CLUSTER,
    )
    assert_matrix(
        b,
        "80/TCP",
        """
                  web  inside  excepted  outside
        web       =    +       +         +
        inside    +    =       +         +
        excepted  -    +       =         +
        outside   -    +       +         =
        """,
    )
    assert b.snapshot is not None
    sem = Semantics(b.policies, b.snapshot)
    web = Endpoint.of_pod(b.snapshot.pods[0])
    for address, allowed in [("10.0.0.200", True), ("10.0.0.10", False), ("192.0.2.1", False)]:
        flow = Flow(Endpoint.of_address(address), web, ir.Protocol.TCP, 80)
        assert sem.allowed(flow) is allowed, address


def test_egress_ipblock_matches_pods_by_address() -> None:
    b = bundle(
        NP + "metadata: {name: web, namespace: a}\n"
        "spec:\n"
        "  podSelector: {matchLabels: {app: web}}\n"
        "  policyTypes: [Egress]\n"
        "  egress: [{to: [{ipBlock: {cidr: 10.0.0.0/28, except: [10.0.0.9/32]}}]}]\n",
        *IPBLOCK_CLUSTER,
    )
    assert_matrix(
        b,
        "80/TCP",
        """
                  web  inside  excepted  outside
        web       =    +       -         -
        inside    +    =       +         +
        excepted  +    +       =         +
        outside   +    +       +         =
        """,
    )


HOST_CLUSTER = (
    namespace("a"),
    pod("a", "web", "10.0.0.2", {"app": "web"}),
    pod("a", "api", "10.0.0.3", {"app": "api"}),
    # hostNetwork pods report their node's address as pod IP; this one runs on another node
    # than web and api (from their own node, rule 8 admits everything).
    pod(
        "a",
        "agent",
        "192.168.0.10",
        {"app": "api"},
        [(9100, "TCP", "metrics")],
        host_network=True,
        node="node-2",
    ),
)


def test_host_network_pods_are_not_selected_by_policies() -> None:
    b = bundle(NP + "metadata: {name: deny, namespace: a}\nspec: {podSelector: {}}", *HOST_CLUSTER)
    assert_matrix(
        b,
        "80/TCP",
        """
               web  api  agent
        web    =    -    +
        api    -    =    +
        agent  -    -    =
        """,
    )


def test_host_network_pods_match_ipblocks_not_pod_selectors() -> None:
    by_labels = bundle(
        web_ingress("{from: [{podSelector: {matchLabels: {app: api}}}]}"), *HOST_CLUSTER
    )
    by_address = bundle(web_ingress("{from: [{ipBlock: {cidr: 192.168.0.0/24}}]}"), *HOST_CLUSTER)
    assert_matrix(
        by_labels,
        "80/TCP",
        """
               web  api  agent
        web    =    +    +
        api    +    =    +
        agent  -    +    =
        """,
    )
    assert_matrix(
        by_address,
        "80/TCP",
        """
               web  api  agent
        web    =    +    +
        api    -    =    +
        agent  +    +    =
        """,
    )


def test_named_ports_never_match_host_network_destinations() -> None:
    b = bundle(
        NP + "metadata: {name: web, namespace: a}\n"
        "spec:\n"
        "  podSelector: {matchLabels: {app: web}}\n"
        "  policyTypes: [Egress]\n"
        "  egress:\n"
        "  - ports: [{port: metrics}]\n"
        "  - {ports: [{port: 9100}], to: [{podSelector: {}}]}\n",
        *HOST_CLUSTER,
    )
    assert_matrix(
        b,
        "9100/TCP",
        """
               web  api  agent
        web    =    +    -
        """,
    )


def test_a_pod_and_its_own_node_always_connect() -> None:
    """Rule 8, from the spec: "traffic to and from the node where a Pod is running is always
    allowed", and "the only allowed connections into the pod are those from the pod's node
    and those allowed by the ingress list". The node is a hostNetwork pod scheduled there, or
    an address of its Node object; another node is matched like any other address."""
    node_1 = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "node-1"},
        "status": {"addresses": [{"type": "InternalIP", "address": "192.168.0.1"}]},
    }
    b = bundle(
        NP + "metadata: {name: deny, namespace: a}\n"
        "spec: {podSelector: {}, policyTypes: [Ingress, Egress]}\n",
        namespace("a"),
        pod("a", "web", "10.0.0.2", {"app": "web"}),
        pod("a", "far", "10.0.1.2", {"app": "web"}, node="node-2"),
        pod("a", "agent", "192.168.0.1", host_network=True),
        pod("a", "agent2", "192.168.0.2", host_network=True, node="node-2"),
        node_1,
    )
    assert_matrix(
        b,
        "80/TCP",
        """
                web  far  agent  agent2
        web     =    -    +      -
        far     -    =    -      +
        agent   +    -    =      +
        agent2  -    +    +      =
        """,
    )
    assert b.snapshot is not None
    sem = Semantics(b.policies, b.snapshot)
    web = Endpoint.of_pod(b.snapshot.pods[3])
    assert web.name == "a/web"
    kubelet, other_node = Endpoint.of_address("192.168.0.1"), Endpoint.of_address("192.168.0.9")
    for a, z, allowed in ((kubelet, web, True), (web, kubelet, True), (other_node, web, False)):
        verdict = sem.verdict(Flow(a, z, ir.Protocol.TCP, 80))
        assert verdict.allowed is allowed and sem.allowed(verdict.flow) is allowed
    side = sem.verdict(Flow(kubelet, web, ir.Protocol.TCP, 80)).ingress
    assert side.isolated and side.own_node and not side.admitted_by


DUAL_STACK_CLUSTER = (
    namespace("a"),
    pod("a", "target", ["10.0.0.1", "fd00::1"], {"app": "target"}),
    pod("a", "dual", ["10.0.0.2", "fd00::2"]),
    pod("a", "v4", "10.0.0.3"),
    pod("a", "v6", "fd00::3"),
)


def test_ipv6_and_dual_stack() -> None:
    """A pod pair connects when some address family both pods have allows it (dual -> target
    over IPv4 here, though its IPv6 path is closed); pods that share no family cannot connect
    at all (v4 <-> v6)."""
    v4_only = bundle(
        NP + "metadata: {name: t, namespace: a}\n"
        "spec:\n"
        "  podSelector: {matchLabels: {app: target}}\n"
        "  ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/24}}]}]\n",
        *DUAL_STACK_CLUSTER,
    )
    assert_matrix(
        v4_only,
        "80/TCP",
        """
                target  dual  v4  v6
        target  =       +     +   +
        dual    +       =     +   +
        v4      +       +     =   -
        v6      -       +     -   =
        """,
    )
    both = bundle(
        NP + "metadata: {name: t, namespace: a}\n"
        "spec:\n"
        "  podSelector: {matchLabels: {app: target}}\n"
        "  ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/24}}, {ipBlock: {cidr: 'fd00::/64'}}]}]\n",
        *DUAL_STACK_CLUSTER,
    )
    assert_matrix(
        both,
        "80/TCP",
        """
                target  dual  v4  v6
        dual    +       =     +   +
        v4      +       +     =   -
        v6      +       +     -   =
        """,
    )
    v6_except = bundle(
        NP + "metadata: {name: t, namespace: a}\n"
        "spec:\n"
        "  podSelector: {matchLabels: {app: target}}\n"
        "  ingress: [{from: [{ipBlock: {cidr: 'fd00::/64', except: ['fd00::3/128']}}]}]\n",
        *DUAL_STACK_CLUSTER,
    )
    # dual (fd00::2) connects over IPv6; v6 (fd00::3) is the except; v4 has no IPv6 path.
    assert_matrix(
        v6_except,
        "80/TCP",
        """
                target  dual  v4  v6
        dual    +       =     +   +
        v4      -       +     =   -
        v6      -       +     -   =
        """,
    )


def test_traffic_to_itself_is_always_allowed() -> None:
    b = bundle(
        NP + "metadata: {name: deny-all, namespace: a}\n"
        "spec: {podSelector: {}, policyTypes: [Ingress, Egress]}",
        *PEERS_CLUSTER,
    )
    assert_matrix(
        b,
        "80/TCP",
        """
              web  api-a  api-b
        web   =    -      -
        api-a -    =      -
        api-b -    -      =
        """,
    )
    assert b.snapshot is not None
    sem = Semantics(b.policies, b.snapshot)
    web = Endpoint.of_pod(b.snapshot.pods[1])
    verdict = sem.verdict(Flow(web, web, ir.Protocol.TCP, 80))
    assert verdict.same_pod and verdict.allowed
    assert not verdict.egress.allowed and not verdict.ingress.allowed  # policies alone would deny
