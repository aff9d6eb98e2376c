"""``python -m npc``."""

from npc.cli import run

run()
