"""Target settings the shared test clusters need, given to the targets that take them."""

from __future__ import annotations

from npc.targets import get_target

#: The example and golden clusters put isolated pods on shared nodes, which the alibaba
#: target refuses unless same-node traffic is trusted to another enforcer.
SHARED_NODES = {"same_node": "trust"}


def for_target(target: str, settings: dict[str, str] = SHARED_NODES) -> dict[str, str]:
    """The ``settings`` that ``target`` declares (an empty mapping for the others)."""
    return {k: v for k, v in settings.items() if k in get_target(target).settings}
