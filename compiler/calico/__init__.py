"""Calico: the selector language and a policy evaluator with Calico's semantics.

:mod:`npc.calico.selector` parses and evaluates Calico selectors; :mod:`npc.calico.model`
reads ``projectcalico.org/v3`` policy objects back from YAML; :mod:`npc.calico.evaluate`
decides flows over a cluster snapshot the way Calico (Felix) would. The ``calico`` backend
emits with them; tests read its output back with them.
"""
