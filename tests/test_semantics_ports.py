"""Semantic rules about ports: named ports, endPort, SCTP, protocol defaults.

Same conventions as ``tests/test_semantics.py``: YAML clusters, expected matrices checked
against the oracle and the reach engine.
"""

from __future__ import annotations

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
    b = bundle(web_ingress(rule), *NAMED_CLUSTER)
    for probe in ("53/UDP", "53/TCP", "80/TCP", "80/UDP"):
        assert_matrix(
            b,
            probe,
            """
                    client  web2
            client  =       -
            """,
        )
    udp = bundle(web_ingress("{ports: [{port: dns, protocol: UDP}]}"), *NAMED_CLUSTER)
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
    b = bundle(web_ingress("{ports: [{port: 8000, endPort: 8080}]}"), *PEERS_CLUSTER)
    for probe, allowed in [("7999", False), ("8000", True), ("8040", True), ("8080", True)]:
        everyone = {"api-a", "api-b", "db-b", "api-c"}
        assert_matrix(b, f"{probe}/TCP", column(everyone if allowed else set()))
    assert_matrix(b, "8081/TCP", column(set()))
    assert_matrix(b, "8000/UDP", column(set()))


def test_sctp_is_a_protocol_like_the_others() -> None:
    b = bundle(
        web_ingress("{ports: [{port: 3868, protocol: SCTP}, {protocol: UDP}]}"), *PEERS_CLUSTER
    )
    everyone = {"api-a", "api-b", "db-b", "api-c"}
    assert_matrix(b, "3868/SCTP", column(everyone))
    assert_matrix(b, "3868/TCP", column(set()))
    assert_matrix(b, "3869/SCTP", column(set()))
    # A protocol without a port: every port of that protocol.
    assert_matrix(b, "1/UDP", column(everyone))
    assert_matrix(b, "65535/UDP", column(everyone))


def test_port_without_protocol_is_tcp() -> None:
    b = bundle(web_ingress("{ports: [{port: 53}]}"), *PEERS_CLUSTER)
    assert_matrix(b, "53/TCP", column({"api-a", "api-b", "db-b", "api-c"}))
    assert_matrix(b, "53/UDP", column(set()))
