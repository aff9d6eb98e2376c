"""Judges: each reads a target's ruleset (whoever wrote it) into a typed model and decides
flows the way that target does, independently of npc's emitters and of its reference
semantics."""
