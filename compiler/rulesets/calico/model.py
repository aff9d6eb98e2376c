"""Calico policy objects read back from YAML: typed, validated, ready to evaluate.

Reads ``projectcalico.org/v3`` ``GlobalNetworkPolicy``, ``NetworkPolicy`` and ``Tier``
objects (single documents, multi-document streams and ``List`` wrappers). Everything the
evaluator cannot decide from a cluster snapshot and a flow (source ports, service accounts,
services, HTTP matches, host-endpoint options) is refused with :class:`CalicoFormatError`
rather than ignored, so a reading never silently widens or narrows a policy.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import netaddr
import yaml

from npc.rulesets.calico.selector import Node, SelectorSyntaxError, parse_selector

__all__ = [
    "PROTOCOL_NUMBERS",
    "CalicoFormatError",
    "CalicoObjects",
    "CalicoPolicy",
    "CalicoRule",
    "EntityRule",
    "PortMatch",
    "Tier",
    "load_objects",
    "merge_objects",
    "parse_objects",
]

API_VERSION = "projectcalico.org/v3"
DEFAULT_TIER = "default"
#: Calico's built-in default tier sits at this order (tiers with lower orders run first).
DEFAULT_TIER_ORDER = 1_000_000.0

#: Calico protocol names and their IANA numbers.
PROTOCOL_NUMBERS: Mapping[str, int] = MappingProxyType(
    {
        "TCP": 6,
        "UDP": 17,
        "ICMP": 1,
        "ICMPv6": 58,
        "SCTP": 132,
        "UDPLite": 136,
    }
)
_ACTIONS = ("Allow", "Deny", "Log", "Pass")
_TYPES = ("Ingress", "Egress")


class CalicoFormatError(ValueError):
    """A Calico object that is malformed, or uses something the evaluator cannot model.

    ``document`` (its index in the stream) and ``path`` (``items[2].spec.ingress[0]``) say
    where, so a reader can give the error a file position; ``message`` is the bare text."""

    def __init__(
        self, where: str, message: str, *, document: int | None = None, path: str = ""
    ) -> None:
        self.where = where
        self.message = message
        self.document = document
        self.path = path
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True, slots=True)
class PortMatch:
    """One entry of ``ports``: an inclusive numeric range, or a named port."""

    start: int = 0
    end: int = 0
    name: str | None = None

    def matches(self, port: int, names: Iterable[str]) -> bool:
        if self.name is not None:
            return self.name in names
        return self.start <= port <= self.end


@dataclass(frozen=True, slots=True)
class EntityRule:
    """A rule's ``source`` or ``destination``; absent fields match everything."""

    nets: tuple[netaddr.IPNetwork, ...] = ()
    not_nets: tuple[netaddr.IPNetwork, ...] = ()
    selector: Node | None = None
    not_selector: Node | None = None
    namespace_selector: Node | None = None
    ports: tuple[PortMatch, ...] = ()
    not_ports: tuple[PortMatch, ...] = ()


@dataclass(frozen=True, slots=True)
class CalicoRule:
    """One rule; ``protocol``/``not_protocol`` are IANA numbers."""

    action: str
    protocol: int | None = None
    not_protocol: int | None = None
    ip_version: int | None = None
    source: EntityRule = EntityRule()
    destination: EntityRule = EntityRule()


@dataclass(frozen=True, slots=True)
class CalicoPolicy:
    """A ``GlobalNetworkPolicy`` (``namespace`` None) or a namespaced ``NetworkPolicy``."""

    kind: str
    name: str
    namespace: str | None
    tier: str
    order: float
    selector: Node
    namespace_selector: Node | None
    types: frozenset[str]
    ingress: tuple[CalicoRule, ...]
    egress: tuple[CalicoRule, ...]
    #: (source index, document index, path of the object in its document) when read.
    origin: tuple[int, int, str] | None = field(default=None, compare=False)

    @property
    def key(self) -> str:
        return self.name if self.namespace is None else f"{self.namespace}/{self.name}"

    def rules(self, direction: str) -> tuple[CalicoRule, ...]:
        """``Ingress`` or ``Egress`` rules."""
        return self.ingress if direction == "Ingress" else self.egress


@dataclass(frozen=True, slots=True)
class Tier:
    """A Calico tier: policies of lower ``order`` tiers are evaluated first."""

    name: str
    order: float
    default_action: str = "Deny"


@dataclass(frozen=True, slots=True)
class CalicoObjects:
    """Everything read: policies and tiers (the default tier is always there)."""

    policies: tuple[CalicoPolicy, ...]
    tiers: tuple[Tier, ...]


# -- reading ------------------------------------------------------------------------------


class _Reader:
    """Field access with a path for error messages."""

    def __init__(self, where: str, document: int | None = None, prefix: str = "") -> None:
        self.where = where
        self.document = document
        self.prefix = prefix

    def fail(self, path: str, message: str) -> CalicoFormatError:
        full = f"{self.prefix}.{path}" if self.prefix and path else self.prefix or path
        return CalicoFormatError(
            f"{self.where}: {path}" if path else self.where,
            message,
            document=self.document,
            path=full,
        )

    def mapping(self, value: object, path: str) -> Mapping[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.fail(path, "must be a mapping")
        return value

    def strings(self, value: object, path: str) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(path, "must be a list of strings")
        return value

    def selector(self, value: object, path: str) -> Node | None:
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise self.fail(path, "must be a selector string")
        try:
            return parse_selector(value)
        except SelectorSyntaxError as exc:
            raise self.fail(path, str(exc)) from None

    def nets(self, value: object, path: str) -> tuple[netaddr.IPNetwork, ...]:
        out = []
        for i, text in enumerate(self.strings(value, path)):
            try:
                # Calico masks host bits (NormalizeIPNets); a bare address is a /32 or /128.
                out.append(netaddr.IPNetwork(text).cidr)
            except (netaddr.AddrFormatError, ValueError, TypeError):
                raise self.fail(f"{path}[{i}]", f"invalid CIDR {text!r}") from None
        return tuple(out)

    def protocol(self, value: object, path: str) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool):
            raise self.fail(path, "must be a protocol name or number")
        if isinstance(value, int):
            number = value
        elif isinstance(value, str) and value in PROTOCOL_NUMBERS:
            number = PROTOCOL_NUMBERS[value]
        elif isinstance(value, str) and value.isdigit():
            number = int(value)
        else:
            raise self.fail(path, f"unknown protocol {value!r}")
        if not 1 <= number <= 255:
            raise self.fail(path, f"protocol number {number} is outside 1-255")
        return number

    def ports(self, value: object, path: str) -> tuple[PortMatch, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            raise self.fail(path, "must be a list")
        return tuple(self.port(v, f"{path}[{i}]") for i, v in enumerate(value))

    def port(self, value: object, path: str) -> PortMatch:
        if isinstance(value, int) and not isinstance(value, bool):
            if not 0 <= value <= 65535:
                raise self.fail(path, f"port {value} is outside 0-65535")
            return PortMatch(value, value)
        if not isinstance(value, str) or not value:
            raise self.fail(path, "must be a port number, a range 'a:b' or a port name")
        head, sep, tail = value.partition(":")
        if head.isdigit() and (not sep or tail.isdigit()):
            start, end = int(head), int(tail) if sep else int(head)
            if not 0 <= start <= end <= 65535:
                raise self.fail(path, f"invalid port range {value!r}")
            return PortMatch(start, end)
        if sep:
            raise self.fail(path, f"invalid port range {value!r}")
        return PortMatch(name=value)


_ENTITY_FIELDS = frozenset(
    ("nets", "notNets", "selector", "notSelector", "namespaceSelector", "ports", "notPorts")
)
_UNMODELLED_ENTITY = {
    "serviceAccounts": "service accounts are not in the cluster snapshot",
    "services": "service matches are not modelled",
}
_RULE_FIELDS = frozenset(
    (
        "action",
        "protocol",
        "notProtocol",
        "ipVersion",
        "icmp",
        "notICMP",
        "source",
        "destination",
        "metadata",
    )
)


def _entity(r: _Reader, value: object, path: str, *, source: bool) -> EntityRule:
    data = r.mapping(value, path)
    for key in data:
        if key in _UNMODELLED_ENTITY:
            raise r.fail(f"{path}.{key}", f"cannot be evaluated: {_UNMODELLED_ENTITY[key]}")
        if key not in _ENTITY_FIELDS:
            raise r.fail(f"{path}.{key}", "unknown field")
    if source and (data.get("ports") or data.get("notPorts")):
        raise r.fail(f"{path}.ports", "source ports cannot be evaluated (flows carry none)")
    return EntityRule(
        nets=r.nets(data.get("nets"), f"{path}.nets"),
        not_nets=r.nets(data.get("notNets"), f"{path}.notNets"),
        selector=r.selector(data.get("selector"), f"{path}.selector"),
        not_selector=r.selector(data.get("notSelector"), f"{path}.notSelector"),
        namespace_selector=r.selector(data.get("namespaceSelector"), f"{path}.namespaceSelector"),
        ports=r.ports(data.get("ports"), f"{path}.ports"),
        not_ports=r.ports(data.get("notPorts"), f"{path}.notPorts"),
    )


def _rule(r: _Reader, value: object, path: str) -> CalicoRule:
    data = r.mapping(value, path)
    for key in data:
        if key == "http":
            raise r.fail(f"{path}.http", "HTTP matches cannot be evaluated")
        if key not in _RULE_FIELDS:
            raise r.fail(f"{path}.{key}", "unknown field")
    action = data.get("action")
    if action not in _ACTIONS:
        raise r.fail(f"{path}.action", f"must be one of {', '.join(_ACTIONS)}, not {action!r}")
    ip_version = data.get("ipVersion")
    if ip_version not in (None, 4, 6):
        raise r.fail(f"{path}.ipVersion", "must be 4 or 6")
    rule = CalicoRule(
        action=str(action),
        protocol=r.protocol(data.get("protocol"), f"{path}.protocol"),
        not_protocol=r.protocol(data.get("notProtocol"), f"{path}.notProtocol"),
        ip_version=ip_version,
        source=_entity(r, data.get("source"), f"{path}.source", source=True),
        destination=_entity(r, data.get("destination"), f"{path}.destination", source=False),
    )
    if (rule.destination.ports or rule.destination.not_ports) and rule.protocol not in (
        6,
        17,
        132,
    ):
        raise r.fail(f"{path}.protocol", "ports need protocol TCP, UDP or SCTP")
    return rule


def _types(r: _Reader, spec: Mapping[str, Any], path: str) -> frozenset[str]:
    given = spec.get("types")
    if given is None:
        # Calico's defaulting: Ingress unless the policy has only egress rules.
        types = {"Egress"} if spec.get("egress") else set()
        if spec.get("ingress") or not spec.get("egress"):
            types.add("Ingress")
        return frozenset(types)
    values = r.strings(given, f"{path}.types")
    bad = [t for t in values if t not in _TYPES]
    if bad or not values:
        raise r.fail(f"{path}.types", "must list Ingress and/or Egress")
    return frozenset(values)


_GLOBAL_ONLY = ("doNotTrack", "preDNAT", "applyOnForward")
_SPEC_FIELDS = frozenset(
    (
        "tier",
        "order",
        "selector",
        "namespaceSelector",
        "types",
        "ingress",
        "egress",
        "performanceHints",
        *_GLOBAL_ONLY,
    )
)


def _policy(
    obj: Mapping[str, Any], where: str, origin: tuple[int, int, str] | None = None
) -> CalicoPolicy:
    r = _Reader(where, origin[1], origin[2]) if origin else _Reader(where)
    kind = str(obj["kind"])
    meta = r.mapping(obj.get("metadata"), "metadata")
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        raise r.fail("metadata.name", "is required")
    namespace = meta.get("namespace") if kind == "NetworkPolicy" else None
    if kind == "NetworkPolicy" and not isinstance(namespace, str):
        namespace = "default"
    spec = r.mapping(obj.get("spec"), "spec")
    for key in spec:
        if key == "serviceAccountSelector":
            raise r.fail("spec.serviceAccountSelector", "service accounts are not modelled")
        if key not in _SPEC_FIELDS or (kind == "NetworkPolicy" and key == "namespaceSelector"):
            raise r.fail(f"spec.{key}", "unknown field")
    for key in _GLOBAL_ONLY:
        if spec.get(key):
            raise r.fail(f"spec.{key}", "host-endpoint policy options are not modelled")
    order = spec.get("order")
    if order is not None and (isinstance(order, bool) or not isinstance(order, int | float)):
        raise r.fail("spec.order", "must be a number")
    tier = spec.get("tier") or DEFAULT_TIER
    if not isinstance(tier, str):
        raise r.fail("spec.tier", "must be a string")
    return CalicoPolicy(
        kind=kind,
        name=name,
        namespace=namespace,
        tier=tier,
        order=math.inf if order is None else float(order),
        selector=r.selector(spec.get("selector"), "spec.selector") or parse_selector(""),
        namespace_selector=r.selector(spec.get("namespaceSelector"), "spec.namespaceSelector"),
        types=_types(r, spec, "spec"),
        ingress=tuple(
            _rule(r, v, f"spec.ingress[{i}]") for i, v in enumerate(spec.get("ingress") or ())
        ),
        egress=tuple(
            _rule(r, v, f"spec.egress[{i}]") for i, v in enumerate(spec.get("egress") or ())
        ),
        origin=origin,
    )


def _tier(obj: Mapping[str, Any], where: str, document: int, prefix: str) -> Tier:
    r = _Reader(where, document, prefix)
    name = r.mapping(obj.get("metadata"), "metadata").get("name")
    spec = r.mapping(obj.get("spec"), "spec")
    order = spec.get("order")
    action = spec.get("defaultAction", "Deny")
    if not isinstance(name, str) or not name:
        raise r.fail("metadata.name", "is required")
    if action not in ("Deny", "Pass"):
        raise r.fail("spec.defaultAction", "must be Deny or Pass")
    if order is not None and (isinstance(order, bool) or not isinstance(order, int | float)):
        raise r.fail("spec.order", "must be a number")
    return Tier(name, math.inf if order is None else float(order), str(action))


def _flatten(docs: Iterable[object]) -> Iterator[tuple[int, str, Mapping[str, Any]]]:
    """(document index, path of the object in it, object) for every object."""
    for index, doc in enumerate(docs):
        if doc is None:
            continue
        if not isinstance(doc, Mapping):
            raise CalicoFormatError(f"document {index}", "must be a mapping", document=index)
        if str(doc.get("kind", "")).endswith("List") and isinstance(doc.get("items"), list):
            for i, item in enumerate(doc["items"]):
                if not isinstance(item, Mapping):
                    raise CalicoFormatError(
                        f"document {index}",
                        "list items must be mappings",
                        document=index,
                        path=f"items[{i}]",
                    )
                yield index, f"items[{i}]", item
        else:
            yield index, "", doc


def parse_objects(docs: Iterable[object], source: int = 0) -> CalicoObjects:
    """Typed objects from already-parsed YAML/JSON documents (``source`` numbers the input
    they came from, recorded in each policy's ``origin``)."""
    policies: list[CalicoPolicy] = []
    tiers = {DEFAULT_TIER: Tier(DEFAULT_TIER, DEFAULT_TIER_ORDER)}
    for index, prefix, obj in _flatten(docs):
        kind = obj.get("kind")
        name = (obj.get("metadata") or {}).get("name", "?")
        where = f"document {index} ({kind} {name})"
        if obj.get("apiVersion") != API_VERSION:
            raise CalicoFormatError(
                where,
                f"apiVersion must be {API_VERSION}",
                document=index,
                path=_join(prefix, "apiVersion"),
            )
        if kind in ("GlobalNetworkPolicy", "NetworkPolicy"):
            policies.append(_policy(obj, where, (source, index, prefix)))
        elif kind == "Tier":
            tier = _tier(obj, where, index, prefix)
            tiers[tier.name] = tier
        else:
            raise CalicoFormatError(
                where, f"kind {kind!r} is not modelled", document=index, path=_join(prefix, "kind")
            )
    return merge_objects([CalicoObjects(tuple(policies), tuple(tiers.values()))])


def merge_objects(parts: Iterable[CalicoObjects]) -> CalicoObjects:
    """The objects of several inputs as one (every policy's tier must exist in some part)."""
    builtin = Tier(DEFAULT_TIER, DEFAULT_TIER_ORDER)
    policies: list[CalicoPolicy] = []
    tiers = {DEFAULT_TIER: builtin}
    for part in parts:
        policies.extend(part.policies)
        tiers.update((t.name, t) for t in part.tiers if t != builtin)
    for p in policies:
        if p.tier not in tiers:
            document, path = (
                (p.origin[1], _join(p.origin[2], "spec.tier")) if p.origin else (None, "")
            )
            raise CalicoFormatError(
                p.key, f"tier {p.tier!r} does not exist", document=document, path=path
            )
    return CalicoObjects(tuple(policies), tuple(sorted(tiers.values(), key=lambda t: t.name)))


def _join(prefix: str, path: str) -> str:
    return f"{prefix}.{path}" if prefix else path


def load_objects(text: str) -> CalicoObjects:
    """Typed objects from YAML text (one or more documents, ``List`` wrappers allowed)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present
    try:
        docs = list(yaml.load_all(text, Loader=loader))
    except yaml.YAMLError as exc:
        raise CalicoFormatError("input", f"invalid YAML: {exc}") from None
    return parse_objects(docs)
