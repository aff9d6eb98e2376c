"""Locating many findings in one big source walks it once, not once per finding.

``npc lint`` on the 10,000-pod bench cluster (one ``kubectl get -o json`` List of 5,000
policies, 10 MB) located each of its 4,090 findings and each policy's start with a walk of
the whole List: 14 minutes. Sources that big are walked for the paths asked, so
:meth:`npc.Bundle.locate_all` asks for all of them at once. Counted here, not timed; the
positions must be the ones :meth:`npc.Bundle.locate` gives one at a time."""

from __future__ import annotations

import json

import pytest

import npc
from npc.frontend import positions


def _policy_list(count: int) -> str:
    items = [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": f"p{i}", "namespace": "default"},
            # an ipBlock peer selecting pod addresses and a podSelector nothing matches:
            # findings for lint
            "spec": {
                "podSelector": {"matchLabels": {"app": f"none{i}"}},
                "ingress": [{"from": [{"podSelector": {"matchLabels": {"x": "y"}}}]}],
            },
        }
        for i in range(count)
    ]
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items}, indent=1)


_CLUSTER = """
apiVersion: v1
kind: Namespace
metadata: {name: default, labels: {kubernetes.io/metadata.name: default}}
---
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: default, labels: {app: a}}
spec: {nodeName: n1, containers: [{name: c, image: i}]}
status: {podIP: 10.0.0.1, podIPs: [{ip: 10.0.0.1}]}
"""


def test_lint_walks_a_big_source_once(monkeypatch: pytest.MonkeyPatch) -> None:
    text = _policy_list(40)
    # the sources of this test count as big: located by the paths asked, not indexed whole
    monkeypatch.setattr(positions, "_INDEX_LIMIT", len(text) // 2)
    bundle = npc.load([npc.Source("policies.json", text), npc.Source("cluster.yaml", _CLUSTER)])
    walks = []
    walk = positions._Walker.walk

    def counted(self: positions._Walker, *args: object, **kwargs: object) -> object:
        walks.append(self)
        return walk(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(positions._Walker, "walk", counted)
    findings = npc.lint(bundle)
    assert len([f for f in findings if f.location and f.location.file == "policies.json"]) >= 40
    assert len(walks) <= 4  # a few batches (findings, policy starts), never one per finding


def test_locate_all_equals_locate_one_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    text = _policy_list(12)
    monkeypatch.setattr(positions, "_INDEX_LIMIT", len(text) // 2)
    sources = [npc.Source("policies.json", text), npc.Source("cluster.yaml", _CLUSTER)]
    one_by_one = npc.load(sources)
    expected = [one_by_one.locate(p.origin) for p in one_by_one.policies]
    batched = npc.load(sources)
    assert batched.locate_all([p.origin for p in batched.policies]) == expected
    assert all(loc is not None and loc.file == "policies.json" for loc in expected)
    assert len({loc.line for loc in expected if loc is not None}) == 12
