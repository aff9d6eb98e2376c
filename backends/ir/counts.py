"""How much an ``ir`` output holds (``npc compare``): NetworkPolicies and
ClusterNetworkPolicies as objects, their rules (both directions) as rules."""

from __future__ import annotations

import yaml

from npc.backends.base import Counts, Emitted

__all__ = ["count"]

#: libyaml's safe loader when PyYAML has it (the same data, faster).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def count(emitted: Emitted) -> Counts:
    """Counted over the YAML document: ``policies`` and ``clusterPolicies``, whose
    ``ingress``/``egress`` are rule lists (or a word such as ``not isolated``)."""
    data = yaml.load(emitted.text, Loader=_LOADER) or {}
    objects = rules = 0
    for key in ("policies", "clusterPolicies"):
        for policy in data.get(key) or ():
            objects += 1
            for direction in ("ingress", "egress"):
                found = policy.get(direction)
                rules += len(found) if isinstance(found, list) else 0
    return Counts(objects, rules, "policies")
