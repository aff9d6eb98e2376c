"""How much an alibaba output of npc holds (``npc compare``): security groups as objects,
their permissions (ingress and egress rules) as rules, from the JSON document or from the
``aliyun`` script (one ``CreateSecurityGroup`` per group, one ``Permissions.N.IpProtocol``
argument per permission)."""

from __future__ import annotations

import json
import re

from npc.backends.base import Counts, Emitted

__all__ = ["count"]

_CREATE = re.compile(r"\baliyun ecs CreateSecurityGroup\b")
_PERMISSION = re.compile(r"^\s*--Permissions\.\d+\.IpProtocol ", re.MULTILINE)


def count(emitted: Emitted) -> Counts:
    """Groups and permissions of the JSON document, or of the script."""
    text = emitted.text
    if text.startswith("#!"):
        groups = len(_CREATE.findall(text))
        permissions = len(_PERMISSION.findall(text))
    else:
        found = json.loads(text).get("securityGroups", [])
        groups = len(found)
        permissions = sum(len(g.get("ingress", ())) + len(g.get("egress", ())) for g in found)
    return Counts(groups, permissions, "security groups", "permissions")
