"""How much a Calico output of npc holds (``npc compare``): its resources (policies of every
kind, tiers) as objects, the ingress and egress rules of the policies as rules."""

from __future__ import annotations

import yaml

from npc.backends.base import Counts, Emitted

__all__ = ["count"]

#: libyaml's safe loader when PyYAML has it (the same data, faster).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def count(emitted: Emitted) -> Counts:
    """Counted over the YAML documents of the output (a ``List`` counts its items)."""
    objects = rules = 0
    for doc in yaml.load_all(emitted.text, Loader=_LOADER):
        if not isinstance(doc, dict):
            continue
        items = doc.get("items") if doc.get("kind") == "List" else [doc]
        for item in items or ():
            objects += 1
            spec = item.get("spec") or {}
            rules += len(spec.get("ingress") or ()) + len(spec.get("egress") or ())
    return Counts(objects, rules, "resources (policies and tiers)")
