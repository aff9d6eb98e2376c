"""``ipset save`` / ``ipset restore`` files: the sets iptables rules match with ``-m set``.

``create NAME TYPE [family inet|inet6] [options]`` creates a set of type ``hash:ip``,
``hash:net``, ``hash:ip,port`` or ``hash:net,port`` (others are refused); ``add NAME ENTRY
[timeout N] [nomatch] ...`` adds an entry (ipset(8)). An entry of a ``hash:*,port`` set is
``ADDRESS,[PROTO:]PORT[-PORT]`` (TCP when the protocol is left out).
"""

from __future__ import annotations

from collections.abc import Sequence

from npc.rulesets.iptables.lines import PROTOCOLS, Word, error, network, port_span
from npc.rulesets.iptables.model import IpSet, SetEntry

__all__ = ["IpSets"]


class IpSets:
    """The sets created and filled, line by line."""

    def __init__(self) -> None:
        self.created: dict[str, IpSet] = {}
        self.entries: dict[str, list[SetEntry]] = {}

    def sets(self) -> dict[str, IpSet]:
        """Every set with its entries."""
        return {
            name: IpSet(s.name, s.type, s.version, tuple(self.entries[name]), s.location)
            for name, s in self.created.items()
        }

    def line(self, words: Sequence[Word]) -> None:
        """Run one ``create`` or ``add`` line."""
        command = words[0].text
        if len(words) < 3:
            raise error(words[0].location, f"ipset: {command} needs a set name and more")
        name = words[1]
        if command == "create":
            kind = words[2].text
            if kind not in ("hash:ip", "hash:net", "hash:ip,port", "hash:net,port"):
                raise error(words[2].location, f'ipset: set type "{kind}" is not modelled')
            options = [w.text for w in words[3:]]
            version = 6 if "inet6" in options else 4
            self.created[name.text] = IpSet(name.text, kind, version, (), name.location)
            self.entries[name.text] = []
            return
        found = self.created.get(name.text)
        if found is None:
            raise error(name.location, f"ipset: add to {name.text}: no such set (create first)")
        self.entries[name.text].append(self._entry(found, words[2], words[3:]))

    def _entry(self, ipset: IpSet, value: Word, options: Sequence[Word]) -> SetEntry:
        nomatch = any(w.text == "nomatch" for w in options)
        address, _, port = value.text.partition(",")
        net = network(Word(address, value.location))
        if net.version != ipset.version:
            raise error(value.location, f"ipset: {value.text} is not of the set's family")
        protocol: int | None = None
        ports: tuple[int, int] | None = None
        if ipset.type.endswith(",port"):
            # ipset(8), hash:ip,port: without a protocol the port is a TCP port
            proto, _, number = port.rpartition(":") if ":" in port else ("tcp", "", port)
            if proto not in PROTOCOLS or not number:
                raise error(value.location, f'ipset: "{port}" is not PROTO:PORT')
            protocol = PROTOCOLS[proto]
            ports = port_span(Word(number, value.location), "-")
        elif port:
            raise error(value.location, f"ipset: {ipset.name} ({ipset.type}) takes no port")
        return SetEntry(
            (int(net.first), int(net.last)), value.location, net.prefixlen, protocol, ports, nomatch
        )
