"""NetworkPolicy validation, rule for rule as the Kubernetes API server does it.

Sources: ``pkg/apis/networking/validation/validation.go`` (policy, ports, peers, ipBlock),
``apimachinery/pkg/apis/meta/v1/validation`` (label selectors) and
``apimachinery/pkg/api/validation`` (object metadata). Two deliberate differences, both
stricter or more helpful, never more permissive: every problem is reported (Go stops at the
first bad ``except``), and messages carry hints.
"""

from __future__ import annotations

from collections.abc import Mapping

from npc.errors import Code, Key, Path, Severity
from npc.frontend.decode import Decoder, did_you_mean
from npc.frontend.k8s import names
from npc.frontend.k8s.api import (
    IPBlock,
    LabelSelector,
    NetworkPolicy,
    NetworkPolicyPeer,
    NetworkPolicyPort,
    ObjectMeta,
)

__all__ = [
    "DEFAULT_NAMESPACE",
    "POLICY_TYPES",
    "PROTOCOLS",
    "validate_label_selector",
    "validate_labels",
    "validate_network_policy",
    "validate_object_meta",
]

DEFAULT_NAMESPACE = "default"
POLICY_TYPES = ("Ingress", "Egress")
PROTOCOLS = ("TCP", "UDP", "SCTP")
OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")
_ANNOTATIONS_MAX_BYTES = 256 * 1024


def validate_network_policy(np: NetworkPolicy, out: Decoder) -> None:
    """All API-server checks of one NetworkPolicy; problems go to ``out``."""
    validate_object_meta(np.metadata or ObjectMeta(), ("metadata",), out, namespaced=True)
    spec = np.spec
    if spec is None:
        out.problem(
            Code.DEFAULTED,
            "missing; the API server stores an empty spec, which selects every pod in the "
            "namespace and denies all its ingress",
            ("spec",),
            "write `spec: {podSelector: {}, policyTypes: [Ingress]}` if that is what you mean",
            severity=Severity.WARNING,
        )
        return
    path: Path = ("spec",)
    if spec.pod_selector is None:
        out.problem(
            Code.DEFAULTED,
            "missing; read as `{}`, which selects every pod in the namespace",
            (*path, "podSelector"),
            "write `podSelector: {}` to say so explicitly",
            severity=Severity.WARNING,
        )
    else:
        validate_label_selector(spec.pod_selector, (*path, "podSelector"), out)
    for i, ingress in enumerate(spec.ingress or ()):
        rule_path: Path = (*path, "ingress", i)
        for j, port in enumerate(ingress.ports or ()):
            validate_port(port, (*rule_path, "ports", j), out)
        for j, peer in enumerate(ingress.from_ or ()):
            validate_peer(peer, (*rule_path, "from", j), out)
    for i, egress in enumerate(spec.egress or ()):
        rule_path = (*path, "egress", i)
        for j, peer in enumerate(egress.to or ()):
            validate_peer(peer, (*rule_path, "to", j), out)
        for j, port in enumerate(egress.ports or ()):
            validate_port(port, (*rule_path, "ports", j), out)
    types = spec.policy_types or ()
    if len(types) > len(POLICY_TYPES):
        out.problem(
            Code.INVALID_POLICY_TYPE,
            "may not specify more than two policyTypes",
            (*path, "policyTypes"),
        )
        return
    for i, ptype in enumerate(types):
        if ptype not in POLICY_TYPES:
            guess = did_you_mean(ptype, POLICY_TYPES)
            out.problem(
                Code.INVALID_POLICY_TYPE,
                f'unsupported value "{ptype}": supported values: "Ingress", "Egress"',
                (*path, "policyTypes", i),
                f'did you mean "{guess}"?' if guess else None,
            )
    if len(types) == 2 and types[0] == types[1]:
        out.problem(
            Code.DUPLICATE_POLICY_TYPE,
            f'"{types[0]}" is listed twice (the API server accepts it)',
            (*path, "policyTypes", 1),
            severity=Severity.WARNING,
        )


def validate_object_meta(meta: ObjectMeta, path: Path, out: Decoder, *, namespaced: bool) -> None:
    """``ValidateObjectMeta``: name (DNS-1123 subdomain), namespace, labels, annotations."""
    if not meta.name:
        hint = None
        if meta.generate_name:
            hint = (
                "generateName is resolved by the API server on create; npc compiles named "
                "objects, so give this one a name"
            )
        out.problem(Code.REQUIRED, "name is required", (*path, "name"), hint)
    elif msgs := names.is_dns1123_subdomain(meta.name):
        out.problem(
            Code.INVALID_NAME, f'invalid name "{meta.name}": {"; ".join(msgs)}', (*path, "name")
        )
    if namespaced and meta.namespace and (msgs := names.is_dns1123_label(meta.namespace)):
        out.problem(
            Code.INVALID_NAME,
            f'invalid namespace "{meta.namespace}": {"; ".join(msgs)}',
            (*path, "namespace"),
        )
    validate_labels(meta.labels or {}, (*path, "labels"), out)
    total = 0
    for key, value in (meta.annotations or {}).items():
        total += len(key.encode()) + len(value.encode())
        if msgs := names.is_qualified_name(key.lower()):
            out.problem(
                Code.INVALID_LABEL,
                f'invalid annotation key "{key}": {"; ".join(msgs)}',
                (*path, "annotations", Key(key)),
                at_key=True,
            )
    if total > _ANNOTATIONS_MAX_BYTES:
        out.problem(
            Code.INVALID_VALUE,
            f"annotations may not exceed {_ANNOTATIONS_MAX_BYTES} bytes in total",
            (*path, "annotations"),
        )


def validate_labels(labels: Mapping[str, str], path: Path, out: Decoder) -> None:
    """``ValidateLabels``: keys are qualified names, values valid label values."""
    for key, value in labels.items():
        key_path: Path = (*path, Key(key))
        if msgs := names.is_qualified_name(key):
            out.problem(
                Code.INVALID_LABEL,
                f'invalid label key "{key}": {"; ".join(msgs)}',
                key_path,
                at_key=True,
            )
        if msgs := names.is_valid_label_value(value):
            out.problem(
                Code.INVALID_LABEL, f'invalid label value "{value}": {"; ".join(msgs)}', key_path
            )


def validate_label_selector(selector: LabelSelector, path: Path, out: Decoder) -> None:
    """``ValidateLabelSelector`` with ``AllowInvalidLabelValueInSelector`` off."""
    labels = selector.match_labels or {}
    key = ("selector", tuple(labels.items()), selector.match_expressions)
    out.validate_once(key, lambda: _validate_label_selector(selector, labels, path, out))


def _validate_label_selector(
    selector: LabelSelector, labels: Mapping[str, str], path: Path, out: Decoder
) -> None:
    validate_labels(labels, (*path, "matchLabels"), out)
    for i, req in enumerate(selector.match_expressions or ()):
        req_path: Path = (*path, "matchExpressions", i)
        values = req.values or ()
        if req.operator in ("In", "NotIn"):
            if not values:
                out.problem(
                    Code.INVALID_SELECTOR,
                    "must be specified when `operator` is 'In' or 'NotIn'",
                    (*req_path, "values"),
                    f"list the values, e.g. `values: [a, b]`, or use `operator: "
                    f"{'Exists' if req.operator == 'In' else 'DoesNotExist'}`",
                )
        elif req.operator in ("Exists", "DoesNotExist"):
            if values:
                out.problem(
                    Code.INVALID_SELECTOR,
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    (*req_path, "values"),
                    "remove `values`, or use `operator: In`/`NotIn`",
                )
        else:
            guess = did_you_mean(req.operator, OPERATORS)
            out.problem(
                Code.INVALID_SELECTOR,
                f'"{req.operator}": not a valid selector operator '
                f"(In, NotIn, Exists, DoesNotExist)",
                (*req_path, "operator"),
                f'did you mean "{guess}"?' if guess else None,
            )
        if not req.key:
            out.problem(Code.REQUIRED, "key is required", (*req_path, "key"))
        elif msgs := names.is_qualified_name(req.key):
            out.problem(
                Code.INVALID_LABEL,
                f'invalid label key "{req.key}": {"; ".join(msgs)}',
                (*req_path, "key"),
            )
        for j, value in enumerate(values):
            if msgs := names.is_valid_label_value(value):
                out.problem(
                    Code.INVALID_LABEL,
                    f'invalid label value "{value}": {"; ".join(msgs)}',
                    (*req_path, "values", j),
                )


def validate_port(port: NetworkPolicyPort, path: Path, out: Decoder) -> None:
    """``ValidateNetworkPolicyPort``."""
    key = ("port", port)
    out.validate_once(key, lambda: _validate_port(port, path, out))


def _validate_port(port: NetworkPolicyPort, path: Path, out: Decoder) -> None:
    if port.protocol is not None and port.protocol not in PROTOCOLS:
        hint = None
        if port.protocol.upper() in PROTOCOLS:
            hint = f'protocols are upper case: "{port.protocol.upper()}"'
        out.problem(
            Code.INVALID_PROTOCOL,
            f'unsupported value "{port.protocol}": supported values: "TCP", "UDP", "SCTP"',
            (*path, "protocol"),
            hint,
        )
    if port.port is None:
        if port.end_port is not None:
            out.problem(
                Code.INVALID_PORT,
                "may not be specified when `port` is not specified",
                (*path, "endPort"),
            )
        return
    if isinstance(port.port, int):
        for msg in names.is_valid_port_num(port.port):
            out.problem(Code.INVALID_PORT, f"{port.port}: {msg}", (*path, "port"))
        if port.end_port is not None:
            if port.end_port < port.port:
                out.problem(
                    Code.INVALID_PORT,
                    f"{port.end_port}: must be greater than or equal to `port` ({port.port})",
                    (*path, "endPort"),
                )
            for msg in names.is_valid_port_num(port.end_port):
                out.problem(Code.INVALID_PORT, f"{port.end_port}: {msg}", (*path, "endPort"))
        return
    if port.end_port is not None:
        out.problem(
            Code.INVALID_PORT,
            "may not be specified when `port` is non-numeric",
            (*path, "endPort"),
            "a port range needs a numeric `port`",
        )
    msgs = names.is_valid_port_name(port.port)
    if msgs and port.port.strip().isdigit():
        out.problem(
            Code.INVALID_PORT,
            f'"{port.port}" is a string, so it is read as a port name, and a port name must '
            f"contain a letter",
            (*path, "port"),
            f"remove the quotes: `port: {port.port.strip()}`",
        )
        return
    if msgs:
        lower = port.port.lower()
        out.problem(
            Code.INVALID_PORT,
            f'invalid port name "{port.port}": {"; ".join(msgs)}',
            (*path, "port"),
            f'port names are lower case: "{lower}"'
            if lower != port.port and not names.is_valid_port_name(lower)
            else None,
        )


def validate_peer(peer: NetworkPolicyPeer, path: Path, out: Decoder) -> None:
    """``ValidateNetworkPolicyPeer``: at least one selector, and ipBlock alone."""
    count = 0
    if peer.pod_selector is not None:
        count += 1
        validate_label_selector(peer.pod_selector, (*path, "podSelector"), out)
    if peer.namespace_selector is not None:
        count += 1
        validate_label_selector(peer.namespace_selector, (*path, "namespaceSelector"), out)
    if peer.ip_block is not None:
        count += 1
        validate_ip_block(peer.ip_block, (*path, "ipBlock"), out)
    if count == 0:
        out.problem(
            Code.REQUIRED,  # field.Required in the API server
            "must specify a peer (podSelector, namespaceSelector or ipBlock)",
            path,
            "to allow every source or destination, leave `from:`/`to:` out (or empty)",
        )
    elif count > 1 and peer.ip_block is not None:
        out.problem(
            Code.INVALID_PEER,
            "may not specify both ipBlock and another peer",
            path,
            "put the ipBlock in a list item of its own (items are ORed)",
        )


def validate_ip_block(block: IPBlock, path: Path, out: Decoder) -> None:
    """``ValidateIPBlock``: a valid cidr, and every except a strict subset of it."""
    key = ("ipBlock", block.cidr, block.except_)
    out.validate_once(key, lambda: _validate_ip_block(block, path, out))


def _validate_ip_block(block: IPBlock, path: Path, out: Decoder) -> None:
    if not block.cidr:
        out.problem(Code.REQUIRED, "cidr is required", (*path, "cidr"))
        return
    parsed = names.parse_cidr(block.cidr)
    if parsed is None:
        out.problem(
            Code.INVALID_CIDR,
            f'"{block.cidr}": not a valid CIDR',
            (*path, "cidr"),
            _cidr_hint(block.cidr),
        )
        return
    cidr = parsed.network
    for warning in parsed.warnings:
        out.problem(
            Code.CIDR_HOST_BITS,
            f'"{block.cidr}" {warning}',
            (*path, "cidr"),
            severity=Severity.WARNING,
        )
    for i, text in enumerate(block.except_ or ()):
        e_path: Path = (*path, "except", i)
        exc = names.parse_cidr(text)
        if exc is None:
            out.problem(Code.INVALID_CIDR, f'"{text}": not a valid CIDR', e_path, _cidr_hint(text))
            continue
        for warning in exc.warnings:
            out.problem(
                Code.CIDR_HOST_BITS, f'"{text}" {warning}', e_path, severity=Severity.WARNING
            )
        net = exc.network
        strict_subset = f"must be a strict subset of cidr {cidr}"
        if net.version != cidr.version:
            out.problem(
                Code.INVALID_EXCEPT,
                strict_subset,
                e_path,
                f"{net} is IPv{net.version}, the cidr IPv{cidr.version}",
            )
        elif net.ip not in cidr:
            out.problem(Code.INVALID_EXCEPT, strict_subset, e_path, f"{net} lies outside {cidr}")
        elif parsed.mask_bits >= exc.mask_bits:
            # The API server compares prefix lengths as written (an IPv4-mapped IPv6 CIDR
            # counts 96 more bits), exactly like this.
            hint = f"{net} is not smaller than the cidr; to exclude all of it, drop the ipBlock"
            if parsed.mapped != exc.mapped:
                hint = (
                    f"the API server compares prefix lengths as written, /{exc.mask_bits} "
                    f"against /{parsed.mask_bits}; write both in the same form, e.g. "
                    f"cidr: {cidr}"
                )
            out.problem(Code.INVALID_EXCEPT, strict_subset, e_path, hint)


def _cidr_hint(text: str) -> str | None:
    if "/" not in text and names.parse_ip(text)[0] is not None:
        ip = names.parse_ip(text)[0]
        return f"add a prefix length: {text}/{32 if ip is not None and ip.version == 4 else 128}"
    return "a CIDR is an address and a prefix length, e.g. 10.0.0.0/8 or fd00::/64"
