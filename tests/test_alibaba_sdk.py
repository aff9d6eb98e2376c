"""Every permission and request of the alibaba output loads into the official ECS SDK
models (``alibabacloud-ecs20140526``, pinned in the test extra) without losing a key, and
every PodNetworking is valid under Terway's CRD schema (``tests/data``)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from alibabacloud_ecs20140526 import models

import npc
from tests.synth import cluster_yaml, policy_yaml, random_cluster, random_policies

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
CRD = Path(__file__).resolve().parent / "data" / "terway-podnetworking-crd.yaml"
PERMISSION_MODELS = {
    "ingress": models.AuthorizeSecurityGroupRequestPermissions,
    "egress": models.AuthorizeSecurityGroupEgressRequestPermissions,
}
REQUEST_MODELS = {
    "ingress": models.AuthorizeSecurityGroupRequest,
    "egress": models.AuthorizeSecurityGroupEgressRequest,
}


def _outputs() -> list[tuple[str, str]]:
    out = []
    for case in sorted(GOLDEN.iterdir()):
        expected = case / "expected.alibaba.json"
        if expected.exists():
            out.append((case.name, expected.read_text(encoding="utf-8")))
    for seed in range(6):
        rng = random.Random(seed)
        snap = random_cluster(rng, namespaces=3, pods=9, ipv6=seed % 2 == 0)
        policies = random_policies(rng, snap, count=5, ipv6=seed % 2 == 0)
        bundle = npc.load(
            [npc.Source("p.yaml", policy_yaml(policies)), npc.Source("c.yaml", cluster_yaml(snap))]
        )
        text = npc.compile(bundle, "alibaba", {"unsupported": "deny", "same_node": "trust"}).text
        out.append((f"random-{seed}", text))
    return out


OUTPUTS = _outputs()


def _round_trip(model: Any, data: dict[str, Any]) -> dict[str, Any]:
    """What the model gives back for ``data``, without the empty lists it always adds
    (``Tag: []``): a key the model does not know would be missing here."""
    loaded: dict[str, Any] = model().from_map(data).to_map()
    return {k: v for k, v in loaded.items() if v != [] or k in data}


@pytest.mark.parametrize(("name", "text"), OUTPUTS, ids=[n for n, _ in OUTPUTS])
def test_permissions_and_requests_load_into_the_sdk(name: str, text: str) -> None:
    data = json.loads(text)
    region = data["regionId"]
    assert data["securityGroups"], name
    for group in data["securityGroups"]:
        create = {
            "RegionId": region,
            "SecurityGroupName": group["name"],
            "SecurityGroupType": group["securityGroupType"],
            "Description": group["description"],
        }
        assert _round_trip(models.CreateSecurityGroupRequest, create) == create
        for direction, model in PERMISSION_MODELS.items():
            for permission in group[direction]:
                assert _round_trip(model, permission) == permission
            batches = group["requests"][direction]
            assert [p for batch in batches for p in batch] == group[direction]
            for batch in batches:
                assert 1 <= len(batch) <= 100
                request = {
                    "RegionId": region,
                    "SecurityGroupId": "sg-npc0test",
                    "Permissions": batch,
                }
                assert _round_trip(REQUEST_MODELS[direction], request) == request


def _crd_schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD.read_text(encoding="utf-8").split("\n---\n", 1)[-1])
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


@pytest.mark.parametrize(("name", "text"), OUTPUTS, ids=[n for n, _ in OUTPUTS])
def test_pod_networkings_follow_the_crd(name: str, text: str) -> None:
    schema = _crd_schema()
    for networking in json.loads(text)["podNetworkings"]:
        jsonschema.validate(networking, schema)
        assert networking["apiVersion"] == "network.alibabacloud.com/v1beta1"
        assert 1 <= len(networking["spec"]["securityGroupIDs"]) <= 5
        assert networking["spec"]["selector"]["podSelector"] is not None
