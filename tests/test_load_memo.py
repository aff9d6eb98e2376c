"""What one load remembers (clean selectors, ports and ipBlocks; lowered IR) changes nothing.

The frontend validates a selector, a port or an ipBlock once per load when it is clean, and
lowers equal parts once. So reading many objects together must report, for each, exactly
what reading it alone reports, whatever came before it: in particular a part whose problems
were held back in one object (under a field that could not be decoded, or beside a
misspelt field) must still be reported in the next object that has it. And the policies
must be the same IR.
"""

from __future__ import annotations

import json
import random
import re
from typing import Any

import npc
from npc.errors import NpcError
from npc.frontend.source import Source
from tests.test_decode_fast import FULL_POD, FULL_POLICY, _variants

_SOURCE = re.compile(r"source=[0-9]+")


def _diagnostics(sources: list[Source]) -> tuple[list[str], Any]:
    try:
        bundle = npc.load(sources)
    except NpcError as exc:
        return [d.render() for d in exc.diagnostics], None
    return [d.render() for d in bundle.diagnostics], bundle.policies


def _named(obj: dict[str, Any], i: int) -> dict[str, Any]:
    """``obj`` with a name of its own (two objects of one name are a problem of the pair)."""
    meta = obj.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("name"), str):
        obj = {**obj, "metadata": {**meta, "name": f"{meta['name']}-{i}"}}
    return obj


def test_each_object_reports_what_it_reports_alone() -> None:
    rng = random.Random(13)
    variants = list(_variants(FULL_POLICY, rng))
    # Each broken variant next to the well-formed policy, in both orders, and runs of them.
    objects = [FULL_POLICY]
    for variant in variants:
        objects += [variant, FULL_POLICY]
    objects.append(FULL_POD)
    objects.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod"}})
    sources = [
        Source(f"s{i}.json", json.dumps(_named(obj, i))) for i, obj in enumerate(objects)
    ]
    together, _ = _diagnostics(sources)
    alone: list[str] = []
    for source in sources:
        found, _ = _diagnostics([source])
        # Alone, a policy without the namespace or pod has nothing else to say about them.
        alone.extend(found)
    assert sorted(together) == sorted(alone)


def test_the_policies_are_the_same_ir_read_together_or_alone() -> None:
    rng = random.Random(7)
    clean = [FULL_POLICY]
    for variant in _variants(FULL_POLICY, rng):
        _, policies = _diagnostics([Source("v.json", json.dumps(variant))])
        if policies is not None:
            clean.append(variant)
    sources = [Source(f"s{i}.json", json.dumps(_named(o, i))) for i, o in enumerate(clean)]
    _, together = _diagnostics(sources)
    assert together is not None
    alone = [p for s in sources for p in _diagnostics([s])[1]]
    assert len(together) == len(alone) > 10
    by_key = {p.key: p for p in alone}
    for policy in together:
        other = by_key[policy.key]
        assert policy == other
        # Field for field, origins aside (a source's index depends on the sources before it).
        assert _SOURCE.sub("", repr(policy)) == _SOURCE.sub("", repr(other))
        assert policy.ignored_ingress == other.ignored_ingress
        assert policy.ignored_egress == other.ignored_egress
