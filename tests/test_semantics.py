"""Every rule of the reference semantics, each on a small cluster with its expected matrix.

Inputs are YAML loaded through :func:`npc.load`; each matrix is checked against the oracle
(:class:`npc.semantics.Semantics`) and the reach engine (see ``tests/kube.py``). Rows are
sources, columns destinations: ``+`` allowed, ``-`` denied, ``=`` a pod to itself.
"""

from __future__ import annotations

import pytest

from npc import ir
from npc.semantics import Endpoint, Flow, Semantics
from tests.helpers import rendered
from tests.kube import assert_matrix, bundle, namespace, pod

NP = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
"""

# Three namespaces (a and b of team x, c of team y); web in a is the usual target.
PEERS_CLUSTER = (
    namespace("a", team="x"),
    namespace("b", team="x"),
    namespace("c", team="y"),
    pod("a", "web", "10.0.0.2", {"app": "web"}),
    pod("a", "api-a", "10.0.0.3", {"app": "api"}),
    pod("b", "api-b", "10.0.1.2", {"app": "api"}),
    pod("b", "db-b", "10.0.1.3", {"app": "db"}),
    pod("c", "api-c", "10.0.2.2", {"app": "api"}),
)


def _web_ingress(rule: str) -> str:
    """A policy isolating a/web for ingress with one rule (YAML flow syntax)."""
    return NP + (
        "metadata: {name: web, namespace: a}\n"
        "spec:\n"
        "  podSelector: {matchLabels: {app: web}}\n"
        f"  ingress: [{rule}]\n"
    )


def _column(
    admitted: set[str],
    names: tuple[str, ...] | list[str] = ("web", "api-a", "api-b", "db-b", "api-c"),
    target: str = "web",
) -> str:
    """The matrix where only ``target`` is isolated (ingress) and admits ``admitted``."""
    rows = ["       " + "  ".join(names)]
    for s in names:
        marks = []
        for d in names:
            if s == d:
                marks.append("=")
            elif d == target:
                marks.append("+" if s in admitted else "-")
            else:
                marks.append("+")
        rows.append(f"{s}  " + "  ".join(marks))
    return "\n".join(rows)


def test_no_policy_allows_everything() -> None:
    b = bundle("", *PEERS_CLUSTER)
    assert_matrix(b, "80/TCP", _column({"api-a", "api-b", "db-b", "api-c"}))


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
            "{from: [{namespaceSelector: {matchLabels: {team: y}}}, "
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
    assert_matrix(bundle(_web_ingress(rule), *PEERS_CLUSTER), "80/TCP", _column(admitted))


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
    assert_matrix(bundle(_web_ingress(rule), *PEERS_CLUSTER), "80/TCP", _column(admitted))


def test_empty_rule_list_isolates_and_allows_nothing() -> None:
    b = bundle(
        NP + "metadata: {name: web, namespace: a}\n"
        "spec: {podSelector: {matchLabels: {app: web}}, ingress: [], policyTypes: [Ingress]}",
        *PEERS_CLUSTER,
    )
    assert_matrix(b, "80/TCP", _column(set()))


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
    assert_matrix(b, "80/TCP", _column(admitted, names, "target"))


def test_multiple_policies_stack() -> None:
    """Two policies selecting web: the union of their rules, per port."""
    b = bundle(
        _web_ingress("{from: [{podSelector: {matchLabels: {app: api}}}], ports: [{port: 80}]}")
        + "---\n"
        + NP
        + "metadata: {name: web-tls, namespace: a}\n"
        "spec:\n"
        "  podSelector: {matchLabels: {app: web}}\n"
        "  ingress: [{from: [{namespaceSelector: {matchLabels: {team: y}}}], "
        "ports: [{port: 443}]}]\n"
        "---\n" + NP + "metadata: {name: web-egress-only, namespace: a}\n"
        "spec: {podSelector: {matchLabels: {app: web}}, policyTypes: [Egress], egress: [{}]}\n",
        *PEERS_CLUSTER,
    )
    assert_matrix(b, "80/TCP", _column({"api-a"}))
    assert_matrix(b, "443/TCP", _column({"api-c"}))
    assert_matrix(b, "8080/TCP", _column(set()))


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
        _web_ingress("{from: [{ipBlock: {cidr: 10.0.0.0/24, except: [10.0.0.8/29]}}]}"),
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


NAMED_CLUSTER = (
    namespace("a"),
    pod("a", "client", "10.0.0.1", {"app": "client"}),
    pod("a", "web1", "10.0.0.2", {"app": "web"}, [(8080, "TCP", "http")]),
    pod("a", "web2", "10.0.0.3", {"app": "web"}, [(80, "TCP", "http"), (53, "UDP", "dns")]),
    pod("a", "web3", "10.0.0.4", {"app": "web"}, [(8080, "TCP", "web")]),
)


def test_named_ports_resolve_per_destination_pod() -> None:
    """``port: http`` is 8080 on web1, 80 on web2, and nothing on web3 (no such name)."""
    b = bundle(
        NP + "metadata: {name: web, namespace: a}\n"
        "spec:\n"
        "  podSelector: {matchLabels: {app: web}}\n"
        "  ingress: [{ports: [{port: http}]}]\n",
        *NAMED_CLUSTER,
    )
    assert_matrix(
        b,
        "8080/TCP",
        """
                client  web1  web2  web3
        client  =       +     -     -
        web1    +       =     -     -
        web2    +       +     =     -
        web3    +       +     -     =
        """,
    )
    assert_matrix(
        b,
        "80/TCP",
        """
                client  web1  web2  web3
        client  =       -     +     -
        web2    +       -     =     -
        """,
    )


def test_named_port_needs_the_same_protocol() -> None:
    """web2 names UDP/53 ``dns``; a rule for TCP port ``dns`` does not match it."""
    rule = "{ports: [{port: dns, protocol: TCP}, {port: http, protocol: UDP}]}"
    b = bundle(_web_ingress(rule), *NAMED_CLUSTER)
    for probe in ("53/UDP", "53/TCP", "80/TCP", "80/UDP"):
        assert_matrix(
            b,
            probe,
            """
                    client  web2
            client  =       -
            """,
        )
    udp = bundle(_web_ingress("{ports: [{port: dns, protocol: UDP}]}"), *NAMED_CLUSTER)
    assert_matrix(
        udp,
        "53/UDP",
        """
                client  web1  web2
        client  =       -     +
        """,
    )


def test_named_ports_in_egress_resolve_against_the_destination() -> None:
    b = bundle(
        NP + "metadata: {name: client, namespace: a}\n"
        "spec:\n"
        "  podSelector: {matchLabels: {app: client}}\n"
        "  policyTypes: [Egress]\n"
        "  egress: [{ports: [{port: http}]}]\n",
        *NAMED_CLUSTER,
    )
    assert_matrix(
        b,
        "8080/TCP",
        """
                client  web1  web2  web3
        client  =       +     -     -
        """,
    )
    assert_matrix(
        b,
        "80/TCP",
        """
                client  web1  web2  web3
        client  =       -     +     -
        """,
    )
    assert b.snapshot is not None
    sem = Semantics(b.policies, b.snapshot)
    client = Endpoint.of_pod(b.snapshot.pods[0])
    # A named port never matches a destination that is not a pod.
    outside = Endpoint.of_address("192.0.2.10")
    assert not sem.allowed(Flow(client, outside, ir.Protocol.TCP, 8080))


def test_end_port_is_inclusive() -> None:
    b = bundle(_web_ingress("{ports: [{port: 8000, endPort: 8080}]}"), *PEERS_CLUSTER)
    for probe, allowed in [("7999", False), ("8000", True), ("8040", True), ("8080", True)]:
        everyone = {"api-a", "api-b", "db-b", "api-c"}
        assert_matrix(b, f"{probe}/TCP", _column(everyone if allowed else set()))
    assert_matrix(b, "8081/TCP", _column(set()))
    assert_matrix(b, "8000/UDP", _column(set()))


def test_sctp_is_a_protocol_like_the_others() -> None:
    b = bundle(
        _web_ingress("{ports: [{port: 3868, protocol: SCTP}, {protocol: UDP}]}"), *PEERS_CLUSTER
    )
    everyone = {"api-a", "api-b", "db-b", "api-c"}
    assert_matrix(b, "3868/SCTP", _column(everyone))
    assert_matrix(b, "3868/TCP", _column(set()))
    assert_matrix(b, "3869/SCTP", _column(set()))
    # A protocol without a port: every port of that protocol.
    assert_matrix(b, "1/UDP", _column(everyone))
    assert_matrix(b, "65535/UDP", _column(everyone))


def test_port_without_protocol_is_tcp() -> None:
    b = bundle(_web_ingress("{ports: [{port: 53}]}"), *PEERS_CLUSTER)
    assert_matrix(b, "53/TCP", _column({"api-a", "api-b", "db-b", "api-c"}))
    assert_matrix(b, "53/UDP", _column(set()))


HOST_CLUSTER = (
    namespace("a"),
    pod("a", "web", "10.0.0.2", {"app": "web"}),
    pod("a", "api", "10.0.0.3", {"app": "api"}),
    # hostNetwork pods report their node's address as pod IP.
    pod(
        "a", "agent", "192.168.0.10", {"app": "api"}, [(9100, "TCP", "metrics")], host_network=True
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
        _web_ingress("{from: [{podSelector: {matchLabels: {app: api}}}]}"), *HOST_CLUSTER
    )
    by_address = bundle(_web_ingress("{from: [{ipBlock: {cidr: 192.168.0.0/24}}]}"), *HOST_CLUSTER)
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


DUAL_STACK_CLUSTER = (
    namespace("a"),
    pod("a", "target", ["10.0.0.1", "fd00::1"], {"app": "target"}),
    pod("a", "dual", ["10.0.0.2", "fd00::2"]),
    pod("a", "v4", "10.0.0.3"),
    pod("a", "v6", "fd00::3"),
)


def test_ipv6_and_dual_stack() -> None:
    """A pod-to-pod verdict holds only when every address family both pods have allows it;
    pods that share no family cannot connect at all."""
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
        dual    -       =     +   +
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
    assert_matrix(
        v6_except,
        "80/TCP",
        """
                target  dual  v4  v6
        dual    -       =     +   +
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


def test_snapshot_keeps_only_pods_taking_part_in_networking() -> None:
    """No IP, or phase Succeeded/Failed: not in the snapshot. Named ports come from every
    container and from init containers that run as sidecars (restartPolicy Always)."""
    sidecar = pod("a", "sidecar", "10.0.0.5")
    sidecar["spec"]["initContainers"] = [
        {
            "name": "proxy",
            "restartPolicy": "Always",
            "ports": [{"containerPort": 15001, "name": "proxy"}],
        },
        {"name": "setup", "ports": [{"containerPort": 9999, "name": "setup"}]},
    ]
    sidecar["spec"]["containers"].append(
        {"name": "second", "ports": [{"containerPort": 8081, "name": "admin"}]}
    )
    b = bundle(
        "",
        namespace("a"),
        pod("a", "pending", []),
        pod("a", "done", "10.0.0.2", phase="Succeeded"),
        pod("a", "crashed", "10.0.0.3", phase="Failed"),
        pod("a", "running", "10.0.0.4"),
        sidecar,
    )
    assert b.snapshot is not None
    assert [p.key for p in b.snapshot.pods] == ["a/running", "a/sidecar"]
    ports = {(p.name, p.port) for p in b.snapshot.pods[1].ports}
    assert ports == {("proxy", 15001), ("admin", 8081)}
    assert b.snapshot.namespace_labels("a") == {"kubernetes.io/metadata.name": "a"}


# -- snapshot errors: compiler-style, with file:line:col and field path ---------------------

SNAPSHOT_HEAD = """
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
"""


def test_pod_in_a_namespace_missing_from_the_snapshot() -> None:
    text = rendered(
        SNAPSHOT_HEAD
        + """
        apiVersion: v1
        kind: Pod
        metadata:
          name: web
          namespace: shpo
        status:
          podIP: 10.0.0.1
        """.replace("\n        ", "\n")
    )
    assert text == (
        'input.yaml:11:14: error: metadata.namespace: pod shpo/web is in namespace "shpo", '
        "which is not in the snapshot\n"
        "  hint: include the namespaces: `kubectl get ns,pods -A -o yaml`"
    )


def test_duplicate_pods() -> None:
    pod_text = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: shop\n"
    text = rendered(
        SNAPSHOT_HEAD
        + pod_text
        + "status: {podIP: 10.0.0.1}\n---\n"
        + pod_text
        + "status: {podIP: 10.0.0.2}\n"
    )
    assert text == (
        "input.yaml:16:9: error: metadata.name: Pod shop/web appears twice in the snapshot\n"
        "  hint: remove one of the two copies"
    )


def test_malformed_pod_addresses() -> None:
    text = rendered(
        SNAPSHOT_HEAD + "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop}\n"
        "status:\n"
        "  podIPs:\n"
        "  - ip: 10.0.0.300\n"
        "  - ip: 10.0.0.1\n"
        "  - ip: 10.0.0.2\n"
        "---\n"
        "apiVersion: v1\nkind: Pod\nmetadata: {name: db, namespace: shop}\n"
        "status: {podIP: 'fd00::1::2'}\n"
    )
    assert text == (
        'input.yaml:11:9: error: status.podIPs[0].ip: "10.0.0.300" is not an IP address\n'
        'input.yaml:13:9: error: status.podIPs[2].ip: "10.0.0.2": may specify no more than one '
        "IP for each IP family\n"
        'input.yaml:18:17: error: status.podIP: "fd00::1::2" is not an IP address'
    )


def test_malformed_container_ports() -> None:
    text = rendered(
        SNAPSHOT_HEAD + "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop}\n"
        "spec:\n"
        "  containers:\n"
        "  - name: main\n"
        "    ports:\n"
        "    - containerPort: 0\n"
        "    - containerPort: 80\n"
        "      name: HTTP_port\n"
        "    - containerPort: 53\n"
        "      protocol: ICMP\n"
        "    - name: metrics\n"
        "status: {podIP: 10.0.0.1}\n"
    )
    assert text == (
        "input.yaml:13:22: error: spec.containers[0].ports[0].containerPort: 0: must be "
        "between 1 and 65535, inclusive\n"
        "input.yaml:15:13: error: spec.containers[0].ports[1].name: invalid port name "
        '"HTTP_port": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)\n'
        "input.yaml:17:17: error: spec.containers[0].ports[2].protocol: unsupported protocol "
        '"ICMP": supported values: "TCP", "UDP", "SCTP"\n'
        "input.yaml:18:7: error: spec.containers[0].ports[3].containerPort: containerPort is "
        "required"
    )


def test_container_port_of_the_wrong_type() -> None:
    text = rendered(
        SNAPSHOT_HEAD + "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop}\n"
        "spec:\n"
        "  containers:\n"
        "  - name: main\n"
        "    ports: [{containerPort: http}]\n"
        "status: {podIP: 10.0.0.1}\n"
    )
    assert text == (
        "input.yaml:12:29: error: spec.containers[0].ports[0].containerPort: expected an "
        "integer, got a string ('http')"
    )
