"""Validation rules of the spec: selectors, policyTypes and their defaulting, protocols,
ports and endPort, peers, ipBlocks.

A test per rule, valid and invalid side by side, with exact path and position (conventions
and sources in :mod:`tests.validation_check`).
"""

from __future__ import annotations

import netaddr
import pytest

from npc import ir
from tests.validation_check import E, W, check, doc, only_policy, spec

# -- label selector operators ------------------------------------------------------------------


@pytest.mark.parametrize(
    "expression",
    [
        "{key: tier, operator: In, values: [web]}",
        "{key: tier, operator: NotIn, values: [web, db]}",
        "{key: tier, operator: Exists}",
        "{key: tier, operator: DoesNotExist}",
        "{key: tier, operator: Exists, values: []}",
    ],
)
def test_selector_operator_valid(expression: str) -> None:
    check(spec(f"podSelector:\n  matchExpressions:\n  - {expression}"))


@pytest.mark.parametrize(
    ("expression", "where", "field", "gist", "hint"),
    [
        ("{key: tier, operator: In}", "9:7", "values", "must be specified when", "Exists"),
        (
            "{key: tier, operator: NotIn, values: []}",
            "9:44",
            "values",
            "must be specified",
            "DoesNotExist",
        ),
        (
            "{key: tier, operator: Exists, values: [a]}",
            "9:45",
            "values",
            "may not be specified",
            "operator: In",
        ),
        (
            "{key: tier, operator: DoesNotExist, values: [a]}",
            "9:51",
            "values",
            "may not be",
            "remove `values`",
        ),
        (
            "{key: tier, operator: in, values: [a]}",
            "9:29",
            "operator",
            "not a valid selector operator",
            '"In"',
        ),
        (
            "{key: tier, operator: Equals, values: [a]}",
            "9:29",
            "operator",
            '"Equals": not a valid',
            None,
        ),
    ],
)
def test_selector_operator_invalid(
    expression: str, where: str, field: str, gist: str, hint: str | None
) -> None:
    if hint == "operator: In":
        hint = "remove `values`"
    text = spec(f"podSelector:\n  matchExpressions:\n  - {expression}")
    check(text, E(where, f"spec.podSelector.matchExpressions[0].{field}", gist, hint))


def test_selector_expression_key_and_values_are_label_checked() -> None:
    text = spec(
        """
        podSelector:
          matchExpressions:
          - key: Bad/Key
            operator: In
            values: [ok, "-bad"]
          - operator: Exists
        """
    )
    check(
        text,
        E("9:12", "spec.podSelector.matchExpressions[0].key", "prefix part a lowercase RFC 1123"),
        E("11:20", "spec.podSelector.matchExpressions[0].values[1]", "invalid label value"),
        E("12:7", "spec.podSelector.matchExpressions[1].key", "key is required"),
    )


# -- policyTypes: only Ingress/Egress, at most two ---------------------------------------------


@pytest.mark.parametrize(
    ("types", "ingress", "egress"),
    [
        ("[Ingress]", True, False),
        ("[Egress]", False, True),
        ("[Ingress, Egress]", True, True),
        ("[Egress, Ingress]", True, True),
    ],
)
def test_policy_types_valid(types: str, ingress: bool, egress: bool) -> None:
    policy = only_policy(check(spec(f"podSelector: {{}}\npolicyTypes: {types}")))
    assert (policy.ingress is not None, policy.egress is not None) == (ingress, egress)


@pytest.mark.parametrize(
    ("types", "where", "path", "gist", "hint"),
    [
        ("[ingress]", "8:17", "spec.policyTypes[0]", 'unsupported value "ingress"', '"Ingress"'),
        (
            "[Ingress, Both]",
            "8:26",
            "spec.policyTypes[1]",
            'supported values: "Ingress", "Egress"',
            None,
        ),
        (
            "[Ingress, Egress, Ingress]",
            "8:16",
            "spec.policyTypes",
            "may not specify more than two",
            None,
        ),
    ],
)
def test_policy_types_invalid(
    types: str, where: str, path: str, gist: str, hint: str | None
) -> None:
    check(spec(f"podSelector: {{}}\npolicyTypes: {types}"), E(where, path, gist, hint))


def test_policy_types_repeated_is_accepted_with_a_warning() -> None:
    bundle = check(
        spec("podSelector: {}\npolicyTypes: [Ingress, Ingress]"),
        W("8:26", "spec.policyTypes[1]", '"Ingress" is listed twice'),
    )
    assert only_policy(bundle).egress is None


# -- policyTypes defaulting (SetDefaults_NetworkPolicy) ----------------------------------------


def test_defaulting_no_types_no_egress_is_ingress_only() -> None:
    policy = only_policy(check(spec("podSelector: {}\ningress:\n- {}")))
    assert policy.ingress is not None and policy.egress is None


def test_defaulting_no_types_with_egress_rules_adds_egress() -> None:
    policy = only_policy(check(spec("podSelector: {}\negress:\n- to: [{podSelector: {}}]")))
    assert policy.ingress == () and policy.egress is not None and len(policy.egress) == 1


def test_defaulting_empty_types_is_like_none() -> None:
    policy = only_policy(check(spec("podSelector: {}\npolicyTypes: []\negress:\n- {}")))
    assert policy.ingress == () and policy.egress is not None


def test_defaulting_empty_egress_list_is_no_egress_rules() -> None:
    policy = only_policy(check(spec("podSelector: {}\negress: []")))
    assert policy.ingress == () and policy.egress is None


def test_explicit_types_without_rules_deny_all() -> None:
    policy = only_policy(check(spec("podSelector: {}\npolicyTypes: [Ingress, Egress]")))
    assert policy.ingress == () and policy.egress == ()


def test_rules_in_a_direction_not_isolated_are_ignored_with_a_warning() -> None:
    bundle = check(
        spec("podSelector: {}\npolicyTypes: [Egress]\ningress:\n- {}"),
        W("10:3", "spec.ingress", "ingress rules are ignored", "add Ingress to policyTypes"),
    )
    assert only_policy(bundle).ingress is None


def test_missing_spec_and_pod_selector_are_defaulted_with_warnings() -> None:
    bundle = check(
        doc(
            """
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata: {name: web}
            """
        ),
        W("1:1", "spec", "the API server stores an empty spec", "policyTypes: [Ingress]"),
    )
    assert only_policy(bundle).ingress == ()
    bundle = check(
        spec("ingress: []"), W("7:3", "spec.podSelector", "selects every pod", "`podSelector: {}`")
    )
    assert only_policy(bundle).pod_selector.matches({"any": "pod"})


# -- protocol: exactly TCP, UDP or SCTP ----------------------------------------------------------


@pytest.mark.parametrize("protocol", ["TCP", "UDP", "SCTP"])
def test_protocol_valid(protocol: str) -> None:
    policy = only_policy(
        check(
            spec(f"podSelector: {{}}\ningress:\n- ports:\n  - {{protocol: {protocol}, port: 53}}")
        )
    )
    assert policy.ingress is not None
    ports = policy.ingress[0].ports
    assert isinstance(ports, ir.PortSet)
    assert [e.protocol.value for e in ports.entries] == [protocol]


def test_protocol_defaults_to_tcp() -> None:
    policy = only_policy(check(spec("podSelector: {}\ningress:\n- ports:\n  - port: 53")))
    assert policy.ingress is not None
    ports = policy.ingress[0].ports
    assert isinstance(ports, ir.PortSet)
    assert ports.entries[0].protocol is ir.Protocol.TCP


@pytest.mark.parametrize(
    ("protocol", "hint"),
    [("tcp", 'upper case: "TCP"'), ("ICMP", None), ('""', None), ("Udp", '"UDP"')],
)
def test_protocol_invalid(protocol: str, hint: str | None) -> None:
    text = spec(f"podSelector: {{}}\ningress:\n- ports:\n  - protocol: {protocol}")
    check(text, E("10:17", "spec.ingress[0].ports[0].protocol", "unsupported value", hint))


# -- port: 1-65535 or an IANA service name ------------------------------------------------------


@pytest.mark.parametrize("port", ["1", "65535", "http", "a-b", "h2c", "abcdefghijklmno", "8-8a"])
def test_port_valid(port: str) -> None:
    check(spec(f"podSelector: {{}}\ningress:\n- ports:\n  - port: {port}"))


@pytest.mark.parametrize(
    ("port", "gist", "hint"),
    [
        ("0", "must be between 1 and 65535, inclusive", None),
        ("65536", "must be between 1 and 65535", None),
        ("-1", "must be between 1 and 65535", None),
        ("HTTP", "must contain only alpha-numeric characters (a-z, 0-9)", 'lower case: "http"'),
        ("my_port", "must contain only alpha-numeric", None),
        ("-http", "must not begin or end with a hyphen", None),
        ("http-", "must not begin or end with a hyphen", None),
        ("a--b", "must not contain consecutive hyphens", None),
        ("abcdefghijklmnop", "must be no more than 15 characters", None),
        ("'123'", "must contain a letter", "remove the quotes: `port: 123`"),
    ],
)
def test_port_invalid(port: str, gist: str, hint: str | None) -> None:
    text = spec(f"podSelector: {{}}\ningress:\n- ports:\n  - port: {port}")
    check(text, E("10:13", "spec.ingress[0].ports[0].port", gist, hint))


# -- endPort: only with a numeric port, and >= port --------------------------------------------


@pytest.mark.parametrize(("port", "end"), [(8000, 9000), (80, 80), (1, 65535)])
def test_end_port_valid(port: int, end: int) -> None:
    policy = only_policy(
        check(spec(f"podSelector: {{}}\ningress:\n- ports:\n  - {{port: {port}, endPort: {end}}}"))
    )
    assert policy.ingress is not None
    ports = policy.ingress[0].ports
    assert isinstance(ports, ir.PortSet)
    assert ports.entries[0].ranges == (ir.PortRange(port, end),)


@pytest.mark.parametrize(
    ("entry", "where", "gist", "hint"),
    [
        ("{endPort: 90}", "10:17", "may not be specified when `port` is not specified", None),
        (
            "{port: http, endPort: 90}",
            "10:29",
            "may not be specified when `port` is non-numeric",
            "numeric",
        ),
        ("{port: 90, endPort: 80}", "10:27", "must be greater than or equal to `port` (90)", None),
        ("{port: 90, endPort: 65536}", "10:27", "must be between 1 and 65535", None),
    ],
)
def test_end_port_invalid(entry: str, where: str, gist: str, hint: str | None) -> None:
    text = spec(f"podSelector: {{}}\ningress:\n- ports:\n  - {entry}")
    check(text, E(where, "spec.ingress[0].ports[0].endPort", gist, hint))


# -- peers: at least one of the three, and ipBlock alone ----------------------------------------


@pytest.mark.parametrize(
    "peer",
    [
        "{podSelector: {}}",
        "{namespaceSelector: {}}",
        "{podSelector: {matchLabels: {a: b}}, namespaceSelector: {}}",
        "{ipBlock: {cidr: 10.0.0.0/8}}",
    ],
)
def test_peer_valid(peer: str) -> None:
    check(spec(f"podSelector: {{}}\negress:\n- to:\n  - {peer}"))


@pytest.mark.parametrize(
    ("peer", "gist", "hint"),
    [
        ("{}", "must specify a peer", "leave `from:`/`to:` out"),
        (
            "{ipBlock: {cidr: 10.0.0.0/8}, podSelector: {}}",
            "may not specify both ipBlock and another peer",
            "list item of its own",
        ),
        (
            "{ipBlock: {cidr: 10.0.0.0/8}, namespaceSelector: {}}",
            "may not specify both ipBlock",
            None,
        ),
    ],
)
def test_peer_invalid(peer: str, gist: str, hint: str | None) -> None:
    text = spec(f"podSelector: {{}}\negress:\n- to:\n  - {peer}")
    wanted = E("10:7", "spec.egress[0].to[0]", gist, hint or "list item of its own")
    check(text, wanted)


# -- ipBlock: a valid cidr, excepts valid, same family, strict subsets ---------------------------


@pytest.mark.parametrize(
    ("block", "allowed", "denied"),
    [
        ("{cidr: 172.17.0.0/16, except: [172.17.1.0/24]}", "172.17.2.1", "172.17.1.1"),
        ("{cidr: 0.0.0.0/0, except: [10.0.0.0/8, 192.168.0.0/16]}", "8.8.8.8", "10.1.1.1"),
        ('{cidr: "fd00::/48", except: ["fd00::/64"]}', "fd00:0:0:1::1", "fd00::1"),
        ("{cidr: 10.0.0.0/8, except: [10.0.0.0/9, 10.128.0.0/9]}", None, "10.1.1.1"),
    ],
)
def test_ip_block_valid(block: str, allowed: str | None, denied: str) -> None:
    policy = only_policy(check(spec(f"podSelector: {{}}\negress:\n- to:\n  - ipBlock: {block}")))
    assert policy.egress is not None
    (peer,) = policy.egress[0].peers  # type: ignore[misc]
    assert isinstance(peer, ir.AddressPeer)
    addresses = peer.addresses
    if allowed is not None:
        assert netaddr.IPAddress(allowed) in addresses
    assert netaddr.IPAddress(denied) not in addresses


@pytest.mark.parametrize(
    ("block", "where", "path", "gist", "hint"),
    [
        (
            "{cidr: 10.0.0.0}",
            "10:23",
            "cidr",
            "not a valid CIDR",
            "add a prefix length: 10.0.0.0/32",
        ),
        ('{cidr: "fd00::1"}', "10:23", "cidr", "not a valid CIDR", "fd00::1/128"),
        ("{cidr: 10.0.0.256/8}", "10:23", "cidr", "not a valid CIDR", "e.g. 10.0.0.0/8"),
        ("{cidr: 10.0.0.0/33}", "10:23", "cidr", "not a valid CIDR", None),
        ("{cidr: ' 10.0.0.0/8'}", "10:23", "cidr", "not a valid CIDR", None),
        ("{cidr: ''}", "10:23", "cidr", "cidr is required", None),
        ("{except: [10.0.0.0/9]}", "10:16", "cidr", "cidr is required", None),
        (
            "{cidr: 10.0.0.0/8, except: [10.0.0.0/8]}",
            "10:44",
            "except[0]",
            "must be a strict subset of cidr 10.0.0.0/8",
            "not smaller",
        ),
        (
            "{cidr: 10.0.0.0/8, except: [10.0.0.0/7]}",
            "10:44",
            "except[0]",
            "strict subset",
            "not smaller",
        ),
        (
            "{cidr: 10.0.0.0/8, except: [11.0.0.0/16]}",
            "10:44",
            "except[0]",
            "strict subset",
            "11.0.0.0/16 lies outside 10.0.0.0/8",
        ),
        (
            '{cidr: 10.0.0.0/8, except: ["fd00::/64"]}',
            "10:44",
            "except[0]",
            "strict subset",
            "is IPv6, the cidr IPv4",
        ),
        ("{cidr: 10.0.0.0/8, except: [bogus]}", "10:44", "except[0]", "not a valid CIDR", None),
    ],
)
def test_ip_block_invalid(block: str, where: str, path: str, gist: str, hint: str | None) -> None:
    text = spec(f"podSelector: {{}}\negress:\n- to:\n  - ipBlock: {block}")
    if hint is None:
        hint = "a CIDR is an address and a prefix length" if "valid CIDR" in gist else None
    check(text, E(where, f"spec.egress[0].to[0].ipBlock.{path}", gist, hint))


def test_ip_block_every_bad_except_is_reported() -> None:
    # The API server stops at nothing here either: each except gets its own error.
    text = spec(
        """
        podSelector: {}
        egress:
        - to:
          - ipBlock:
              cidr: 172.17.0.0/16
              except:
              - 172.17.1.0/24
              - 10.0.0.0/8
              - 172.17.0.0/16
        """
    )
    check(
        text,
        E(
            "14:11",
            "spec.egress[0].to[0].ipBlock.except[1]",
            "strict subset of cidr 172.17.0.0/16",
            "lies outside",
        ),
        E(
            "15:11",
            "spec.egress[0].to[0].ipBlock.except[2]",
            "strict subset of cidr 172.17.0.0/16",
            "not smaller",
        ),
    )


def test_cidr_with_host_bits_is_accepted_with_a_warning() -> None:
    bundle = check(
        spec("podSelector: {}\negress:\n- to:\n  - ipBlock: {cidr: 10.0.1.10/4}"),
        W(
            "10:23",
            "spec.egress[0].to[0].ipBlock.cidr",
            "has host bits set; it is read as 0.0.0.0/4",
        ),
    )
    policy = only_policy(bundle)
    assert policy.egress is not None
    (peer,) = policy.egress[0].peers  # type: ignore[misc]
    assert isinstance(peer, ir.AddressPeer)
    assert peer.cidr == netaddr.IPNetwork("0.0.0.0/4")
    assert netaddr.IPAddress("15.255.255.255") in peer.addresses


def test_cidr_sloppy_forms_read_as_the_api_server_reads_them() -> None:
    # Go's ParseCIDRSloppy: leading zeros are decimal, and an IPv4-mapped IPv6 CIDR is the
    # IPv4 network it denotes. Both are accepted with a warning.
    bundle = check(
        spec(
            """
            podSelector: {}
            egress:
            - to:
              - ipBlock: {cidr: 010.000.0.0/08}
              - ipBlock: {cidr: "::ffff:192.168.0.0/112"}
            """
        ),
        W("10:23", "spec.egress[0].to[0].ipBlock.cidr", "leading zeros, read as decimal"),
        W("10:23", "spec.egress[0].to[0].ipBlock.cidr", "prefix length has leading zeros"),
        W("11:23", "spec.egress[0].to[1].ipBlock.cidr", "IPv4-mapped IPv6 CIDR is read as IPv4"),
    )
    policy = only_policy(bundle)
    assert policy.egress is not None
    cidrs = [p.cidr for p in policy.egress[0].peers]  # type: ignore[union-attr]
    assert cidrs == [netaddr.IPNetwork("10.0.0.0/8"), netaddr.IPNetwork("192.168.0.0/16")]


def test_strict_subset_compares_prefix_lengths_as_written() -> None:
    # The API server compares Mask.Size() of the two CIDRs as parsed: a mapped cidr /104 is
    # "longer" than an IPv4 except /16, so it rejects this (npc must not accept more).
    text = spec(
        """
        podSelector: {}
        egress:
        - to:
          - ipBlock: {cidr: "::ffff:10.0.0.0/104", except: [10.1.0.0/16]}
        """
    )
    check(
        text,
        W("10:23", "spec.egress[0].to[0].ipBlock.cidr", "IPv4-mapped"),
        E(
            "10:55",
            "spec.egress[0].to[0].ipBlock.except[0]",
            "strict subset of cidr 10.0.0.0/8",
            "compares prefix lengths as written",
        ),
    )
