"""Emitters: one package per target (``npc.backends.<target>``), found through
:mod:`npc.targets`, plus what address-based targets share (:mod:`.grants`) and the
contract every backend fulfils (:mod:`.base`)."""
