"""Every emitted Calico object validates against the real projectcalico.org/v3 CRD schema.

The GlobalNetworkPolicy CRD (``tests/data/calico-gnp-crd.yaml``, vendored from
``api/config/crd/projectcalico.org_globalnetworkpolicies.yaml``) is checked with jsonschema,
plus what the API server adds on top of OpenAPI:

* unknown fields are errors (``kubectl apply --validate=strict``);
* ``x-kubernetes-list-type: set`` lists hold no duplicates;
* every ``x-kubernetes-validations`` CEL rule is evaluated by a Python predicate written
  for exactly that rule text; a rule the table does not know fails the test, so a newer CRD
  cannot slip by unchecked;
* ``metadata`` as the API server checks it: name a DNS-1123 subdomain, valid labels and
  annotation keys.

The Tier CRD (``tests/data/calico-tier-crd.yaml``, vendored from
``api/config/crd/projectcalico.org_tiers.yaml``) checks the tiers emitted with
ClusterNetworkPolicies. The namespaced NetworkPolicy shares the rule and entity types; its
schema is the GNP one without the GNP-only spec fields (``namespaceSelector``,
``doNotTrack``, ``preDNAT``, ``applyOnForward``).
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

import npc
from npc import ir
from npc.frontend.k8s import names
from tests.synth import cluster_yaml, large_policy, policy_yaml, random_cluster, random_policies

DATA = Path(__file__).resolve().parent / "data"
GOLDEN = Path(__file__).resolve().parent.parent / "golden"
GNP_ONLY = ("namespaceSelector", "doNotTrack", "preDNAT", "applyOnForward")

Obj = Mapping[str, Any]


def _has(o: Obj, key: str) -> bool:
    return key in o


def _size0(o: Obj, key: str) -> bool:
    """``!has(self.k) || size(self.k) == 0``."""
    return key not in o or len(o[key]) == 0


def _is(value: object, *options: object) -> bool:
    return any(value == o and type(value) is type(o) for o in options)


def _protocol_rule(field: str, names_: tuple[str, int], version: int) -> Callable[[Obj], bool]:
    return lambda o: (
        not _has(o, field)
        or not _is(o[field], *names_)
        or o.get("ipVersion")
        in (
            None,
            version,
        )
    )


#: Each CEL rule of the CRD, as a predicate over the object it is attached to.
CEL: dict[str, Callable[[Obj], bool]] = {
    "!has(self.selector) || !self.selector.contains('global(')": lambda o: (
        "global(" not in o.get("selector", "")
    ),
    "!has(self.namespaceSelector) || !self.namespaceSelector.contains('global(')": lambda o: (
        "global(" not in o.get("namespaceSelector", "")
    ),
    "!has(self.serviceAccountSelector) || !self.serviceAccountSelector.contains('global(')": (
        lambda o: "global(" not in o.get("serviceAccountSelector", "")
    ),
    "!has(self.services) || !has(self.namespaceSelector) || size(self.namespaceSelector) == 0": (
        lambda o: not _has(o, "services") or _size0(o, "namespaceSelector")
    ),
    "!has(self.services) || !has(self.serviceAccounts)": lambda o: (
        not (_has(o, "services") and _has(o, "serviceAccounts"))
    ),
    "!has(self.services) || (!has(self.nets) || size(self.nets) == 0) && "
    "(!has(self.notNets) || size(self.notNets) == 0)": lambda o: (
        not _has(o, "services") or (_size0(o, "nets") and _size0(o, "notNets"))
    ),
    "!has(self.services) || (!has(self.selector) || size(self.selector) == 0) && "
    "(!has(self.notSelector) || size(self.notSelector) == 0)": lambda o: (
        not _has(o, "services") or (_size0(o, "selector") and _size0(o, "notSelector"))
    ),
    "!has(self.services) || size(self.services.name) > 0": lambda o: (
        not _has(o, "services") or len(o["services"].get("name", "")) > 0
    ),
    "!has(self.destination) || !has(self.destination.services) || "
    "(!has(self.destination.ports) || size(self.destination.ports) == 0) && "
    "(!has(self.destination.notPorts) || size(self.destination.notPorts) == 0)": lambda o: (
        not _has(o.get("destination", {}), "services")
        or (_size0(o["destination"], "ports") and _size0(o["destination"], "notPorts"))
    ),
    "!has(self.http) || !has(self.protocol) || self.protocol == 'TCP' || self.protocol == 6": (
        lambda o: not _has(o, "http") or not _has(o, "protocol") or _is(o["protocol"], "TCP", 6)
    ),
    "!has(self.icmp) || (has(self.protocol) && (self.protocol == 'ICMP' || "
    "self.protocol == 'ICMPv6' || self.protocol == 1 || self.protocol == 58))": lambda o: (
        not _has(o, "icmp") or _is(o.get("protocol"), "ICMP", "ICMPv6", 1, 58)
    ),
    "(!has(self.notProtocol) || (self.notProtocol != 'ICMP' && self.notProtocol != 1)) || "
    "!has(self.ipVersion) || self.ipVersion == 4": _protocol_rule("notProtocol", ("ICMP", 1), 4),
    "(!has(self.notProtocol) || (self.notProtocol != 'ICMPv6' && self.notProtocol != 58)) || "
    "!has(self.ipVersion) || self.ipVersion == 6": _protocol_rule("notProtocol", ("ICMPv6", 58), 6),
    "(!has(self.protocol) || (self.protocol != 'ICMP' && self.protocol != 1)) || "
    "!has(self.ipVersion) || self.ipVersion == 4": _protocol_rule("protocol", ("ICMP", 1), 4),
    "(!has(self.protocol) || (self.protocol != 'ICMPv6' && self.protocol != 58)) || "
    "!has(self.ipVersion) || self.ipVersion == 6": _protocol_rule("protocol", ("ICMPv6", 58), 6),
    "self.action == 'Allow' || !has(self.http)": lambda o: (
        o.get("action") == "Allow" or not _has(o, "http")
    ),
    "!has(self.code) || has(self.type)": lambda o: not _has(o, "code") or _has(o, "type"),
    "!((has(self.doNotTrack) && self.doNotTrack) && (has(self.preDNAT) && self.preDNAT))": (
        lambda o: not (o.get("doNotTrack") and o.get("preDNAT"))
    ),
    "(!has(self.preDNAT) || !self.preDNAT) || !has(self.egress) || size(self.egress) == 0": (
        lambda o: not o.get("preDNAT") or _size0(o, "egress")
    ),
    "(!has(self.preDNAT) || !self.preDNAT) || !has(self.types) || "
    "!self.types.exists(t, t == 'Egress')": lambda o: (
        not o.get("preDNAT") or "Egress" not in o.get("types", ())
    ),
    "(has(self.applyOnForward) && self.applyOnForward) || ((!has(self.doNotTrack) || "
    "!self.doNotTrack) && (!has(self.preDNAT) || !self.preDNAT))": lambda o: (
        bool(o.get("applyOnForward")) or (not o.get("doNotTrack") and not o.get("preDNAT"))
    ),
}


def _normalise(rule: str) -> str:
    return " ".join(rule.split())


def _tier_rule(
    name: str, action: str | None = None, order: float | None = None
) -> Callable[[Obj], bool]:
    """The Tier CRD's rules pinning the built-in tiers' default action and order."""

    def check(o: Obj) -> bool:
        if o.get("metadata", {}).get("name") != name:
            return True
        spec = o.get("spec", {})
        if action is not None:
            return bool(spec.get("defaultAction") == action)
        return "order" in spec and float(spec["order"]) == order

    return check


for _name, _action, _order in (
    ("kube-admin", "Pass", 1000.0),
    ("kube-baseline", "Pass", 10000000.0),
    ("default", "Deny", 1000000.0),
):
    CEL[
        f"self.metadata.name == '{_name}' ? (has(self.spec.defaultAction) "
        f"&& self.spec.defaultAction == '{_action}') : true"
    ] = _tier_rule(_name, action=_action)
    CEL[
        f"self.metadata.name != '{_name}' || (has(self.spec.order) && self.spec.order == {_order})"
    ] = _tier_rule(_name, order=_order)

CEL_BY_TEXT = {_normalise(k): v for k, v in CEL.items()}


def _cel(
    validator: jsonschema.protocols.Validator, rules: Any, instance: Any, schema: Any
) -> Iterator[jsonschema.ValidationError]:
    if not isinstance(instance, Mapping):
        return
    for rule in rules:
        check = CEL_BY_TEXT.get(_normalise(rule["rule"]))
        if check is None:
            yield jsonschema.ValidationError(f"CEL rule not modelled by the test: {rule['rule']}")
        elif not check(instance):
            yield jsonschema.ValidationError(f"CEL: {rule['message']} ({rule['rule']})")


def _list_type(
    validator: jsonschema.protocols.Validator, kind: Any, instance: Any, schema: Any
) -> Iterator[jsonschema.ValidationError]:
    if kind == "set" and isinstance(instance, list):
        seen = [yaml.safe_dump(i) for i in instance]
        if len(set(seen)) != len(seen):
            yield jsonschema.ValidationError(f"duplicate items in a set-type list: {instance}")


KubeValidator = jsonschema.validators.extend(
    jsonschema.Draft7Validator,
    {"x-kubernetes-validations": _cel, "x-kubernetes-list-type": _list_type},
)


def _strict(schema: Any) -> Any:
    """Unknown fields are errors: objects with ``properties`` get ``additionalProperties``."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


def _schemas() -> dict[str, Any]:
    crd = yaml.safe_load((DATA / "calico-gnp-crd.yaml").read_text(encoding="utf-8"))
    assert crd["spec"]["names"]["kind"] == "GlobalNetworkPolicy"
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v3"]
    gnp = _strict(version["schema"]["openAPIV3Schema"])
    knp = copy.deepcopy(gnp)
    for key in GNP_ONLY:
        del knp["properties"]["spec"]["properties"][key]
    tier_crd = yaml.safe_load((DATA / "calico-tier-crd.yaml").read_text(encoding="utf-8"))
    assert tier_crd["spec"]["names"]["kind"] == "Tier"
    (tier_version,) = [v for v in tier_crd["spec"]["versions"] if v["name"] == "v3"]
    tier = _strict(tier_version["schema"]["openAPIV3Schema"])
    return {"GlobalNetworkPolicy": gnp, "NetworkPolicy": knp, "Tier": tier}


SCHEMAS = _schemas()


def _metadata_errors(obj: Obj) -> list[str]:
    meta = obj["metadata"]
    errors = [f"name: {e}" for e in names.is_dns1123_subdomain(meta.get("name", ""))]
    if obj["kind"] == "NetworkPolicy":
        errors += [f"namespace: {e}" for e in names.is_dns1123_label(meta.get("namespace", ""))]
    elif "namespace" in meta:
        errors.append("a cluster-scoped object has a namespace")
    for key, value in (meta.get("labels") or {}).items():
        errors += [f"label {key}: {e}" for e in names.is_qualified_name(key)]
        errors += [f"label {key}={value}: {e}" for e in names.is_valid_label_value(value)]
    for key in meta.get("annotations") or {}:
        errors += [f"annotation {key}: {e}" for e in names.is_qualified_name(key)]
    return errors


def schema_errors(obj: Obj) -> list[str]:
    """Everything the API server would reject in ``obj`` (empty when valid)."""
    if obj.get("apiVersion") != "projectcalico.org/v3" or obj.get("kind") not in SCHEMAS:
        return [f"unexpected apiVersion/kind {obj.get('apiVersion')} {obj.get('kind')}"]
    validator = KubeValidator(SCHEMAS[obj["kind"]])
    errors = [
        f"{'.'.join(str(p) for p in e.absolute_path)}: {e.message}"
        for e in validator.iter_errors(obj)
    ]
    return errors + _metadata_errors(obj)


def assert_valid(text: str) -> int:
    docs = [d for d in yaml.safe_load_all(text) if d is not None]
    names_seen = [(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]) for d in docs]
    assert len(set(names_seen)) == len(names_seen), "object names are not unique"
    for doc in docs:
        errors = schema_errors(doc)
        assert not errors, f"{doc['metadata']['name']}: {errors}"
    return len(docs)


# -- the tests -----------------------------------------------------------------------------


def test_every_cel_rule_is_modelled() -> None:
    rules: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            rules.update(_normalise(r["rule"]) for r in node.get("x-kubernetes-validations", ()))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(SCHEMAS["GlobalNetworkPolicy"])
    walk(SCHEMAS["Tier"])
    assert rules, "the CRD has no CEL rules: wrong file?"
    assert rules <= set(CEL_BY_TEXT), rules - set(CEL_BY_TEXT)


GOOD_RULE = {"action": "Allow", "protocol": "TCP", "destination": {"ports": [80, "1:2", "http"]}}
BAD = [
    ("unknown field", {"spec": {"selektor": "all()"}}),
    ("51 ports", {"spec": {"ingress": [{**GOOD_RULE, "destination": {"ports": list(range(51))}}]}}),
    (
        "257 nets",
        {
            "spec": {
                "egress": [
                    {
                        "action": "Allow",
                        "destination": {
                            "nets": [f"10.0.{i // 256}.{i % 256}/32" for i in range(257)]
                        },
                    }
                ]
            }
        },
    ),
    (
        "duplicate nets",
        {
            "spec": {
                "egress": [
                    {"action": "Allow", "destination": {"nets": ["10.0.0.0/8", "10.0.0.0/8"]}}
                ]
            }
        },
    ),
    ("bad action", {"spec": {"ingress": [{"action": "Accept"}]}}),
    ("global() in selector", {"spec": {"selector": "global()"}}),
    ("icmp without protocol", {"spec": {"ingress": [{"action": "Allow", "icmp": {"type": 8}}]}}),
    ("long selector", {"spec": {"selector": "a == 'b' && " * 100 + "all()"}}),
    ("bad type", {"spec": {"types": ["Inbound"]}}),
    ("bad name", {"metadata": {"name": "Bad_Name"}}),
    ("1025 rules", {"spec": {"ingress": [{"action": "Allow"}] * 1025}}),
]


@pytest.mark.parametrize(("what", "patch"), BAD, ids=[w for w, _ in BAD])
def test_the_checks_can_fail(what: str, patch: dict[str, Any]) -> None:
    obj: dict[str, Any] = {
        "apiVersion": "projectcalico.org/v3",
        "kind": "GlobalNetworkPolicy",
        "metadata": {"name": "ns.ok"},
        "spec": {"selector": "all()", "ingress": [GOOD_RULE]},
    }
    assert schema_errors(obj) == []
    for key, value in patch.items():
        obj[key] = {**obj[key], **value}
    assert schema_errors(obj), what


def _golden_cases() -> list[Path]:
    return sorted(p for p in GOLDEN.iterdir() if (p / "input.yaml").exists())


@pytest.mark.parametrize("scope", ["global", "namespaced"])
def test_golden_outputs_validate(scope: str) -> None:
    total = 0
    for case in _golden_cases():
        sources = [
            npc.Source(n, (case / n).read_text(encoding="utf-8"))
            for n in ("input.yaml", "cluster.yaml")
            if (case / n).exists()
        ]
        try:
            text = npc.compile(sources, "calico", {"calico_scope": scope}).text
        except npc.NpcError:
            continue  # invalid input: golden .error files cover it
        total += assert_valid(text)
    assert total >= 15


@pytest.mark.parametrize("scope", ["global", "namespaced"])
@pytest.mark.parametrize("seed", range(30))
def test_random_policy_sets_validate(seed: int, scope: str) -> None:
    rng = random.Random(1000 + seed)
    snap = random_cluster(rng, namespaces=3, pods=6, ipv6=seed % 2 == 1)
    policies = random_policies(rng, snap, count=8, ipv6=seed % 2 == 1)
    sources = [
        npc.Source("p.yaml", policy_yaml(policies)),
        npc.Source("c.yaml", cluster_yaml(snap)),
    ]
    assert assert_valid(npc.compile(sources, "calico", {"calico_scope": scope}).text) >= 1


def test_split_and_renamed_policies_validate() -> None:
    snap = random_cluster(random.Random(3), namespaces=2, pods=4)
    big = large_policy(snap, rules=1100, ports=120, blocks=300, excepts=300)
    long_name = "x" * 250
    other = ir.Policy("ns1", long_name, ir.EVERYTHING, (ir.Rule(),), None)
    sources = [npc.Source("p.yaml", policy_yaml(ir.PolicySet((big, other))))]
    assert assert_valid(npc.compile(sources, "calico", optimize_ir=False).text) == 3
    assert assert_valid(npc.compile(sources, "calico").text) >= 2
