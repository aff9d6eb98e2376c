"""The ``alibaba`` output as data: the groups with their permissions in the API's own keys
and values (``Permissions.N`` of ``AuthorizeSecurityGroup`` / ``AuthorizeSecurityGroupEgress``,
listed flat and batched 100 per request), the PodNetworkings and the labels that attach them.

What permissions share is made once per compile (:class:`Permissions`), and the flat list
and the requests of a group hold the same objects; for the JSON text each permission is made
as its one line of JSON text, in :class:`~npc.backends.alibaba.jsontext.Lines`.
"""

from __future__ import annotations

from json.encoder import encode_basestring
from typing import Any

import netaddr

from npc import ir
from npc.backends.alibaba.attach import LABEL, Attachment
from npc.backends.alibaba.jsontext import Lines, compact_text
from npc.backends.alibaba.plan import Group, Plan, Rule
from npc.backends.grants import Grants

__all__ = ["BATCH", "DESCRIPTION", "TIERS_DESCRIPTION", "Permissions", "document"]

#: Permissions per AuthorizeSecurityGroup(Egress) call (the API takes 1 to 100).
BATCH = 100

DESCRIPTION = (
    "npc: advanced security groups for pods on Terway trunk ENIs, from Kubernetes "
    "NetworkPolicy. Each pod's ENI joins two groups: one holding only its ingress rules, one "
    "only its egress rules (ECS pools the rules of an ENI's groups, so neither can open the "
    "other's direction); a direction no policy isolates gets an accept-all group. Pod "
    "security groups do not filter traffic between pods on the same node, nor between a "
    "pod and its own node (ACK documents both): the spec always allows the latter; the "
    "former is not enforced here. hostNetwork pods use their node's ENI and join no group. "
    "Create the groups, then replace each group name in securityGroupIDs by the "
    "SecurityGroupId CreateSecurityGroup returned; Terway attaches groups when a pod is "
    "created, so set attachment.labels (in the pods' templates) and recreate the pods."
)

#: Added to :data:`DESCRIPTION` when ClusterNetworkPolicies apply to some pods.
TIERS_DESCRIPTION = (
    " Pods a ClusterNetworkPolicy applies to get, per direction, a group holding the tiers "
    "as priorities (1 first; at equal priority drop wins): the Admin tier's rules, then their "
    "NetworkPolicies' accepts and a drop of everything if one isolates them, else the "
    "Baseline tier's rules, then an accept of everything; an Admin Pass repeats what follows "
    "the Admin tier, cut to what the Pass matches. These groups' rules must keep their "
    "priorities."
)

_CIDR_KEYS = {
    (ir.Direction.INGRESS, 4): "SourceCidrIp",
    (ir.Direction.INGRESS, 6): "Ipv6SourceCidrIp",
    (ir.Direction.EGRESS, 4): "DestCidrIp",
    (ir.Direction.EGRESS, 6): "Ipv6DestCidrIp",
}


class Permissions:
    """The ``Permissions.N`` of rules, what rules share made once (the text of each
    distinct CIDR block and description, and for a line everything around its block): one
    per compile (never kept between compiles)."""

    def __init__(self) -> None:
        self._blocks: dict[tuple[int, int, int], str] = {}
        self._descriptions: dict[tuple[str, ...], str] = {}
        #: a line's text around its CIDR block, per everything else it says
        self._around: dict[tuple[object, ...], tuple[str, str]] = {}

    def mapping(self, rule: Rule, direction: ir.Direction) -> dict[str, str]:
        """The permission of ``rule`` in a group of ``direction``, in the API's keys and
        values."""
        ports = rule.ports
        return {
            "Description": self._description(rule.policies),
            "IpProtocol": "ALL" if rule.protocol is None else str(rule.protocol),
            "Policy": rule.action,
            "PortRange": "-1/-1" if ports is None else f"{ports[0]}/{ports[1]}",
            "Priority": str(rule.priority),
            _CIDR_KEYS[direction, rule.family]: self._cidr(rule.family, rule.block),
        }

    def line(self, rule: Rule, direction: ir.Direction) -> str:
        """:meth:`mapping` as one line of JSON text, what ``json.dumps(mapping,
        sort_keys=True, ensure_ascii=False)`` writes: the text around the
        block is the same for every block of a bucket, so it is written once per bucket
        (by the C encoder, with the string NUL standing for the block: no other value is that
        string, the descriptions start with ``npc:``)."""
        around: tuple[object, ...] = (
            direction,
            rule.family,
            rule.protocol,
            rule.ports,
            rule.policies,
            rule.priority,
            rule.action,
        )  # all but the block
        parts = self._around.get(around)
        if parts is None:
            mapping = self.mapping(rule, direction)
            mapping[_CIDR_KEYS[direction, rule.family]] = "\0"
            head, _, tail = compact_text(mapping).partition('"\\u0000"')
            parts = self._around[around] = (head, tail)
        head, tail = parts
        return head + encode_basestring(self._cidr(rule.family, rule.block)) + tail

    def _description(self, policies: tuple[str, ...]) -> str:
        found = self._descriptions.get(policies)
        if found is None:
            text = "npc: " + ", ".join(policies) if policies else "npc: not isolated by policy"
            found = self._descriptions[policies] = text if len(text) <= 512 else text[:509] + "..."
        return found

    def _cidr(self, family: int, block: tuple[int, int]) -> str:
        """``block`` (CIDR-aligned) as ``address/prefix``, the address as netaddr writes it
        (IPv4 by arithmetic: the dotted quad is the same, without an object per block)."""
        lo, hi = block
        key = (family, lo, hi)
        found = self._blocks.get(key)
        if found is None:
            bits = 32 if family == 4 else 128
            prefix = bits - (hi - lo + 1).bit_length() + 1
            if family == 4:
                address = f"{lo >> 24}.{lo >> 16 & 255}.{lo >> 8 & 255}.{lo & 255}"
            else:
                address = str(netaddr.IPAddress(lo, 6))
            found = self._blocks[key] = f"{address}/{prefix}"
        return found


def _describe(group: Group) -> str:
    other = "egress" if group.direction is ir.Direction.INGRESS else "ingress"
    if group.cluster:
        isolated = ", ".join(p.key for p in group.policies)
        text = (
            f"npc: {group.direction} of pods under ClusterNetworkPolicy "
            + ", ".join(group.cluster)
            + (f", isolated by {isolated}" if isolated else "")
            + " (tiers as priorities: admin, NetworkPolicy, baseline, default)"
        )
    elif group.open:
        text = f"npc: {group.direction} of pods no NetworkPolicy isolates for {group.direction}"
    else:
        text = f"npc: {group.direction} of pods isolated by " + ", ".join(
            p.key for p in group.policies
        )
        named = [f"{n}={'+'.join(map(str, nums)) or 'none'}" for n, _, nums in group.named_ports]
        if named:
            text += f" (named ports {', '.join(named)})"
    text += f"; no {other} rules (the pods' {other} group decides)"
    return text if len(text) <= 256 else text[:253] + "..."


def document(
    plan: Plan, attachment: Attachment, grants: Grants, region: str, *, compact: bool = False
) -> dict[str, Any]:
    """The whole output as data (serialised with sorted keys). ``compact``: the permissions
    as :class:`~npc.backends.alibaba.jsontext.Lines` of their JSON texts, for
    :func:`~npc.backends.alibaba.jsontext.dumps` (one line each); else as mappings."""
    pods = grants.resolver.pods
    # Each group's members, from one pass over the pods (not one pass per group).
    members_of: dict[tuple[ir.Direction, str], list[str]] = {}
    for direction, of in (
        (ir.Direction.INGRESS, plan.ingress_of),
        (ir.Direction.EGRESS, plan.egress_of),
    ):
        for i, names in of.items():
            for name in names:
                members_of.setdefault((direction, name), []).append(pods[i].key)
    permissions = Permissions()
    groups = []
    for group in plan.groups:
        direction = group.direction
        rules: Lines | list[dict[str, str]]
        batches: list[Lines] | list[list[dict[str, str]]]
        if compact:
            rules = Lines([permissions.line(r, direction) for r in group.rules])
            batches = [Lines(rules[i : i + BATCH]) for i in range(0, len(rules), BATCH)]
        else:
            rules = [permissions.mapping(r, direction) for r in group.rules]
            batches = [rules[i : i + BATCH] for i in range(0, len(rules), BATCH)]
        members = sorted(members_of.get((direction, group.name), ()))
        ingress = direction is ir.Direction.INGRESS
        entry: dict[str, Any] = {
            "name": group.name,
            "securityGroupType": "enterprise",
            "description": _describe(group),
            "members": members,
            "ingress": rules if ingress else [],
            "egress": [] if ingress else rules,
            "requests": {"ingress": batches, "egress": []}
            if ingress
            else {"ingress": [], "egress": batches},
        }
        groups.append(entry)
    description = DESCRIPTION
    if any(g.cluster for g in plan.groups):
        description += TIERS_DESCRIPTION
    return {
        "regionId": region,
        "description": description,
        "securityGroups": groups,
        "podNetworkings": [n.to_object() for n in attachment.networkings],
        "attachment": {
            "labelKey": LABEL,
            "labels": [c.to_object() for c in attachment.labels],
            "commands": [c.command() for c in attachment.labels],
        },
    }
