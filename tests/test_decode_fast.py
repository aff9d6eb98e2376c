"""The fast decoding plans against the plans that report, on well-formed and broken objects.

The decoder reads a well-formed object with a fast plan and falls back to the plan that
reports at the first anomaly. The two must agree exactly: the fast plan gives up (raises
:class:`~npc.frontend.fastdecode.Anomaly`) on precisely the objects that the reporting plan
has something to say about, and otherwise both build equal values of the same types. Every
object of the golden inputs (all kinds npc reads) is checked, and so is each of many
variants of it, broken one field at a time.
"""

from __future__ import annotations

import copy
import itertools
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from npc.frontend.decode import Decoder
from npc.frontend.fastdecode import Anomaly, fast_plan
from npc.frontend.k8s import api, cnp_api
from npc.frontend.source import ObjectRef

GOLDEN = Path(__file__).resolve().parent.parent / "golden"

SHAPES: dict[str, tuple[type, bool]] = {
    "NetworkPolicy": (api.NetworkPolicy, True),
    "ClusterNetworkPolicy": (cnp_api.ClusterNetworkPolicy, True),
    "Namespace": (api.Namespace, False),
    "Pod": (api.Pod, False),
    "Service": (api.Service, False),
    "Node": (api.Node, False),
}

#: A pod with every field the lenient shapes read (and some they skip).
FULL_POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "name": "web-0",
        "namespace": "prod",
        "labels": {"app": "web", "tier": ""},
        "annotations": {"a": "b"},
        "uid": "123",
    },
    "spec": {
        "hostNetwork": False,
        "nodeName": "node1",
        "containers": [
            {
                "name": "main",
                "image": "busybox",
                "ports": [
                    {"containerPort": 80, "protocol": "TCP", "name": "http", "hostPort": 8080},
                    {"containerPort": 53, "protocol": "UDP"},
                ],
            }
        ],
        "initContainers": [{"name": "side", "restartPolicy": "Always", "ports": []}],
    },
    "status": {
        "phase": "Running",
        "podIP": "10.0.0.1",
        "podIPs": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}],
        "hostIP": "192.0.2.1",
    },
}

#: A NetworkPolicy with every field of the strict shapes.
FULL_POLICY: dict[str, Any] = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {
        "name": "p",
        "namespace": "prod",
        "generateName": "p-",
        "labels": {"a": "b"},
        "annotations": {"x": "y"},
        "finalizers": ["f"],
        "ownerReferences": [{"kind": "X"}],
        "managedFields": [{"manager": "m"}],
        "generation": 3,
        "resourceVersion": "7",
    },
    "spec": {
        "podSelector": {
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "env", "operator": "In", "values": ["a", "b"]}],
        },
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [
            {
                "from": [
                    {"podSelector": {}, "namespaceSelector": {"matchLabels": {"t": "1"}}},
                    {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}},
                ],
                "ports": [{"protocol": "TCP", "port": 80, "endPort": 90}, {"port": "http"}],
            }
        ],
        "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "db"}}}], "ports": []}],
    },
    "status": {},
}

#: A Service with every field of its lenient shape.
FULL_SERVICE: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "web", "namespace": "prod", "labels": {"app": "web"}},
    "spec": {
        "type": "LoadBalancer",
        "selector": {"app": "web"},
        "ports": [
            {"name": "http", "protocol": "TCP", "port": 80, "targetPort": "http", "nodePort": 1},
            {"port": 53, "protocol": "UDP", "targetPort": 5353},
        ],
        "clusterIP": "10.96.0.10",
        "clusterIPs": ["10.96.0.10", "fd00::10"],
        "externalIPs": ["192.0.2.7"],
        "externalTrafficPolicy": "Local",
        "internalTrafficPolicy": "Cluster",
        "loadBalancerSourceRanges": ["192.0.2.0/24"],
    },
}

#: What a field is replaced with to break it (or not: some are still well-formed).
REPLACEMENTS: tuple[Any, ...] = (
    None,
    0,
    7,
    -1,
    1.5,
    True,
    False,
    "",
    "80",
    "x",
    [],
    [None],
    [1],
    ["a", None],
    [{}],
    {},
    {"bogus": 1},
    {1: "a"},
    {"a": None},
    {"a": 1},
)


def _objects() -> Iterator[dict[str, Any]]:
    yield FULL_POD
    yield FULL_SERVICE
    yield FULL_POLICY
    for path in sorted(GOLDEN.glob("*/*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            stack = [doc]
            while stack:
                obj = stack.pop()
                if not isinstance(obj, dict):
                    continue
                if isinstance(obj.get("items"), list):
                    stack.extend(obj["items"])
                elif obj.get("kind") in SHAPES:
                    yield obj


def _places(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path to a value inside ``value`` (mapping keys and list indices)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*path, key)
            yield from _places(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield (*path, i)
            yield from _places(item, (*path, i))


def _variants(obj: dict[str, Any], rng: random.Random) -> Iterator[dict[str, Any]]:
    """``obj`` broken (or reshaped) at one place: replaced, removed, or given an extra key."""
    places = list(_places(obj))
    for place in places:
        parent_path, last = place[:-1], place[-1]
        for replacement in rng.sample(REPLACEMENTS, 6):
            variant = copy.deepcopy(obj)
            parent = _at(variant, parent_path)
            parent[last] = copy.deepcopy(replacement)
            yield variant
        variant = copy.deepcopy(obj)
        parent = _at(variant, parent_path)
        if isinstance(parent, dict):
            del parent[last]
            yield variant
        target = _at(copy.deepcopy(obj), place)
        if isinstance(target, dict):
            variant = copy.deepcopy(obj)
            _at(variant, place)["unknownField"] = "x"
            yield variant
            variant = copy.deepcopy(obj)
            _at(variant, place)[5] = "x"
            yield variant


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


def _check(obj: dict[str, Any], kind: str | None = None) -> bool:
    """Both plans on ``obj`` (decoded as ``kind``, its own by default); True when the fast
    plan gave up."""
    cls, strict = SHAPES[kind or obj["kind"]]
    ref = ObjectRef(0, 0)
    reporting = Decoder(ref, strict=strict, fast=False)
    expected = reporting.decode(cls, obj)
    try:
        got = fast_plan(cls, strict)(obj)
    except Anomaly:
        assert reporting.problems, f"the fast plan gave up on an object without problems: {obj}"
        return True
    assert not reporting.problems, f"the fast plan accepted {obj}: {reporting.problems}"
    assert got == expected
    assert repr(got) == repr(expected)  # the same types too (1 is not True)
    # And what the decoder returns (the fast plan's value) is the same.
    assert repr(Decoder(ref, strict=strict).decode(cls, obj)) == repr(expected)
    return False


def test_the_plans_agree_on_every_golden_object() -> None:
    objects = list(_objects())
    assert {o["kind"] for o in objects} == set(SHAPES)
    gave_up = [obj for obj in objects if _check(obj)]
    # Some golden cases are broken on purpose; the well-formed rest takes the fast plan.
    assert len(gave_up) * 10 < len(objects)
    for full in (FULL_POD, FULL_POLICY, FULL_SERVICE):
        assert full not in gave_up


@pytest.mark.parametrize("kind", sorted(SHAPES))
def test_the_fast_plan_gives_up_exactly_where_the_reporting_plan_reports(kind: str) -> None:
    rng = random.Random(kind)
    distinct = {repr(o): o for o in _objects() if o["kind"] == kind}
    gave_up = kept = 0
    for obj in itertools.islice(distinct.values(), 6):
        for variant in _variants(obj, rng):
            if _check(variant, kind):
                gave_up += 1
            else:
                kept += 1
    assert gave_up > 20
    assert kept > 5
