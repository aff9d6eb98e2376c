"""The ECS judge on its own: reading (npc's JSON, DescribeSecurityGroupAttribute bodies,
PodNetworkings) with positions and refusals, and deciding flows the ECS way (pooled groups,
priority, drop wins a tie, advanced groups deny by default, Terway's attachment)."""

from __future__ import annotations

import json
from typing import Any

import netaddr
import pytest

from npc import ir
from npc.flows import Endpoint, Flow
from npc.rulesets.alibaba.evaluate import AttachmentError, EcsSemantics
from npc.rulesets.alibaba.model import Ruleset
from npc.rulesets.alibaba.read import (
    AlibabaFormatError,
    read_groups,
    read_pod_networkings,
    read_ruleset,
)
from npc.snapshot import Namespace, Node, Pod, Snapshot, frozen_labels

WEB = Pod(
    "shop", "web", frozen_labels({"app": "web"}), (netaddr.IPAddress("10.0.0.5"),), node_name="n1"
)
DB = Pod(
    "shop", "db", frozen_labels({"app": "db"}), (netaddr.IPAddress("10.0.1.6"),), node_name="n2"
)
DB2 = Pod(
    "shop", "db2", frozen_labels({"app": "db"}), (netaddr.IPAddress("10.0.1.7"),), node_name="n1"
)
NODES = (
    Node("n1", addresses=(("InternalIP", netaddr.IPAddress("192.168.0.1")),)),
    Node("n2", addresses=(("InternalIP", netaddr.IPAddress("192.168.0.2")),)),
)
SNAPSHOT = Snapshot(
    (Namespace("shop", frozen_labels({"kubernetes.io/metadata.name": "shop"})),),
    (WEB, DB, DB2),
    (),
    NODES,
)


def _rule(
    cidr: str,
    ports: str = "5432/5432",
    policy: str = "accept",
    priority: int = 1,
    protocol: str = "TCP",
) -> dict[str, Any]:
    return {
        "IpProtocol": protocol,
        "PortRange": ports,
        "Policy": policy,
        "Priority": str(priority),
        "SourceCidrIp": cidr,
    }


def _document(db_ingress: list[list[dict[str, Any]]]) -> str:
    groups = [
        {"name": f"g{i}", "securityGroupType": "enterprise", "ingress": rules, "egress": []}
        for i, rules in enumerate(db_ingress)
    ]
    groups.append(
        {
            "name": "out",
            "securityGroupType": "enterprise",
            "ingress": [],
            "egress": [{"IpProtocol": "ALL", "PortRange": "-1/-1", "DestCidrIp": "0.0.0.0/0"}],
        }
    )
    for group in groups:
        group["requests"] = {d: [group[d]] if group[d] else [] for d in ("ingress", "egress")}
    pn = {
        "apiVersion": "network.alibabacloud.com/v1beta1",
        "kind": "PodNetworking",
        "metadata": {"name": "db"},
        "spec": {
            "securityGroupIDs": [g["name"] for g in groups],
            "selector": {"podSelector": {"matchLabels": {"app": "db"}}},
        },
    }
    return json.dumps({"securityGroups": groups, "podNetworkings": [pn]}, indent=2)


def _flow(src: str, dst: Pod, port: int = 5432) -> Flow:
    return Flow(Endpoint.of_address(src), Endpoint.of_pod(dst), ir.Protocol.TCP, port)


def test_rules_of_all_groups_pool_and_the_smallest_priority_decides() -> None:
    doc = _document(
        [[_rule("10.0.0.0/24", priority=5)], [_rule("10.0.0.5/32", policy="drop", priority=2)]]
    )
    ecs = EcsSemantics(read_ruleset(doc), SNAPSHOT)
    decision = ecs.decide(_flow("10.0.0.5", DB))
    assert not decision.allowed and decision.ingress.group == "g1"
    assert decision.ingress.rule is not None and decision.ingress.rule.priority == 2
    assert ecs.allowed(_flow("10.0.0.9", DB))  # only the accept matches


def test_drop_wins_a_tie() -> None:
    doc = _document(
        [[_rule("10.0.0.0/24", priority=3)], [_rule("10.0.0.0/16", policy="drop", priority=3)]]
    )
    assert not EcsSemantics(read_ruleset(doc), SNAPSHOT).allowed(_flow("10.0.0.9", DB))


def test_no_matching_rule_denies_and_ports_and_protocols_count() -> None:
    ecs = EcsSemantics(read_ruleset(_document([[_rule("10.0.0.0/24")]])), SNAPSHOT)
    assert ecs.allowed(_flow("10.0.0.9", DB))
    denied = ecs.decide(_flow("10.0.0.9", DB, port=80))
    assert not denied.allowed and "deny by default" in denied.ingress.reason
    assert not ecs.allowed(_flow("10.9.0.9", DB))
    udp = Flow(Endpoint.of_address("10.0.0.9"), Endpoint.of_pod(DB), ir.Protocol.UDP, 5432)
    assert not ecs.allowed(udp)


def test_same_node_and_own_node_traffic_is_not_filtered() -> None:
    ecs = EcsSemantics(read_ruleset(_document([[]])), SNAPSHOT)
    assert not ecs.allowed(Flow(Endpoint.of_pod(WEB), Endpoint.of_pod(DB), ir.Protocol.TCP, 5432))
    same = ecs.decide(Flow(Endpoint.of_pod(WEB), Endpoint.of_pod(DB2), ir.Protocol.TCP, 5432))
    assert same.allowed and "same node" in same.ingress.reason
    assert ecs.allowed(_flow("192.168.0.2", DB))  # DB's own node
    assert not ecs.allowed(_flow("192.168.0.1", DB))  # another node


def test_a_pod_no_podnetworking_matches_is_unfiltered() -> None:
    ecs = EcsSemantics(read_ruleset(_document([[]])), SNAPSHOT)
    assert ecs.groups_of(WEB) is None and ecs.groups_of(DB) is not None
    assert ecs.allowed(_flow("10.9.9.9", WEB))


def test_a_pod_two_podnetworkings_match_is_refused() -> None:
    data = json.loads(_document([[]]))
    second = json.loads(json.dumps(data["podNetworkings"][0]))
    second["metadata"]["name"] = "all"
    second["spec"]["selector"] = {"namespaceSelector": {}}
    data["podNetworkings"].append(second)
    with pytest.raises(AttachmentError, match="shop/db matches PodNetworkings db, all"):
        EcsSemantics(read_ruleset(json.dumps(data)), SNAPSHOT)


def test_a_podnetworking_naming_an_unknown_group_is_refused() -> None:
    data = json.loads(_document([[]]))
    data["podNetworkings"][0]["spec"]["securityGroupIDs"].append("sg-missing")
    with pytest.raises(AttachmentError, match="sg-missing"):
        EcsSemantics(read_ruleset(json.dumps(data)), SNAPSHOT)


DESCRIBED = """[
  {
    "SecurityGroupId": "sg-1",
    "SecurityGroupType": "enterprise",
    "InnerAccessPolicy": "Drop",
    "Permissions": {"Permission": [
      {"Direction": "ingress", "IpProtocol": "tcp", "PortRange": "80/80", "Policy": "Accept",
       "Priority": "1", "SourceCidrIp": "10.0.0.0/8", "Ipv6SourceCidrIp": "", "SourceGroupId": "",
       "DestCidrIp": "", "NicType": "intranet", "CreateTime": "2026-01-01T00:00:00Z",
       "SecurityGroupRuleId": "sgr-1", "SourcePortRange": ""},
      {"Direction": "egress", "IpProtocol": "ALL", "PortRange": "-1/-1", "Policy": "Drop",
       "Priority": "100", "DestCidrIp": "0.0.0.0/0"}
    ]}
  }
]"""


def test_describe_security_group_attribute_is_read() -> None:
    (group,) = read_groups(DESCRIBED, "described.json")
    assert group.key == "sg-1" and len(group.permissions) == 2
    inbound, outbound = group.permissions
    assert inbound.direction is ir.Direction.INGRESS and inbound.ports == (80, 80)
    assert outbound.direction is ir.Direction.EGRESS and outbound.priority == 100
    assert inbound.where is not None and (inbound.where.line, inbound.where.column) == (7, 7)
    (pn,) = read_pod_networkings(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "List",
                "items": json.loads(_document([[]]))["podNetworkings"],
            }
        )
    )
    pn = type(pn)(pn.name, pn.pod_selector, pn.namespace_selector, ("sg-1",))
    ecs = EcsSemantics(Ruleset((group,), (pn,)), SNAPSHOT)
    assert ecs.allowed(_flow("10.0.0.5", DB, 80))
    assert not ecs.allowed(
        Flow(Endpoint.of_pod(DB), Endpoint.of_address("10.9.9.9"), ir.Protocol.TCP, 80)
    )


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        ({"SecurityGroupType": None}, "[0].SecurityGroupType", "SecurityGroupType is needed"),
        ({"SecurityGroupType": "normal"}, "[0].SecurityGroupType", "only advanced"),
        ({"InnerAccessPolicy": "Accept"}, "[0].InnerAccessPolicy", "isolating their members"),
        ({"0.SourceGroupId": "sg-2"}, "Permission[0].SourceGroupId", "cannot be evaluated"),
        ({"0.PortRange": "80-81"}, "Permission[0].PortRange", "not a port range"),
        ({"0.PortRange": "-1/-1"}, "Permission[0].PortRange", "TCP needs start/end"),
        ({"0.IpProtocol": "SCTPX"}, "Permission[0].IpProtocol", "unknown IpProtocol"),
        ({"0.Priority": "0"}, "Permission[0].Priority", "Priority is 1 to 100"),
        ({"0.SourceCidrIp": "fd00::/8"}, "Permission[0].SourceCidrIp", "not an IPv4 block"),
        ({"0.SourcePortRange": "1000/2000"}, "Permission[0].SourcePortRange", "source ports"),
        ({"0.Colour": "red"}, "Permission[0].Colour", "unknown rule field"),
    ],
)
def test_what_cannot_be_modelled_is_refused_at_its_position(
    change: dict[str, Any], path: str, message: str
) -> None:
    data = json.loads(DESCRIBED)
    for key, value in change.items():
        if key.startswith("0."):
            data[0]["Permissions"]["Permission"][0][key[2:]] = value
        elif value is None:
            del data[0][key]
        else:
            data[0][key] = value
    text = json.dumps(data, indent=2)
    with pytest.raises(AlibabaFormatError) as caught:
        read_groups(text, "described.json")
    assert message in str(caught.value)
    where = caught.value.where
    assert where.file == "described.json" and where.line > 1 and where.path.endswith(path)
    assert str(caught.value).startswith(f"described.json:{where.line}:{where.column}: ")


def test_invalid_json_is_reported_at_its_position() -> None:
    with pytest.raises(AlibabaFormatError) as caught:
        read_ruleset('{"securityGroups": [\n  {"name": }\n]}', "bad.json")
    assert str(caught.value).startswith("bad.json:2:12: not valid JSON")


def test_duplicate_group_names_are_refused() -> None:
    data = json.loads(_document([[], []]))
    data["securityGroups"][1]["name"] = "g0"
    with pytest.raises(AlibabaFormatError, match="duplicate group 'g0'"):
        read_ruleset(json.dumps(data), "dup.json")


def test_requests_must_send_exactly_the_listed_rules() -> None:
    data = json.loads(_document([[_rule("10.0.0.0/24"), _rule("10.0.1.0/24")]]))
    data["securityGroups"][0]["requests"]["ingress"] = [[data["securityGroups"][0]["ingress"][0]]]
    with pytest.raises(AlibabaFormatError) as caught:
        read_ruleset(json.dumps(data, indent=2), "sent.json")
    assert "securityGroups[0].requests.ingress" in str(caught.value)
    assert "do not send exactly the ingress rules listed" in str(caught.value)
    data["securityGroups"][0]["colour"] = "red"
    with pytest.raises(AlibabaFormatError, match="unknown group field 'colour'"):
        read_ruleset(json.dumps(data), "sent.json")


def test_quintuple_rules_match_the_local_address_too() -> None:
    rule = {**_rule("10.0.0.0/24"), "DestCidrIp": "10.0.1.6/32"}
    ecs = EcsSemantics(read_ruleset(_document([[rule]])), SNAPSHOT)
    assert ecs.allowed(_flow("10.0.0.9", DB))
    assert not ecs.allowed(_flow("10.0.0.9", DB2))
