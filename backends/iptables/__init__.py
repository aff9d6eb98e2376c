"""The iptables target: NPC chains for ``iptables-restore --noflush`` and their ipsets.

``backend`` emits (through ``templates/iptables.j2`` and ``templates/ipset.j2``), ``plan``
builds the chains and sets from :mod:`npc.backends.grants`, ``dispatch`` the prefix tree
that finds a pod's chain, ``syntax`` holds the lexical rules, ``apply`` loads the result.
"""
