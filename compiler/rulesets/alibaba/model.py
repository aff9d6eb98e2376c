"""ECS security groups and Terway PodNetworkings, as the judge reads them.

A typed, frozen model of what decides a pod's traffic on a Terway trunk ENI: the security
groups (their rules, as ``AuthorizeSecurityGroup`` / ``AuthorizeSecurityGroupEgress`` take
them and ``DescribeSecurityGroupAttribute`` returns them) and the ``PodNetworking`` objects
(``network.alibabacloud.com/v1beta1``) that decide which groups a pod's ENI joins. Built by
:mod:`npc.rulesets.alibaba.read`, decided by :mod:`npc.rulesets.alibaba.evaluate`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import netaddr

from npc import ir

__all__ = [
    "Action",
    "LabelChange",
    "Permission",
    "PodNetworking",
    "Protocol",
    "Ruleset",
    "SecurityGroup",
    "Where",
]


class Action(enum.StrEnum):
    """``Policy`` of a rule: ``accept``, or ``drop`` (silently, no reply)."""

    ACCEPT = "accept"
    DROP = "drop"


class Protocol(enum.StrEnum):
    """``IpProtocol`` of a rule, normalised (the API takes names in any case, and IANA
    numbers in some regions: 6, 17 and 132 are read as TCP, UDP and SCTP)."""

    TCP = "TCP"
    UDP = "UDP"
    SCTP = "SCTP"
    ICMP = "ICMP"
    ICMPV6 = "ICMPV6"
    GRE = "GRE"
    ALL = "ALL"
    OTHER = "OTHER"  # another IANA number: never a TCP, UDP or SCTP flow


@dataclass(frozen=True, slots=True)
class Where:
    """Where a read object came from: the file and the field path inside the document; its
    line and column (1-based; 0 when unknown) are ``known``, or found by ``locate`` when
    asked (positions of a large document cost more to find than the document to read)."""

    file: str
    path: str = ""
    known: tuple[int, int] | None = None
    locate: Callable[[str], tuple[int, int]] | None = field(default=None, compare=False, repr=False)

    @property
    def position(self) -> tuple[int, int]:
        """(line, column)."""
        if self.known is not None:
            return self.known
        return self.locate(self.path) if self.locate is not None else (0, 0)

    @property
    def line(self) -> int:
        return self.position[0]

    @property
    def column(self) -> int:
        return self.position[1]

    def __str__(self) -> str:
        line, column = self.position
        place = f"{self.file}:{line}:{column}" if line else self.file
        return f"{place}: {self.path}" if self.path else place


@dataclass(frozen=True, slots=True)
class Permission:
    """One security group rule.

    ``remote`` is the other end (``SourceCidrIp`` / ``Ipv6SourceCidrIp`` of an inbound rule,
    ``DestCidrIp`` / ``Ipv6DestCidrIp`` of an outbound one); ``local`` the ENI's own end of a
    quintuple rule (``DestCidrIp`` inbound, ``SourceCidrIp`` outbound), None for any.
    ``ports`` is the inclusive destination port range, None for ``-1/-1`` (every port)."""

    direction: ir.Direction
    action: Action
    priority: int
    protocol: Protocol
    ports: tuple[int, int] | None
    remote: netaddr.IPNetwork
    local: netaddr.IPNetwork | None = None
    description: str = ""
    where: Where | None = field(default=None, compare=False)

    def matches(
        self,
        protocol: ir.Protocol,
        port: int,
        remote: netaddr.IPAddress,
        local: netaddr.IPAddress,
    ) -> bool:
        """Whether a new connection with this transport ``protocol`` and destination ``port``
        between ``remote`` and the ENI's ``local`` address hits this rule."""
        if self.protocol is not Protocol.ALL and self.protocol.value != protocol.value:
            return False
        if self.ports is not None and not self.ports[0] <= port <= self.ports[1]:
            return False
        if remote.version != self.remote.version or remote not in self.remote:
            return False
        return self.local is None or (local.version == self.local.version and local in self.local)

    def __str__(self) -> str:
        ports = "-1/-1" if self.ports is None else f"{self.ports[0]}/{self.ports[1]}"
        text = (
            f"{self.direction} {self.action} priority {self.priority} {self.protocol} "
            f"{ports} {'from' if self.direction is ir.Direction.INGRESS else 'to'} "
            f"{self.remote}"
        )
        if self.local is not None:
            text += f" (local {self.local})"
        return text


@dataclass(frozen=True, slots=True)
class SecurityGroup:
    """A security group: ``key`` is how attachments name it (the ``SecurityGroupId`` the API
    returned, or, in npc's output, the group's name, which the deployment replaces by the
    ID). Only ``enterprise`` (advanced) groups are modelled: the reader refuses others."""

    key: str
    name: str
    permissions: tuple[Permission, ...] = ()
    group_type: str = "enterprise"
    #: The pods npc built the group for (informational: attachment comes from
    #: PodNetworkings, never from this list).
    members: tuple[str, ...] = ()
    where: Where | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class PodNetworking:
    """A ``PodNetworking``: the pods it matches (both selectors, ANDed; an absent selector
    does not constrain, but one of them must be present) and the groups their ENIs join."""

    name: str
    pod_selector: ir.LabelSelector | None
    namespace_selector: ir.LabelSelector | None
    security_groups: tuple[str, ...]
    eni_type: str = "Default"
    where: Where | None = field(default=None, compare=False)

    def matches(self, pod_labels: Mapping[str, str], namespace_labels: Mapping[str, str]) -> bool:
        """Terway's test (``matchOnePodNetworking``): every present selector matches, and at
        least one is present."""
        if self.pod_selector is None and self.namespace_selector is None:
            return False
        if self.pod_selector is not None and not self.pod_selector.matches(pod_labels):
            return False
        return self.namespace_selector is None or self.namespace_selector.matches(namespace_labels)


@dataclass(frozen=True, slots=True)
class LabelChange:
    """A label npc asks to set on a pod (``value``), or to remove (``value`` None), so that
    PodNetworkings select it."""

    namespace: str
    pod: str
    key: str
    value: str | None


@dataclass(frozen=True, slots=True)
class Ruleset:
    """Security groups, the PodNetworkings that attach them, and label changes to make on
    pods first."""

    groups: tuple[SecurityGroup, ...] = ()
    pod_networkings: tuple[PodNetworking, ...] = ()
    labels: tuple[LabelChange, ...] = ()
    region: str | None = None
