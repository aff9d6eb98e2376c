"""The nft target with ClusterNetworkPolicy tiers, against the reference semantics: random
clusters, NetworkPolicies and ClusterNetworkPolicies, written as YAML, compiled by npc and
read back by the nft judge (:mod:`npc.rulesets.nft`) and compared flow by flow (ICMP too).
The kernel tests run the golden cases (the conformance suite's among them) in the real
kernel."""

from __future__ import annotations

import pytest

import npc
from npc.rulesets import nft
from tests.flow_check import wrong_flows
from tests.synth_tiers import random_tier_bundle

OUTSIDE = ("192.0.2.1", "10.77.9.9", "192.168.7.10", "2001:db8::1")


@pytest.mark.parametrize("seed", range(40))
def test_nft_tiers_agree_with_the_oracle(seed: int) -> None:
    bundle = random_tier_bundle(seed)
    text = npc.compile(bundle, "nft").text
    judge = nft.read([_Text("ruleset.nft", text)])
    checked, wrong = wrong_flows(bundle, lambda _s, _d, first: judge.decide_packet(first).allowed)
    assert checked > 50
    assert wrong == [], f"seed {seed}:\n" + "\n".join(wrong[:20])


class _Text:
    """What the judge reads: a named text."""

    def __init__(self, name: str, text: str) -> None:
        self.name, self.text = name, text
