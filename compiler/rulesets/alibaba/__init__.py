"""The judge of ECS security groups on Terway trunk ENIs: :mod:`.model`, :mod:`.read`,
:mod:`.evaluate`, and :mod:`.judge` (:func:`read`, what ``npc verify`` loads)."""

from npc.rulesets.alibaba.judge import EcsJudge, read

__all__ = ["EcsJudge", "read"]
