"""ClusterNetworkPolicy and targets: a target compiles one only when it opts in (declares
``Capability.CLUSTER_NETWORK_POLICY`` and overrides ``emit_tiered``); every other target,
including ones written later, refuses it by default, naming the policy and the target."""

from __future__ import annotations

from typing import ClassVar

import pytest

import npc
from npc import ir
from npc.backends.base import Backend, BackendOptions, Emitted
from npc.capabilities import NETWORK_POLICY, Capability
from npc.errors import UnsupportedError
from npc.snapshot import Snapshot
from npc.targets import REGISTRY, get_backend
from npc.tiers import Action, ClusterPolicy, ClusterPolicySet, ClusterRule, Subject, Tier

CNP = """\
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: deny-imds}
spec:
  tier: Admin
  priority: 10
  subject: {namespaces: {}}
  egress:
  - action: Deny
    to: [{networks: [169.254.169.254/32]}]
"""
NS = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n"


class _Plain(Backend):
    name = "plain"
    description = "a backend that knows nothing of tiers"
    capabilities: ClassVar[frozenset[Capability]] = NETWORK_POLICY

    def emit(
        self, policies: ir.PolicySet, snapshot: Snapshot | None, options: BackendOptions
    ) -> Emitted:
        return Emitted("ok")


def test_network_policy_set_lacks_the_new_capability() -> None:
    assert Capability.CLUSTER_NETWORK_POLICY not in NETWORK_POLICY
    assert NETWORK_POLICY | {Capability.CLUSTER_NETWORK_POLICY} == frozenset(Capability)


def test_default_emit_tiered_refuses_cluster_policies() -> None:
    policy = ClusterPolicy(
        "p",
        Tier.ADMIN,
        1,
        Subject(),
        egress=(ClusterRule(Action.DENY, (ir.PodPeer(ir.EVERYTHING),)),),
    )
    backend = _Plain()
    assert (
        backend.emit_tiered(ir.PolicySet(), ClusterPolicySet(), None, BackendOptions()).text == "ok"
    )
    with pytest.raises(UnsupportedError, match="target plain cannot express ClusterNetworkPolicy"):
        backend.emit_tiered(ir.PolicySet(), ClusterPolicySet((policy,)), None, BackendOptions())


@pytest.mark.parametrize("target", sorted(REGISTRY))
def test_targets_without_the_capability_refuse_naming_policy(target: str) -> None:
    if Capability.CLUSTER_NETWORK_POLICY in get_backend(target).capabilities:
        pytest.skip(f"{target} compiles ClusterNetworkPolicy")
    with pytest.raises(UnsupportedError) as info:
        npc.compile([npc.Source("p.yaml", CNP), npc.Source("c.yaml", NS)], target)
    (d,) = info.value.diagnostics
    assert "ClusterNetworkPolicy deny-imds" in d.message and f"target {target}" in d.message
    assert d.location is not None and (d.location.line, d.location.column) == (5, 9)


@pytest.mark.parametrize("target", sorted(REGISTRY))
def test_domain_names_refused_everywhere(target: str) -> None:
    text = CNP.replace("networks: [169.254.169.254/32]", "domainNames: [example.com]")
    text = text.replace("Deny", "Accept")
    with pytest.raises(UnsupportedError) as info:
        npc.compile([npc.Source("p.yaml", text), npc.Source("c.yaml", NS)], target)
    assert any("deny-imds" in d.message for d in info.value.diagnostics)
    if Capability.CLUSTER_NETWORK_POLICY in get_backend(target).capabilities:
        assert any("domainNames" in d.message for d in info.value.diagnostics)
