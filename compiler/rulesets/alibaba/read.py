"""Reading security groups and PodNetworkings into :mod:`npc.rulesets.alibaba.model`.

Three inputs, all JSON:

* npc's own output (``npc compile --target alibaba``): :func:`read_ruleset`;
* what ECS returns for a group, the body of ``DescribeSecurityGroupAttribute`` (one object or a
  list of them), with the group's ``SecurityGroupType`` from ``DescribeSecurityGroups`` added,
  since the body does not say whether a group is basic or advanced: :func:`read_groups`;
* the PodNetworkings a cluster holds (``kubectl get podnetworkings -o json``, a ``List`` or
  one object): :func:`read_pod_networkings`.

Rule fields are the API's own (``Policy``, ``Priority``, ``IpProtocol``, ``PortRange``,
``SourceCidrIp``...; AuthorizeSecurityGroup and DescribeSecurityGroupAttribute in the ECS API
reference, 2014-05-26). What the evaluator cannot decide from addresses, protocol and
destination port (group or prefix-list references, port lists, source ports, public NICs,
basic groups with their implicit intra-group access) is refused with
:class:`AlibabaFormatError` at ``file:line:col``, never skipped: an ignored rule could hide a
hole or invent one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import netaddr
import yaml

from npc import ir
from npc.rulesets.alibaba.model import (
    Action,
    LabelChange,
    Permission,
    PodNetworking,
    Protocol,
    Ruleset,
    SecurityGroup,
    Where,
)

__all__ = ["AlibabaFormatError", "read_groups", "read_pod_networkings", "read_ruleset"]

_PROTOCOL_NUMBERS = {"6": Protocol.TCP, "17": Protocol.UDP, "132": Protocol.SCTP}
_PROTOCOL_NAMES = {p.value: p for p in Protocol if p is not Protocol.OTHER}
#: Fields that name something other than addresses, which the evaluator cannot resolve.
_UNMODELLED = (
    "SourceGroupId",
    "DestGroupId",
    "SourcePrefixListId",
    "DestPrefixListId",
    "PortRangeListId",
    "SourceGroupOwnerAccount",
    "SourceGroupOwnerId",
    "DestGroupOwnerAccount",
    "DestGroupOwnerId",
)
#: Read-only fields DescribeSecurityGroupAttribute adds; they do not change a rule's meaning.
_INFORMATIONAL = (
    "CreateTime",
    "SecurityGroupRuleId",
    "SourceGroupName",
    "DestGroupName",
    "SourcePrefixListName",
    "DestPrefixListName",
    "PortRangeListName",
)
_RULE_FIELDS = frozenset(
    (
        "Policy",
        "Priority",
        "IpProtocol",
        "PortRange",
        "SourceCidrIp",
        "Ipv6SourceCidrIp",
        "DestCidrIp",
        "Ipv6DestCidrIp",
        "Description",
        "NicType",
        "SourcePortRange",
        "Direction",
        *_UNMODELLED,
        *_INFORMATIONAL,
    )
)
_PODNETWORKING_API = "network.alibabacloud.com/v1beta1"


class AlibabaFormatError(ValueError):
    """A ruleset that is malformed, or uses something the evaluator cannot model."""

    def __init__(self, where: Where, message: str) -> None:
        self.where = where
        super().__init__(f"{where}: {message}")


# -- JSON with positions --------------------------------------------------------------------


class _Doc:
    """Parsed JSON, and the position of every value, found when first asked for (through
    YAML's composer, which reads JSON and records marks: slow on a large document, so only
    an error or a caller asking pays for it); paths look like ``securityGroups[0].ingress[2]``."""

    def __init__(self, text: str, file: str) -> None:
        self.file = file
        self._source = text
        try:
            self.data: Any = json.loads(text)
        except json.JSONDecodeError as exc:
            raise AlibabaFormatError(
                Where(file, known=(exc.lineno, exc.colno)), f"not valid JSON: {exc.msg}"
            ) from None
        self._marks: dict[str, tuple[int, int]] | None = None

    def _walk(self, node: yaml.Node, path: str, marks: dict[str, tuple[int, int]]) -> None:
        marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                self._walk(value, f"{path}.{key.value}" if path else str(key.value), marks)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._walk(item, f"{path}[{i}]", marks)

    def locate(self, path: str) -> tuple[int, int]:
        """``path``'s (line, column), or that of the nearest enclosing value (a missing field
        is reported where its object starts)."""
        if self._marks is None:
            self._marks = {}
            try:
                node = yaml.compose(
                    self._source, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)
                )
            except yaml.YAMLError:
                node = None  # valid JSON that YAML cannot compose (rare): no positions
            if node is not None:
                self._walk(node, "", self._marks)
        probe = path
        while probe not in self._marks and probe:
            cut = max(probe.rfind("."), probe.rfind("["))
            probe = probe[:cut] if cut > 0 else ""
        return self._marks.get(probe, (0, 0))

    def where(self, path: str) -> Where:
        return Where(self.file, path, locate=self.locate)

    def fail(self, path: str, message: str) -> AlibabaFormatError:
        return AlibabaFormatError(self.where(path), message)

    def mapping(self, value: Any, path: str) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, "expected an object")
        return value

    def items(self, value: Any, path: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(path, "expected a list")
        return value

    def text(self, value: Any, path: str, *, empty: bool = False) -> str:
        if not isinstance(value, str) or (not empty and not value):
            raise self.fail(
                path, "expected a non-empty string" if not empty else "expected a string"
            )
        return value


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


# -- rules ----------------------------------------------------------------------------------


def _present(rule: Mapping[str, Any], key: str) -> bool:
    """DescribeSecurityGroupAttribute returns absent fields as empty strings."""
    return rule.get(key) not in (None, "")


def _network(doc: _Doc, value: Any, path: str, version: int) -> netaddr.IPNetwork:
    text = doc.text(value, path)
    try:
        network = netaddr.IPNetwork(text)
    except (netaddr.AddrFormatError, ValueError, TypeError):
        raise doc.fail(path, f"{text!r} is not a CIDR block or address") from None
    if network.version != version:
        raise doc.fail(path, f"{text!r} is not an IPv{version} block")
    return network.cidr


def _ports(doc: _Doc, value: Any, path: str, protocol: Protocol) -> tuple[int, int] | None:
    text = doc.text(value, path)
    start, sep, end = text.partition("/")
    try:
        lo, hi = int(start), int(end)
    except ValueError:
        raise doc.fail(path, f"{text!r} is not a port range like 80/80 or -1/-1") from None
    if not sep:
        raise doc.fail(path, f"{text!r} is not a port range like 80/80 or -1/-1")
    if protocol in (Protocol.TCP, Protocol.UDP, Protocol.SCTP):
        if not 1 <= lo <= hi <= 65535:
            raise doc.fail(
                path, f"{text!r}: {protocol} needs start/end with 1 <= start <= end <= 65535"
            )
        return (lo, hi)
    if (lo, hi) != (-1, -1):
        raise doc.fail(path, f"{text!r}: {protocol} rules take -1/-1 (every port)")
    return None


def _protocol(doc: _Doc, value: Any, path: str) -> Protocol:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    text = doc.text(value, path)
    if text.isdigit():
        if not 0 <= int(text) <= 255:
            raise doc.fail(path, f"{text!r} is not an IANA protocol number (0-255)")
        return _PROTOCOL_NUMBERS.get(str(int(text)), Protocol.OTHER)
    found = _PROTOCOL_NAMES.get(text.upper())
    if found is None:
        raise doc.fail(path, f"unknown IpProtocol {text!r} (TCP, UDP, ICMP, ICMPv6, GRE, ALL)")
    return found


def _priority(doc: _Doc, rule: Mapping[str, Any], path: str) -> int:
    if not _present(rule, "Priority"):
        return 1  # the API's default
    value = rule["Priority"]
    try:
        number = int(value) if not isinstance(value, bool) else -1
    except (TypeError, ValueError):
        number = -1
    if not 1 <= number <= 100:
        raise doc.fail(_join(path, "Priority"), f"{value!r}: Priority is 1 to 100")
    return number


def _permission(doc: _Doc, value: Any, path: str, direction: ir.Direction) -> Permission:
    rule = doc.mapping(value, path)
    for key in rule:
        if key not in _RULE_FIELDS:
            raise doc.fail(_join(path, key), f"unknown rule field {key!r}")
    for key in _UNMODELLED:
        if _present(rule, key):
            raise doc.fail(
                _join(path, key),
                f"{key}: rules naming groups, prefix lists or port lists cannot be evaluated "
                "from addresses",
            )
    if _present(rule, "Direction") and rule["Direction"] != str(direction):
        raise doc.fail(_join(path, "Direction"), f"expected {str(direction)!r}")
    if _present(rule, "NicType") and rule["NicType"] != "intranet":
        raise doc.fail(_join(path, "NicType"), "only intranet (VPC) rules can be evaluated")
    if _present(rule, "SourcePortRange") and rule["SourcePortRange"] not in ("-1/-1", "1/65535"):
        raise doc.fail(_join(path, "SourcePortRange"), "rules on source ports cannot be evaluated")
    policy = rule.get("Policy") or "accept"
    if not isinstance(policy, str) or policy.lower() not in ("accept", "drop"):
        raise doc.fail(_join(path, "Policy"), f"{policy!r}: Policy is accept or drop")
    if "IpProtocol" not in rule:
        raise doc.fail(path, "IpProtocol is required")
    protocol = _protocol(doc, rule["IpProtocol"], _join(path, "IpProtocol"))
    if "PortRange" not in rule:
        raise doc.fail(path, "PortRange is required")
    ports = _ports(doc, rule["PortRange"], _join(path, "PortRange"), protocol)
    remote_keys, local_keys = ("SourceCidrIp", "Ipv6SourceCidrIp"), ("DestCidrIp", "Ipv6DestCidrIp")
    if direction is ir.Direction.EGRESS:
        remote_keys, local_keys = local_keys, remote_keys
    remote = _address_field(doc, rule, path, remote_keys, required=True)
    local = _address_field(doc, rule, path, local_keys, required=False)
    assert remote is not None
    if local is not None and local.version != remote.version:
        raise doc.fail(path, "source and destination blocks of different address families")
    description = rule.get("Description") or ""
    return Permission(
        direction,
        Action(policy.lower()),
        _priority(doc, rule, path),
        protocol,
        ports,
        remote,
        local,
        doc.text(description, _join(path, "Description"), empty=True),
        doc.where(path),
    )


def _address_field(
    doc: _Doc, rule: Mapping[str, Any], path: str, keys: tuple[str, str], *, required: bool
) -> netaddr.IPNetwork | None:
    v4, v6 = (_present(rule, k) for k in keys)
    if v4 and v6:
        raise doc.fail(path, f"{keys[0]} and {keys[1]} exclude each other")
    if not v4 and not v6:
        if required:
            raise doc.fail(path, f"one of {keys[0]} and {keys[1]} is required")
        return None
    key = keys[0] if v4 else keys[1]
    return _network(doc, rule[key], _join(path, key), 4 if v4 else 6)


# -- selectors ------------------------------------------------------------------------------


_OPERATORS = {op.value: op for op in ir.Operator}


def _selector(doc: _Doc, value: Any, path: str) -> ir.LabelSelector | None:
    if value is None:
        return None
    sel = doc.mapping(value, path)
    for key in sel:
        if key not in ("matchLabels", "matchExpressions"):
            raise doc.fail(_join(path, key), f"unknown selector field {key!r}")
    labels: list[tuple[str, str]] = []
    for key, label in doc.mapping(sel.get("matchLabels") or {}, _join(path, "matchLabels")).items():
        labels.append((key, doc.text(label, _join(_join(path, "matchLabels"), key), empty=True)))
    terms: list[ir.Requirement] = []
    exprs_path = _join(path, "matchExpressions")
    for i, expr in enumerate(doc.items(sel.get("matchExpressions") or [], exprs_path)):
        epath = _join(exprs_path, i)
        e = doc.mapping(expr, epath)
        key = doc.text(e.get("key"), _join(epath, "key"))
        op = _OPERATORS.get(e.get("operator"))  # type: ignore[arg-type]
        if op is None:
            raise doc.fail(
                _join(epath, "operator"), "operator is In, NotIn, Exists or DoesNotExist"
            )
        values = tuple(
            doc.text(v, _join(_join(epath, "values"), j), empty=True)
            for j, v in enumerate(doc.items(e.get("values") or [], _join(epath, "values")))
        )
        if (op in (ir.Operator.IN, ir.Operator.NOT_IN)) != bool(values):
            raise doc.fail(
                _join(epath, "values"),
                "In and NotIn need values; Exists and DoesNotExist take none",
            )
        terms.append(ir.Requirement(key, op, values))
    return ir.LabelSelector(tuple(labels), tuple(terms))


# -- PodNetworkings -------------------------------------------------------------------------


def _pod_networking(doc: _Doc, value: Any, path: str) -> PodNetworking:
    obj = doc.mapping(value, path)
    if obj.get("apiVersion") != _PODNETWORKING_API or obj.get("kind") != "PodNetworking":
        raise doc.fail(path, f"expected apiVersion {_PODNETWORKING_API}, kind PodNetworking")
    meta = doc.mapping(obj.get("metadata"), _join(path, "metadata"))
    name = doc.text(meta.get("name"), _join(_join(path, "metadata"), "name"))
    spec_path = _join(path, "spec")
    spec = doc.mapping(obj.get("spec"), spec_path)
    selector = doc.mapping(spec.get("selector") or {}, _join(spec_path, "selector"))
    sel_path = _join(spec_path, "selector")
    groups_path = _join(spec_path, "securityGroupIDs")
    groups = tuple(
        doc.text(g, _join(groups_path, i))
        for i, g in enumerate(doc.items(spec.get("securityGroupIDs") or [], groups_path))
    )
    eni = doc.mapping(spec.get("eniOptions") or {}, _join(spec_path, "eniOptions"))
    return PodNetworking(
        name,
        _selector(doc, selector.get("podSelector"), _join(sel_path, "podSelector")),
        _selector(doc, selector.get("namespaceSelector"), _join(sel_path, "namespaceSelector")),
        groups,
        str(eni.get("eniType") or "Default"),
        doc.where(path),
    )


def read_pod_networkings(text: str, file: str = "<podnetworkings>") -> tuple[PodNetworking, ...]:
    """PodNetworking objects from one object or a ``List`` (``kubectl get -o json``)."""
    doc = _Doc(text, file)
    data = doc.mapping(doc.data, "")
    if data.get("kind") == "List" or "items" in data:
        return tuple(
            _pod_networking(doc, item, _join("items", i))
            for i, item in enumerate(doc.items(data.get("items"), "items"))
        )
    return (_pod_networking(doc, data, ""),)


# -- groups as ECS returns them -------------------------------------------------------------


def _group_type(doc: _Doc, value: Any, path: str) -> str:
    if value is None:
        raise doc.fail(
            path,
            "SecurityGroupType is needed (basic and advanced groups decide differently); add it "
            "from DescribeSecurityGroups",
        )
    if value != "enterprise":
        raise doc.fail(
            path,
            f"{value!r}: only advanced (enterprise) groups are modelled; basic groups allow "
            "traffic inside the group and outbound by default",
        )
    return "enterprise"


def _described_group(doc: _Doc, value: Any, path: str) -> SecurityGroup:
    body = doc.mapping(value, path)
    group_id = doc.text(body.get("SecurityGroupId"), _join(path, "SecurityGroupId"))
    group_type = _group_type(doc, body.get("SecurityGroupType"), _join(path, "SecurityGroupType"))
    policy = body.get("InnerAccessPolicy")
    if policy not in (None, "Drop"):
        raise doc.fail(
            _join(path, "InnerAccessPolicy"),
            "only groups isolating their members (Drop) are modelled",
        )
    perms_path = _join(path, "Permissions")
    perms = doc.mapping(body.get("Permissions") or {"Permission": []}, perms_path)
    list_path = _join(perms_path, "Permission")
    permissions = []
    for i, item in enumerate(doc.items(perms.get("Permission") or [], list_path)):
        rule_path = _join(list_path, i)
        rule = doc.mapping(item, rule_path)
        direction = rule.get("Direction")
        if direction not in ("ingress", "egress"):
            raise doc.fail(_join(rule_path, "Direction"), "Direction is ingress or egress")
        permissions.append(_permission(doc, rule, rule_path, ir.Direction(direction)))
    name = body.get("SecurityGroupName") or group_id
    return SecurityGroup(group_id, str(name), tuple(permissions), group_type, (), doc.where(path))


def read_groups(text: str, file: str = "<groups>") -> tuple[SecurityGroup, ...]:
    """Groups from DescribeSecurityGroupAttribute bodies (one, or a list), each with the
    ``SecurityGroupType`` DescribeSecurityGroups reports for it."""
    doc = _Doc(text, file)
    if isinstance(doc.data, list):
        return tuple(_described_group(doc, item, f"[{i}]") for i, item in enumerate(doc.data))
    return (_described_group(doc, doc.data, ""),)


# -- npc's output ---------------------------------------------------------------------------


_GROUP_FIELDS = frozenset(
    ("name", "securityGroupType", "description", "members", "ingress", "egress", "requests")
)


def _npc_group(doc: _Doc, value: Any, path: str) -> SecurityGroup:
    """One group of npc's output. ``requests`` (the batches the deployment sends) must hold
    exactly the listed rules, in order: what is judged is what is deployed."""
    group = doc.mapping(value, path)
    for key in group:
        if key not in _GROUP_FIELDS:
            raise doc.fail(_join(path, key), f"unknown group field {key!r}")
    name = doc.text(group.get("name"), _join(path, "name"))
    group_type = _group_type(doc, group.get("securityGroupType"), _join(path, "securityGroupType"))
    requests = doc.mapping(group.get("requests") or {}, _join(path, "requests"))
    permissions: list[Permission] = []
    for direction in ir.DIRECTIONS:
        key = str(direction)
        rules_path = _join(path, key)
        listed = doc.items(group.get(key, []), rules_path)
        for i, rule in enumerate(listed):
            if _present(rule if isinstance(rule, dict) else {}, "Direction"):
                raise doc.fail(_join(_join(rules_path, i), "Direction"), "not a request field")
            permissions.append(_permission(doc, rule, _join(rules_path, i), direction))
        batches_path = _join(_join(path, "requests"), key)
        batches = doc.items(requests.get(key, []), batches_path)
        sent = []
        for i, batch in enumerate(batches):
            items = doc.items(batch, _join(batches_path, i))
            if not 1 <= len(items) <= 100:
                raise doc.fail(_join(batches_path, i), "a request takes 1 to 100 permissions")
            sent.extend(items)
        if sent != listed:
            raise doc.fail(batches_path, f"the requests do not send exactly the {key} rules listed")
    members_path = _join(path, "members")
    members = tuple(
        doc.text(m, _join(members_path, i))
        for i, m in enumerate(doc.items(group.get("members", []), members_path))
    )
    return SecurityGroup(name, name, tuple(permissions), group_type, members, doc.where(path))


def _labels(doc: _Doc, value: Any, path: str) -> Iterator[LabelChange]:
    for i, item in enumerate(doc.items(value, path)):
        ipath = _join(path, i)
        change = doc.mapping(item, ipath)
        raw = change.get("value")
        yield LabelChange(
            doc.text(change.get("namespace"), _join(ipath, "namespace")),
            doc.text(change.get("pod"), _join(ipath, "pod")),
            doc.text(change.get("key"), _join(ipath, "key")),
            None if raw is None else doc.text(raw, _join(ipath, "value"), empty=True),
        )


def read_ruleset(text: str, file: str = "<alibaba>") -> Ruleset:
    """npc's ``--target alibaba`` JSON output."""
    doc = _Doc(text, file)
    data = doc.mapping(doc.data, "")
    groups = tuple(
        _npc_group(doc, g, _join("securityGroups", i))
        for i, g in enumerate(doc.items(data.get("securityGroups", []), "securityGroups"))
    )
    keys = [g.key for g in groups]
    for i, key in enumerate(keys):
        if key in keys[:i]:
            raise doc.fail(_join(_join("securityGroups", i), "name"), f"duplicate group {key!r}")
    networkings = tuple(
        _pod_networking(doc, pn, _join("podNetworkings", i))
        for i, pn in enumerate(doc.items(data.get("podNetworkings", []), "podNetworkings"))
    )
    attachment = doc.mapping(data.get("attachment") or {}, "attachment")
    labels = tuple(_labels(doc, attachment.get("labels") or [], "attachment.labels"))
    region = data.get("regionId")
    return Ruleset(
        groups,
        networkings,
        labels,
        None if region is None else doc.text(region, "regionId"),
    )
