"""The IR of ClusterNetworkPolicy (``policy.networking.k8s.io/v1alpha2``): tiers, priorities,
ordered rules with actions.

These are types of their own, not flags on :class:`npc.ir.Rule` (which only ever allows):
a :class:`ClusterRule` has an :class:`Action`, and its position in its policy matters (the
first matching rule decides). A :class:`ClusterPolicy` sits in a :class:`Tier` at a priority;
the :class:`ClusterPolicySet` holds them in evaluation order.

Evaluation order (documented choice where upstream leaves it open): tier (Admin, then
Baseline), then ``priority`` ascending, then ``metadata.name`` ascending for policies of one
tier with the same priority (upstream says an implementation may pick any; npc warns and
picks this one). Source: ``apis/v1alpha2/clusternetworkpolicy_types.go`` in
kubernetes-sigs/network-policy-api v0.2.0.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

from npc import ir
from npc.errors import Origin

__all__ = [
    "EMPTY",
    "MAX_PRIORITY",
    "Action",
    "ClusterPeer",
    "ClusterPolicy",
    "ClusterPolicySet",
    "ClusterRule",
    "DomainNamesPeer",
    "NodesPeer",
    "Subject",
    "Tier",
    "UnknownPeer",
]

#: The highest priority value the API accepts (0 is evaluated first).
MAX_PRIORITY: Final = 1000


class Tier(enum.StrEnum):
    """Where a ClusterNetworkPolicy sits: before NetworkPolicy (Admin) or after (Baseline)."""

    ADMIN = "Admin"
    BASELINE = "Baseline"

    @property
    def rank(self) -> int:
        """Evaluation order of the tier (Admin first)."""
        return 0 if self is Tier.ADMIN else 1


class Action(enum.StrEnum):
    """What a matching rule does. ``Pass`` skips the rest of its tier."""

    ACCEPT = "Accept"
    DENY = "Deny"
    PASS = "Pass"


@dataclass(frozen=True, slots=True)
class Subject:
    """The pods a policy applies to: pods matching ``pods`` in namespaces matching
    ``namespaces`` (``subject.namespaces`` alone has ``pods`` = everything). Host-network
    pods are never subjects."""

    namespaces: ir.LabelSelector = ir.EVERYTHING
    pods: ir.LabelSelector = ir.EVERYTHING


@dataclass(frozen=True, slots=True)
class NodesPeer:
    """Egress peer ``nodes``: the addresses of the snapshot's nodes whose labels match."""

    nodes: ir.LabelSelector


@dataclass(frozen=True, slots=True)
class DomainNamesPeer:
    """Egress peer ``domainNames``: decided by DNS at run time, never by static addresses."""

    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class UnknownPeer:
    """A peer with no field npc knows (a newer API). Fail closed as the API says: it matches
    nothing in an ``Accept`` rule and everything in a ``Deny`` or ``Pass`` rule."""


#: A ClusterNetworkPolicy peer: ``namespaces`` and ``pods`` are :class:`npc.ir.PodPeer`
#: (never :data:`npc.ir.SAME_NAMESPACE`), ``networks`` an :class:`npc.ir.AddressPeer`.
ClusterPeer = ir.PodPeer | ir.AddressPeer | NodesPeer | DomainNamesPeer | UnknownPeer


@dataclass(frozen=True, slots=True)
class ClusterRule:
    """One ordered rule: traffic from/to any of ``peers`` on ``ports`` gets ``action``."""

    action: Action
    peers: tuple[ClusterPeer, ...]
    ports: ir.Ports = ir.ANY_PORT
    name: str = ""
    origin: Origin | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class ClusterPolicy:
    """One ClusterNetworkPolicy. A direction without rules does not affect that direction."""

    name: str
    tier: Tier
    priority: int
    subject: Subject
    ingress: tuple[ClusterRule, ...] = ()
    egress: tuple[ClusterRule, ...] = ()
    origin: Origin | None = field(default=None, compare=False)

    @property
    def key(self) -> str:
        """The policy's name (the kind is cluster-scoped)."""
        return self.name

    @property
    def order(self) -> tuple[int, int, str]:
        """The evaluation order: tier, priority, name."""
        return (self.tier.rank, self.priority, self.name)

    def rules(self, direction: str) -> tuple[ClusterRule, ...]:
        """The rules of a direction (``ingress`` or ``egress``), in order."""
        return self.ingress if direction == ir.Direction.INGRESS else self.egress


@dataclass(frozen=True, slots=True)
class ClusterPolicySet:
    """Every ClusterNetworkPolicy of an input, in evaluation order (see the module doc)."""

    policies: tuple[ClusterPolicy, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "policies", tuple(sorted(self.policies, key=lambda p: p.order)))

    def __iter__(self) -> Iterator[ClusterPolicy]:
        return iter(self.policies)

    def __len__(self) -> int:
        return len(self.policies)

    def __bool__(self) -> bool:
        return bool(self.policies)

    def tier(self, tier: Tier) -> tuple[ClusterPolicy, ...]:
        """The policies of one tier, in evaluation order."""
        return tuple(p for p in self.policies if p.tier is tier)


#: No ClusterNetworkPolicy at all.
EMPTY: Final = ClusterPolicySet()
