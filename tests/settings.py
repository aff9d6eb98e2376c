"""Target settings the shared test clusters need, given to the targets that take them."""

from __future__ import annotations

from npc.targets import settings_for

#: The example and golden clusters put isolated pods on shared nodes, which the alibaba
#: target refuses unless same-node traffic is trusted to another enforcer.
SHARED_NODES = {"same_node": "trust"}


def for_target(target: str, settings: dict[str, str] = SHARED_NODES) -> dict[str, str]:
    """The ``settings`` that ``target`` declares (an empty mapping for the others)."""
    return settings_for(target, settings)
