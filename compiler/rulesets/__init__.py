"""Judges: each target's rulesets (whoever wrote them) read into typed models that decide
flows the way that target does. Independent of the backends and of the reference semantics."""
