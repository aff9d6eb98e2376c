"""Reading input the way the API server does: sources, YAML/JSON with positions, strict
decoding, the API server's validation, and lowering to IR (:func:`load` -> :class:`Bundle`).

Only the face of the package (``npc``, :mod:`npc.api`, :mod:`npc.cli`) imports it."""

from npc.frontend.bundle import Bundle, load

__all__ = ["Bundle", "load"]
