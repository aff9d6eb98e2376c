"""Calico: the selector language and a policy evaluator with Calico's semantics.

:mod:`.selector` parses and evaluates Calico selectors; :mod:`.model` reads
``projectcalico.org/v3`` policy objects back from YAML (npc's output or what ``calicoctl get
-o yaml`` prints); :mod:`.evaluate` decides flows over a cluster snapshot the way Calico
(Felix) would; :mod:`.read` is the judge verify loads (:func:`read`, positions included).
The ``calico`` backend shares only :mod:`.syntax` (quoting) with them.
"""

from npc.rulesets.calico.read import CalicoJudge, read

__all__ = ["CalicoJudge", "read"]
