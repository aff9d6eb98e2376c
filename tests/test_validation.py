"""A test per validation rule: valid and invalid side by side, exact path and position.

Rules follow the Kubernetes API server (``pkg/apis/networking/validation``, apimachinery's
``ValidateObjectMeta``/``ValidateLabelSelector``/``IsQualifiedName``/``IsValidPortName``/
``ParseCIDRSloppy``) and strict decoding (``kubectl apply --validate=strict``). Every case
asserts the severity, ``line:column``, field path, the gist of the message and of the hint.

Policies are written with a fixed header, so positions are easy to check by eye::

    1 apiVersion: networking.k8s.io/v1
    2 kind: NetworkPolicy
    3 metadata:
    4   name: web
    5   namespace: prod
    6 spec:
    7   <first line of the spec body, column 3>
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import netaddr
import pytest

import npc
from npc import ir
from npc.errors import Diagnostic, NpcError, Severity

HEADER = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"


def spec(body: str, *, name: str = "web", namespace: str = "prod") -> str:
    """A policy whose spec body starts at line 7, column 3."""
    lines = textwrap.dedent(body).strip("\n").splitlines()
    indented = "\n".join(f"  {line}" if line else "" for line in lines)
    return f"{HEADER}metadata:\n  name: {name}\n  namespace: {namespace}\nspec:\n{indented}\n"


def doc(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def load(text: str) -> tuple[npc.Bundle | None, tuple[Diagnostic, ...]]:
    try:
        bundle = npc.load([npc.Source("np.yaml", text)])
    except NpcError as exc:
        return None, exc.diagnostics
    return bundle, bundle.diagnostics


@dataclass(frozen=True)
class Want:
    """An expected diagnostic: severity, "line:col", path, gist of message and hint."""

    severity: str
    where: str
    path: str
    gist: str
    hint: str | None = None


def E(where: str, path: str, gist: str, hint: str | None = None) -> Want:
    return Want("error", where, path, gist, hint)


def W(where: str, path: str, gist: str, hint: str | None = None) -> Want:
    return Want("warning", where, path, gist, hint)


def check(text: str, *wanted: Want) -> npc.Bundle | None:
    """Load ``text`` and assert exactly the ``wanted`` errors and warnings (notes ignored)."""
    bundle, diagnostics = load(text)
    got = [d for d in diagnostics if d.severity is not Severity.INFO]
    rendered = "\n".join(d.render() for d in got)
    assert len(got) == len(wanted), f"expected {len(wanted)} diagnostics, got:\n{rendered}"
    for d, w in zip(got, wanted, strict=True):
        assert d.location is not None, d.render()
        assert d.severity.value == w.severity, d.render()
        assert f"{d.location.line}:{d.location.column}" == w.where, d.render()
        assert d.location.file == "np.yaml"
        assert d.path == w.path, d.render()
        assert w.gist in d.message, d.render()
        if w.hint is None:
            assert d.hint is None, d.render()
        else:
            assert d.hint is not None and w.hint in d.hint, d.render()
    if any(w.severity == "error" for w in wanted):
        assert bundle is None
    else:
        assert bundle is not None
    return bundle


def only_policy(bundle: npc.Bundle | None) -> ir.Policy:
    assert bundle is not None
    (policy,) = bundle.policies
    return policy


# -- metadata.name: a DNS-1123 subdomain -------------------------------------------------------


@pytest.mark.parametrize("name", ["web", "web.allow-1", "0-a", "a" * 253, "a.b.c", '"1"'])
def test_name_valid(name: str) -> None:
    assert only_policy(check(spec("podSelector: {}", name=name))).name == name.strip('"')


@pytest.mark.parametrize(
    ("name", "gist"),
    [
        ("Web", "lowercase RFC 1123 subdomain"),
        ("-web", "must start and end with an alphanumeric"),
        ("web_1", "lowercase RFC 1123 subdomain"),
        ("web.", "lowercase RFC 1123 subdomain"),
        ("a" * 254, "must be no more than 253 characters"),
    ],
)
def test_name_invalid(name: str, gist: str) -> None:
    check(spec("podSelector: {}", name=name), E("4:9", "metadata.name", gist))


def test_name_required() -> None:
    text = doc(
        """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata:
          namespace: prod
        spec:
          podSelector: {}
        """
    )
    # A missing field points at the mapping that lacks it.
    check(text, E("4:3", "metadata.name", "name is required"))


def test_name_required_mentions_generate_name() -> None:
    text = doc(
        """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata:
          generateName: web-
        spec:
          podSelector: {}
        """
    )
    check(text, E("4:3", "metadata.name", "name is required", "generateName"))


def test_empty_name_is_required() -> None:
    check(spec("podSelector: {}", name='""'), E("4:9", "metadata.name", "name is required"))


# -- metadata.namespace: a DNS-1123 label, defaulting to `default` ------------------------------


@pytest.mark.parametrize("namespace", ["prod", "team-a", '"0"', "a" * 63])
def test_namespace_valid(namespace: str) -> None:
    policy = only_policy(check(spec("podSelector: {}", namespace=namespace)))
    assert policy.namespace == namespace.strip('"')


def test_namespace_defaults_to_default() -> None:
    text = doc(
        """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata:
          name: web
        spec:
          podSelector: {}
        """
    )
    assert only_policy(check(text)).namespace == "default"


@pytest.mark.parametrize(
    ("namespace", "gist"),
    [
        ("Prod", "lowercase RFC 1123 label"),
        ("team.a", "lowercase RFC 1123 label"),
        ("-prod", "lowercase RFC 1123 label"),
        ("a" * 64, "must be no more than 63 characters"),
    ],
)
def test_namespace_invalid(namespace: str, gist: str) -> None:
    check(spec("podSelector: {}", namespace=namespace), E("5:14", "metadata.namespace", gist))


# -- label keys (optional DNS prefix + name) and values ----------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "app",
        "app.kubernetes.io/name",
        "example.com/a_b.c-d",
        "A1",
        "a" * 63,
        f"{'b' * 253}/x",
    ],
)
def test_label_key_valid(key: str) -> None:
    policy = only_policy(check(spec(f"podSelector:\n  matchLabels:\n    {key}: v")))
    assert policy.pod_selector.matches({key: "v"})


@pytest.mark.parametrize(
    ("key", "gist"),
    [
        ("/app", "prefix part must be non-empty"),
        ("Example.com/app", "prefix part a lowercase RFC 1123 subdomain"),
        ("a/b/c", "a qualified name must consist of"),
        ("-app", "name part must consist of"),
        ("app-", "name part must consist of"),
        ("example.com/", "name part must be non-empty"),
        ("a" * 64, "name part must be no more than 63 characters"),
        (f"{'b' * 254}/x", "prefix part must be no more than 253 characters"),
        ("'a b'", "name part must consist of"),
    ],
)
def test_label_key_invalid(key: str, gist: str) -> None:
    shown = key.strip("'")
    text = spec(f"podSelector:\n  matchLabels:\n    {key}: v")
    # Key problems point at the key (line 9, column 7).
    check(text, E("9:7", f"spec.podSelector.matchLabels[{shown}]", gist))


@pytest.mark.parametrize("value", ['""', "a", "a-b_c.d", "A.1", "a" * 63])
def test_label_value_valid(value: str) -> None:
    check(spec(f"podSelector:\n  matchLabels:\n    app: {value}"))


@pytest.mark.parametrize(
    ("value", "gist"),
    [
        ("-a", "a valid label must be an empty string or consist of alphanumeric"),
        ("a-", "must start and end with an alphanumeric"),
        ("a" * 64, "must be no more than 63 characters"),
        ("'a b'", "a valid label must be"),
        ("a/b", "a valid label must be"),
    ],
)
def test_label_value_invalid(value: str, gist: str) -> None:
    text = spec(f"podSelector:\n  matchLabels:\n    app: {value}")
    # Value problems point at the value (line 9, column 12).
    check(text, E("9:12", "spec.podSelector.matchLabels[app]", gist))


def test_metadata_labels_and_annotations_are_validated() -> None:
    text = doc(
        """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata:
          name: web
          labels:
            good: yes-this
            bad_value: "-x"
          annotations:
            example.com/ok: anything at all, even spaces
            "bad key": v
        spec:
          podSelector: {}
        """
    )
    check(
        text,
        E("7:16", "metadata.labels[bad_value]", "invalid label value"),
        E("10:5", "metadata.annotations[bad key]", "invalid annotation key"),
    )


def test_annotations_total_size() -> None:
    big = "x" * (256 * 1024)
    check(
        spec("podSelector: {}").replace(
            "namespace: prod\n", f"namespace: prod\n  annotations:\n    a: {big}\n"
        ),
        E("7:5", "metadata.annotations", "may not exceed 262144 bytes"),
    )


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


# -- strict decoding: unknown fields, duplicate keys, wrong types --------------------------------


@pytest.mark.parametrize(
    ("line", "where", "path", "hint"),
    [
        ("Ingress: []", "8:3", "spec.Ingress", "did you mean `ingress`?"),
        ("podselector: {}", "8:3", "spec.podselector", "did you mean `podSelector`?"),
        ("policyType: [Ingress]", "8:3", "spec.policyType", "did you mean `policyTypes`?"),
        ("ports: []", "8:3", "spec.ports", "belongs inside a rule"),
        ("namespace: prod", "8:3", "spec.namespace", "belongs in `metadata:`"),
    ],
)
def test_unknown_spec_field(line: str, where: str, path: str, hint: str) -> None:
    check(
        spec(f"podSelector: {{}}\n{line}"),
        E(where, path, f'unknown field "{path.rsplit(".", maxsplit=1)[-1]}"', hint),
    )


@pytest.mark.parametrize(
    ("peer", "where", "path", "hint"),
    [
        ("{podSelector: {matchLabel: {a: b}}}", "10:22", "podSelector.matchLabel", "`matchLabels`"),
        ("{ipblock: {cidr: 10.0.0.0/8}}", "10:8", "ipblock", "`ipBlock`"),
        ("{ipBlock: {cidr: 10.0.0.0/8, excepts: []}}", "10:36", "ipBlock.excepts", "`except`"),
        ("{podSelector: {}, ports: [{port: 80}]}", "10:25", "ports", "belongs to the rule"),
        ("{podSelector: {app: web}}", "10:22", "podSelector.app", "go under `matchLabels:`"),
    ],
)
def test_unknown_peer_field(peer: str, where: str, path: str, hint: str) -> None:
    text = spec(f"podSelector: {{}}\ningress:\n- from:\n  - {peer}")
    field = path.rsplit(".", maxsplit=1)[-1]
    check(text, E(where, f"spec.ingress[0].from[0].{path}", f'unknown field "{field}"', hint))


def test_unknown_top_level_and_metadata_fields() -> None:
    text = doc(
        """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata:
          name: web
          nmespace: prod
        podSelector: {}
        spec:
          podSelector: {}
        """
    )
    check(
        text,
        E("5:3", "metadata.nmespace", 'unknown field "nmespace"', "did you mean `namespace`?"),
        E("6:1", "podSelector", 'unknown field "podSelector"', "belongs in `spec:`"),
    )


def test_duplicate_keys() -> None:
    text = doc(
        """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata:
          name: web
          name: prod
        spec:
          podSelector:
            matchLabels: {app: a, app: b}
        """
    )
    check(
        text,
        E(
            "5:3",
            "metadata.name",
            'duplicate key "name" (first at line 4)',
            "did you mean `namespace: prod`?",
        ),
        E(
            "8:27",
            "spec.podSelector.matchLabels[app]",
            'duplicate key "app" (first at line 8)',
            "only the last value counts",
        ),
    )


@pytest.mark.parametrize(
    ("body", "where", "path", "gist", "hint"),
    [
        (
            "podSelector:\n- matchLabels: {}",
            "8:3",
            "spec.podSelector",
            "expected a mapping, got a list",
            "remove the leading '- '",
        ),
        (
            "podSelector: {}\ningress:\n  from: []",
            "9:5",
            "spec.ingress",
            "expected a list, got a mapping",
            "start each item of a list with '- '",
        ),
        (
            "podSelector: {}\npolicyTypes: Ingress",
            "8:16",
            "spec.policyTypes",
            "expected a list, got a string ('Ingress')",
            None,
        ),
        (
            "podSelector: {}\ningress:\n- ports:\n  - port: true",
            "10:13",
            "spec.ingress[0].ports[0].port",
            "expected a port number or a port name, got a boolean (true)",
            'quote the value if you mean the word: "true"',
        ),
        (
            "podSelector: {}\ningress:\n- ports:\n  - port: 8.5",
            "10:13",
            "spec.ingress[0].ports[0].port",
            "got a decimal number (8.5)",
            'quote it to make it a string: "8.5"',
        ),
        (
            "podSelector: {}\ningress:\n- ports:\n  - {port: 80, endPort: '90'}",
            "10:27",
            "spec.ingress[0].ports[0].endPort",
            "expected an integer, got a string ('90')",
            "remove the quotes: 90",
        ),
        (
            "podSelector:\n  matchLabels: {version: 1.10}",
            "8:28",
            "spec.podSelector.matchLabels[version]",
            "expected a string, got a decimal number (1.10)",
            'quote it to make it a string: "1.10"',
        ),
    ],
)
def test_wrong_types(body: str, where: str, path: str, gist: str, hint: str | None) -> None:
    check(spec(body), E(where, path, gist, hint))


def test_a_broken_field_does_not_cascade() -> None:
    # Decoding failed for the peer list: no "must specify a peer" noise beneath it.
    check(
        spec("podSelector: {}\ningress:\n- from: {podSelector: {}}"),
        E("9:11", "spec.ingress[0].from", "expected a list, got a mapping", "start each item"),
    )


def test_name_as_number_shows_the_text_as_written() -> None:
    check(
        spec("podSelector: {}", name="0x1F"),
        E(
            "4:9",
            "metadata.name",
            "expected a string, got a number (0x1F)",
            'quote it to make it a string: "0x1F"',
        ),
    )


# -- kinds and apiVersions ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "where", "path", "gist", "hint"),
    [
        (
            "apiVersion: networking.k8s.io/v1\nkind: NetworPolicy",
            "2:7",
            "kind",
            'unknown kind "NetworPolicy"',
            "did you mean `NetworkPolicy`?",
        ),
        (
            "apiVersion: networking.k8s.io/v1\nkind: networkpolicy",
            "2:7",
            "kind",
            "unknown kind",
            "`NetworkPolicy`",
        ),
        (
            "apiVersion: networking.k8s.io/v1beta1\nkind: NetworkPolicy",
            "1:13",
            "apiVersion",
            'NetworkPolicy is not served as "networking.k8s.io/v1beta1"',
            "use `apiVersion: networking.k8s.io/v1`",
        ),
        (
            "apiVersion: extensions/v1beta1\nkind: NetworkPolicy",
            "1:13",
            "apiVersion",
            "not served",
            "networking.k8s.io/v1",
        ),
        (
            "apiVersion: v1\nkind: NetworkPolicy",
            "1:13",
            "apiVersion",
            'not served as "v1"',
            "networking.k8s.io/v1",
        ),
        (
            "apiVersion: apps/v1\nkind: Pod",
            "1:13",
            "apiVersion",
            'Pod is not served as "apps/v1"',
            "use `apiVersion: v1`",
        ),
        (
            "kind: NetworkPolicy",
            "1:1",
            "apiVersion",
            "Object 'apiVersion' is missing",
            "networking.k8s.io/v1",
        ),
        (
            "apiVersion: networking.k8s.io/v1",
            "1:1",
            "kind",
            "Object 'Kind' is missing",
            "every object needs",
        ),
        (
            "apiVersion: networking.k8s.io/v1\nkind: [NetworkPolicy]",
            "2:7",
            "kind",
            "expected a string, got a list",
            None,
        ),
    ],
)
def test_kind_and_api_version(
    header: str, where: str, path: str, gist: str, hint: str | None
) -> None:
    check(
        f"{header}\nmetadata: {{name: web}}\nspec: {{podSelector: {{}}}}\n",
        E(where, path, gist, hint),
    )


@pytest.mark.parametrize(
    "header",
    [
        "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy",
        "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy",
        "apiVersion: apps/v1\nkind: Deployment",
        "apiVersion: example.com/v1\nkind: Pod",
    ],
)
def test_other_kinds_are_skipped_with_a_note(header: str) -> None:
    bundle, diagnostics = load(f"{header}\nmetadata: {{name: web}}\n")
    assert bundle is not None and len(bundle.policies) == 0
    (note,) = diagnostics
    assert note.severity is Severity.INFO and "skipping" in note.message


def test_list_items_need_a_kind_but_typed_list_items_do_not() -> None:
    text = doc(
        """
        apiVersion: v1
        kind: List
        items:
        - metadata: {name: a}
          spec: {podSelector: {}}
        """
    )
    check(text, E("4:3", "kind", "Object 'Kind' is missing", "items of a `kind: List` need"))
    typed = text.replace(
        "apiVersion: v1\nkind: List", "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicyList"
    )
    assert only_policy(check(typed)).name == "a"


def test_paths_inside_a_list_are_relative_to_the_object() -> None:
    text = doc(
        """
        apiVersion: v1
        kind: List
        items:
        - apiVersion: networking.k8s.io/v1
          kind: NetworkPolicy
          metadata: {name: a}
          spec: {podSelector: {}}
        - apiVersion: networking.k8s.io/v1
          kind: NetworkPolicy
          metadata:
            name: b
            name: c
          spec:
            podSelector: {}
            ingress:
            - from:
              - {}
        """
    )
    check(
        text,
        E("12:5", "metadata.name", 'duplicate key "name" (first at line 11)', "namespace: c"),
        E("17:9", "spec.ingress[0].from[0]", "must specify a peer", "leave `from:`/`to:` out"),
    )


def test_the_same_policy_twice_is_an_error() -> None:
    text = spec("podSelector: {}") + "---\n" + spec("podSelector: {}")
    check(
        text,
        E(
            "12:9",
            "metadata.name",
            "NetworkPolicy prod/web is defined twice (first at np.yaml:4:9)",
            "remove or rename",
        ),
    )


def test_all_problems_of_all_documents_are_reported_at_once() -> None:
    text = (
        spec("podSelector: {}\nIngress: []", name="a")
        + "---\n"
        + spec("podSelector: {}\ningress:\n- ports:\n  - port: 0", name="b")
    )
    check(
        text,
        E("8:3", "spec.Ingress", 'unknown field "Ingress"', "did you mean `ingress`?"),
        E("19:13", "spec.ingress[0].ports[0].port", "must be between 1 and 65535"),
    )


def test_a_misspelt_required_field_is_reported_once() -> None:
    # "cidr is required" / "must specify a peer" would only repeat the typo; other problems of
    # the same object still show.
    text = spec(
        """
        podSelector: {}
        ingress:
        - from:
          - {ipblock: {cidr: 10.0.0.0/8}}
          - {ipBlock: {cdir: 10.0.0.0/8}}
          - {bogus: 1}
        """
    )
    check(
        text,
        E("10:8", "spec.ingress[0].from[0].ipblock", 'unknown field "ipblock"', "`ipBlock`"),
        E("11:18", "spec.ingress[0].from[1].ipBlock.cdir", 'unknown field "cdir"', "`cidr`"),
        E("12:7", "spec.ingress[0].from[2]", "must specify a peer", "leave `from:`/`to:` out"),
        E("12:8", "spec.ingress[0].from[2].bogus", 'unknown field "bogus"'),
    )


def test_status_from_older_clusters_is_ignored() -> None:
    # `kubectl get networkpolicy -o yaml` on Kubernetes 1.24-1.27 prints `status: {}`.
    assert only_policy(check(spec("podSelector: {}") + "status: {}\n")).name == "web"
