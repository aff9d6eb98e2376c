"""The iptables target with ClusterNetworkPolicy tiers, against the reference semantics:
random clusters (hostNetwork pods and labelled nodes included), NetworkPolicies and
ClusterNetworkPolicies, written as YAML, compiled by npc (with ipsets, ``--sets none`` and per
node), read back by the iptables judge (:mod:`npc.rulesets.iptables`) and compared flow by
flow (ICMP too). The golden cases with tiers (the conformance suite's among them) are in
``test_iptables_semantics.py``; the kernel tests load the same text into the kernel."""

from __future__ import annotations

import collections
import re

import netaddr
import pytest

import npc
from npc import ir, tiers
from npc.backends.iptables.syntax import LEVELS_MAX
from npc.backends.iptables.tiers import chain_depth
from npc.errors import UnsupportedError
from npc.rulesets import iptables
from npc.rulesets.base import Packet
from npc.rulesets.iptables.evaluate import IptablesJudge
from npc.targets import get_backend
from tests.flow_check import Verdict, wrong_flows
from tests.synth_tiers import random_tier_bundle


class _Text:
    """What the judge reads: a named text."""

    def __init__(self, name: str, text: str) -> None:
        self.name, self.text = name, text


def _judge(artifact: npc.Artifact) -> IptablesJudge:
    files = dict(artifact.files)
    return iptables.read([_Text("out.ipset", files[".ipset"]), _Text("out", files[""])])


def levels(text: str) -> int:
    """The level below ``FORWARD`` of the deepest NPC chain, over both families."""
    deepest = 0
    for part in text.split("\n# ip6tables-restore --noflush (IPv6)"):
        graph: dict[str, list[str]] = {}
        for name, body in re.findall(r"^-A (\S+) (.*)$", part, re.MULTILINE):
            graph.setdefault(name, []).append(body)
        if "NPC-FORWARD" in graph:
            deepest = max(deepest, chain_depth(graph, "NPC-FORWARD"))
    return deepest


def _whole(bundle: npc.Bundle, sets: str) -> Verdict:
    artifact = npc.compile(bundle, "iptables", {"sets": sets})
    assert levels(artifact.files[0][1]) <= LEVELS_MAX  # what iptables-nft loads
    judge = _judge(artifact)
    return lambda _s, _d, first: judge.decide_packet(first).allowed


def _per_node(bundle: npc.Bundle) -> Verdict:
    """Each node's ``--node`` ruleset: a flow passes its source pod's node and its
    destination pod's node (once when they are the same)."""
    assert bundle.snapshot is not None
    nodes = sorted({p.node_name for p in bundle.snapshot.pods if p.node_name})
    judges = {n: _judge(npc.compile(bundle, "iptables", {"node": n})) for n in nodes}

    def allows(src: npc.flows.Endpoint, dst: npc.flows.Endpoint, first: Packet) -> bool:
        hops = {e.pod.node_name for e in (src, dst) if e.pod is not None and e.pod.node_name}
        return all(judges[n].decide_packet(first).allowed for n in hops)

    return allows


@pytest.mark.parametrize("sets", ["ipset", "none"])
@pytest.mark.parametrize("seed", range(30))
def test_iptables_tiers_agree_with_the_oracle(seed: int, sets: str) -> None:
    bundle = random_tier_bundle(seed, host_network=seed % 2 == 1)
    checked, wrong = wrong_flows(bundle, _whole(bundle, sets))
    assert checked > 50
    assert wrong == [], f"seed {seed}:\n" + "\n".join(wrong[:20])


@pytest.mark.parametrize("seed", range(10))
def test_per_node_tier_rulesets_together_agree_with_the_oracle(seed: int) -> None:
    bundle = random_tier_bundle(600 + seed, host_network=True)
    _, wrong = wrong_flows(bundle, _per_node(bundle))
    assert wrong == [], f"seed {seed}:\n" + "\n".join(wrong[:20])


TIERS = """\
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: admin}
spec:
  tier: Admin
  priority: 5
  subject: {namespaces: {}}
  ingress:
  - {action: Deny, from: [{namespaces: {matchLabels: {team: red}}}]}
  - action: Pass
    from: [{namespaces: {matchLabels: {team: blue}}}]
    protocols: [{tcp: {destinationPort: {number: 80}}}]
  - action: Accept
    from: [{namespaces: {matchLabels: {team: blue}}}]
---
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: baseline}
spec:
  tier: Baseline
  priority: 5
  subject: {namespaces: {}}
  ingress:
  - {action: Deny, from: [{namespaces: {}}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web, namespace: web}
spec:
  podSelector: {}
  ingress: [{from: [{namespaceSelector: {matchLabels: {team: blue}}}], ports: [{port: 8080}]}]
"""
CLUSTER = """\
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: red, labels: {team: red}}}
- {apiVersion: v1, kind: Namespace, metadata: {name: blue, labels: {team: blue}}}
- {apiVersion: v1, kind: Namespace, metadata: {name: web}}
- {apiVersion: v1, kind: Namespace, metadata: {name: open}}
- {apiVersion: v1, kind: Pod, metadata: {name: r, namespace: red}, spec: {nodeName: node1},
   status: {podIPs: [{ip: 10.9.0.2}]}}
- {apiVersion: v1, kind: Pod, metadata: {name: b, namespace: blue}, spec: {nodeName: node1},
   status: {podIPs: [{ip: 10.9.1.2}]}}
- {apiVersion: v1, kind: Pod, metadata: {name: w, namespace: web}, spec: {nodeName: node1},
   status: {podIPs: [{ip: 10.9.2.2}]}}
- {apiVersion: v1, kind: Pod, metadata: {name: o, namespace: open}, spec: {nodeName: node1},
   status: {podIPs: [{ip: 10.9.3.2}]}}
"""


@pytest.mark.parametrize("sets", ["ipset", "none"])
def test_deny_pass_accept_and_baseline_decide_where_the_spec_says(sets: str) -> None:
    """The judge is not vacuous: each tier's action decides some flow, by the rule the
    comment names."""
    artifact = npc.compile(
        [npc.Source("p.yaml", TIERS), npc.Source("c.yaml", CLUSTER)], "iptables", {"sets": sets}
    )
    judge = _judge(artifact)
    rules = artifact.files[0][1].splitlines()

    def decide(src: str, dst: str, port: int) -> tuple[bool, str]:
        d = judge.decide_packet(Packet(netaddr.IPAddress(src), netaddr.IPAddress(dst), 6, port))
        line = rules[int(d.rule.rsplit(":", 1)[1]) - 1] if d.rule is not None else ""
        return d.allowed, line

    allowed, line = decide("10.9.0.2", "10.9.2.2", 8080)  # red: Admin Deny, before web's NP
    assert not allowed and "admin ingress rule 0 Deny" in line
    allowed, line = decide("10.9.1.2", "10.9.2.2", 8080)  # blue, 8080: Admin Accept
    assert allowed and "admin ingress rule 2 Accept" in line
    allowed, line = decide("10.9.1.2", "10.9.2.2", 80)  # blue, 80: Pass, then web's NP drops
    assert not allowed and re.search(r"-A NPC-I-\w+ .*-j DROP", line)
    allowed, line = decide("10.9.1.2", "10.9.3.2", 80)  # Pass, no NP: Baseline Deny
    assert not allowed and "baseline ingress rule 0 Deny" in line
    allowed, _ = decide("192.0.2.1", "10.9.3.2", 80)  # not a pod peer: falls off, allowed
    assert allowed


def _emit(*policies: tiers.ClusterPolicy) -> IptablesJudge:
    bundle = npc.load([npc.Source("c.yaml", CLUSTER)])
    backend = get_backend("iptables")
    emitted = backend.emit_tiered(
        bundle.policies,
        tiers.ClusterPolicySet(policies),
        bundle.snapshot,
        backend.make_options({}),
    )
    files = dict(emitted.files)
    return iptables.read([_Text("out.ipset", files[".ipset"]), _Text("out", files[""])])


def _web_subject(*rules: tiers.ClusterRule) -> tiers.ClusterPolicy:
    web = ir.LabelSelector.of({"kubernetes.io/metadata.name": "web"})
    return tiers.ClusterPolicy("p", tiers.Tier.ADMIN, 1, tiers.Subject(web), ingress=rules)


@pytest.mark.parametrize("action", [tiers.Action.DENY, tiers.Action.PASS])
def test_an_unknown_peer_matches_everything_in_deny_and_pass(action: tiers.Action) -> None:
    """Fail closed: a peer npc does not know matches every source (Deny: dropped; Pass:
    handed on, here to the Baseline tier's Deny) and nothing in an Accept rule."""
    unknown = tiers.ClusterRule(action, (tiers.UnknownPeer(),))
    baseline = tiers.ClusterPolicy(
        "b",
        tiers.Tier.BASELINE,
        1,
        tiers.Subject(),
        ingress=(tiers.ClusterRule(tiers.Action.DENY, (tiers.UnknownPeer(),)),),
    )
    judge = _emit(_web_subject(unknown), baseline)
    for src in ("10.9.0.2", "192.0.2.1"):
        packet = Packet(netaddr.IPAddress(src), netaddr.IPAddress("10.9.2.2"), 17, 53)
        assert not judge.decide_packet(packet).allowed


def test_an_unknown_peer_in_accept_matches_nothing() -> None:
    accept = tiers.ClusterRule(tiers.Action.ACCEPT, (tiers.UnknownPeer(),))
    deny = tiers.ClusterRule(tiers.Action.DENY, (ir.PodPeer(ir.EVERYTHING),))
    judge = _emit(_web_subject(accept, deny))
    packet = Packet(netaddr.IPAddress("10.9.1.2"), netaddr.IPAddress("10.9.2.2"), 6, 80)
    assert not judge.decide_packet(packet).allowed


def test_domain_names_refused_by_a_direct_call() -> None:
    """Also past ``npc.compile``'s check: an error naming the policy, the field and the
    target, never a silently missing rule."""
    rule = tiers.ClusterRule(tiers.Action.DENY, (tiers.DomainNamesPeer(("example.com",)),))
    policy = tiers.ClusterPolicy("dns", tiers.Tier.ADMIN, 1, tiers.Subject(), egress=(rule,))
    with pytest.raises(UnsupportedError) as info:
        _emit(policy)
    (d,) = info.value.diagnostics
    assert "ClusterNetworkPolicy dns" in d.message and "target iptables" in d.message
    assert d.path == "spec.egress[0].to[0]"


def test_one_family_warns_about_tier_subjects_of_the_other() -> None:
    """``--family 4`` leaves IPv6 unfiltered: subjects of a ClusterNetworkPolicy with IPv6
    addresses are named in the warning, as NetworkPolicy's isolated pods are."""
    cluster = CLUSTER.replace("{ip: 10.9.2.2}", "{ip: 10.9.2.2}, {ip: 'fd09::2'}")
    cnp = TIERS.split("---\n")[1]  # the Baseline deny only: no NetworkPolicy isolates web/w
    artifact = npc.compile(
        [npc.Source("p.yaml", cnp), npc.Source("c.yaml", cluster)], "iptables", {"family": "4"}
    )
    assert any("IPv6" in d.message and "web/w" in d.message for d in artifact.diagnostics)


STRIPED_TIERS = """\
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: striped-admin}
spec:
  tier: Admin
  priority: 1
  subject: {pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: a0}}}}
  ingress:
  - action: Deny
    from: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: a1}}}}]
    protocols: [{destinationNamedPort: http}]
  - action: Pass
    from: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: a1}}}}]
  - action: Accept
    from: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: a2}}}}]
    protocols: [{tcp: {destinationPort: {number: 81}}}, {udp: {destinationPort: {number: 53}}}]
  egress:
  - action: Accept
    to: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: a2}}}}]
    protocols: [{destinationNamedPort: http}]
  - action: Deny
    to: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: a2}}}}]
---
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: striped-baseline}
spec:
  tier: Baseline
  priority: 1
  subject: {namespaces: {}}
  ingress:
  - action: Deny
    from: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: a0}}}}]
"""


def striped_cluster(pods: int) -> str:
    """Pods whose consecutive addresses cycle through three apps, so no two of one app are
    neighbours: every selector resolves to as many blocks as pods (trees with --sets none);
    the ``http`` port differs between neighbours."""
    items = ["- {apiVersion: v1, kind: Namespace, metadata: {name: striped}}"]
    for i in range(pods):
        items.append(
            f"- {{apiVersion: v1, kind: Pod, metadata: {{name: p{i}, namespace: striped, "
            f"labels: {{app: a{i % 3}}}}}, spec: {{nodeName: node1, containers: [{{name: c, "
            f"ports: [{{name: http, containerPort: {80 + i % 2}}}]}}]}}, "
            f"status: {{podIPs: [{{ip: 10.78.0.{i + 2}}}, {{ip: 'fd78::{i + 2:x}'}}]}}}}"
        )
    return "apiVersion: v1\nkind: List\nitems:\n" + "\n".join(items) + "\n"


#: One Admin rule over the striped pods: subjects, peers and named-port elements are each
#: more blocks than one chain tests.
TREE_TIERS = "".join(STRIPED_TIERS.splitlines(keepends=True)[:11])


@pytest.mark.parametrize("policies", ["tree", "striped"])
@pytest.mark.parametrize("sets", ["ipset", "none"])
def test_long_lists_go_through_trees_and_agree_with_the_oracle(sets: str, policies: str) -> None:
    """``--sets none`` with more blocks than one chain tests: subjects, peers and named-port
    elements are dispatched through prefix trees (``NPC-CT-`` chains) as deep as
    iptables-nft allows, and the result is exact."""
    text = TREE_TIERS if policies == "tree" else STRIPED_TIERS
    bundle = npc.load([npc.Source("p.yaml", text), npc.Source("c.yaml", striped_cluster(60))])
    out = npc.compile(bundle, "iptables", {"sets": sets}).text
    if sets == "none" and policies == "tree":
        assert "nested less" not in out
        assert len(re.findall(r"^:NPC-CT-", out, re.MULTILINE)) > 10
        per_chain = collections.Counter(re.findall(r"^-A (\S+)", out, re.MULTILINE))
        assert max(per_chain.values()) <= 20  # a packet meets a few rules per level
    checked, wrong = wrong_flows(bundle, _whole(bundle, sets))
    assert checked > 1000
    assert wrong == [], "\n".join(wrong[:20])


#: More Admin policies over the striped pods: nested, their branches and trees would sit
#: deeper than iptables-nft loads.
DEEP_TIERS = STRIPED_TIERS + "".join(
    "---\n"
    "apiVersion: policy.networking.k8s.io/v1alpha2\n"
    "kind: ClusterNetworkPolicy\n"
    f"metadata: {{name: deep{i}}}\n"
    "spec:\n"
    "  tier: Admin\n"
    f"  priority: {10 + i}\n"
    "  subject:\n"
    f"    pods: {{namespaceSelector: {{}}, podSelector: {{matchLabels: {{app: a{i % 3}}}}}}}\n"
    "  ingress:\n"
    "  - action: Deny\n"
    "    from:\n"
    "    - pods:\n"
    "        namespaceSelector: {}\n"
    f"        podSelector: {{matchLabels: {{app: a{(i + 1) % 3}}}}}\n"
    "    protocols:\n"
    f"    - tcp: {{destinationPort: {{number: {80 + i % 2}}}}}\n"
    "    - udp: {destinationPort: {number: 53}}\n"
    for i in range(2)
)


def test_nesting_gives_way_before_iptables_nft_refuses_the_depth() -> None:
    """nf_tables refuses chains nested 16 levels below FORWARD ("Too many links"): where
    branches and trees would nest that deep, npc nests less (and says so), still exact."""
    bundle = npc.load([npc.Source("p.yaml", DEEP_TIERS), npc.Source("c.yaml", striped_cluster(24))])
    text = npc.compile(bundle, "iptables", {"sets": "none"}).text
    assert "tier rules nested less (0 of 2)" in text  # all the way to flat rules
    checked, wrong = wrong_flows(bundle, _whole(bundle, "none"))
    assert checked > 1000
    assert wrong == [], "\n".join(wrong[:20])
