"""The shared vocabulary of flows: endpoints, connections, probes, node addresses.

The reference semantics, ``reach``, ``explain`` and every judge under :mod:`npc.rulesets` speak
of the same things: a :class:`Flow` (a new connection from one :class:`Endpoint` to another on
a protocol and port), a :class:`Probe` (a destination port to test), and the addresses that
belong to nodes. They live here, below all of them, so that a judge never has to import the
reference semantics it is compared with.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import netaddr

from npc import ir
from npc.snapshot import Pod, Snapshot

__all__ = [
    "Endpoint",
    "Flow",
    "Probe",
    "ProbeSyntaxError",
    "default_probes",
    "node_addresses",
    "pod_allowed_by",
    "pod_flows",
    "ports_match",
]

_PROBE = re.compile(r"^\s*(\d+)\s*(?:/\s*([A-Za-z]+)\s*)?$")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One end of a connection: an address, and the pod behind it if there is one.

    ``pod`` is None for addresses outside the cluster and for hostNetwork pods (rule 6);
    ``name`` is what to call the endpoint in reports."""

    address: netaddr.IPAddress
    pod: Pod | None = None
    name: str = ""

    @classmethod
    def of_pod(cls, pod: Pod, version: int | None = None) -> Endpoint:
        """The pod at its first address (of ``version``, when given)."""
        address = pod.ips[0] if version is None else pod.ip(version)
        if address is None:
            raise ValueError(f"pod {pod.key} has no IPv{version} address")
        return cls(address, None if pod.host_network else pod, pod.key)

    @classmethod
    def of_address(cls, address: str | netaddr.IPAddress) -> Endpoint:
        addr = netaddr.IPAddress(address)
        return cls(addr, None, str(addr))

    def __str__(self) -> str:
        return self.name or str(self.address)


@dataclass(frozen=True, slots=True)
class Flow:
    """A new connection attempt."""

    src: Endpoint
    dst: Endpoint
    protocol: ir.Protocol
    port: int

    def __post_init__(self) -> None:
        if self.src.address.version != self.dst.address.version:
            raise ValueError("a flow's endpoints must be of the same address family")


class ProbeSyntaxError(ValueError):
    """A ``PORT[/PROTOCOL]`` text that does not parse."""


@dataclass(frozen=True, slots=True, order=True)
class Probe:
    """A destination port to test connections on: ``80/TCP``."""

    port: int
    protocol: ir.Protocol = ir.Protocol.TCP

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise ProbeSyntaxError(f"port {self.port} is not between 1 and 65535")

    @classmethod
    def parse(cls, text: str) -> Probe:
        """``80``, ``80/TCP``, ``53/udp``, ``2905/SCTP`` (the protocol defaults to TCP)."""
        match = _PROBE.match(text)
        if match is None:
            raise ProbeSyntaxError(
                f'"{text}" is not PORT[/PROTOCOL] (a number, then optionally /TCP, /UDP or /SCTP)'
            )
        proto = (match.group(2) or "TCP").upper()
        if proto not in ir.Protocol.__members__:
            raise ProbeSyntaxError(f'unknown protocol "{match.group(2)}": use TCP, UDP or SCTP')
        return cls(int(match.group(1)), ir.Protocol(proto))

    def __str__(self) -> str:
        return f"{self.port}/{self.protocol}"


def default_probes(snapshot: Snapshot) -> tuple[Probe, ...]:
    """Every (port, protocol) declared as a containerPort in the snapshot, sorted."""
    return tuple(sorted({Probe(cp.port, cp.protocol) for pod in snapshot.pods for cp in pod.ports}))


def node_addresses(snapshot: Snapshot) -> dict[netaddr.IPAddress, str]:
    """Address -> node name for every address that is a node's own (rule 8): the addresses
    of the snapshot's Node objects, and those of hostNetwork pods scheduled on a node."""
    found: dict[netaddr.IPAddress, str] = {}
    for node in snapshot.nodes:
        for _, address in node.addresses:
            found.setdefault(address, node.name)
    for pod in snapshot.pods:
        if pod.host_network and pod.node_name:
            for address in pod.ips:
                found.setdefault(address, pod.node_name)
    return found


def ports_match(ports: ir.Ports, flow: Flow) -> bool:
    """Whether a rule's ports admit ``flow``: every port, or its protocol and port listed, or
    the destination pod's container port of a listed name (same protocol and number)."""
    if isinstance(ports, ir.AnyPort):
        return True
    names: tuple[str, ...] = ()
    if flow.dst.pod is not None:
        names = flow.dst.pod.port_names(flow.port, flow.protocol)
    return ports.matches(flow.protocol, flow.port, names)


def pod_allowed_by(
    allowed: Callable[[Flow], bool], src: Pod, dst: Pod, protocol: ir.Protocol, port: int
) -> bool:
    """Pod to pod under any flow verdict ``allowed``: the pods can connect when some address
    family both have lets the connection through (a reachability audit must not hide the
    IPv4 path of a pair whose IPv6 path is closed); pods sharing no family cannot connect."""
    versions = sorted({a.version for a in src.ips} & {a.version for a in dst.ips})
    return any(
        allowed(Flow(Endpoint.of_pod(src, v), Endpoint.of_pod(dst, v), protocol, port))
        for v in versions
    )


def pod_flows(
    snapshot: Snapshot, probes: tuple[Probe, ...] | None = None
) -> Iterator[tuple[Pod, Pod, Probe]]:
    """Every ordered pair of distinct pods of the snapshot with every probe (by default the
    snapshot's declared container ports), in snapshot order: the flows a check of a whole
    cluster walks."""
    chosen = default_probes(snapshot) if probes is None else probes
    for src in snapshot.pods:
        for dst in snapshot.pods:
            if src is dst:
                continue
            for probe in chosen:
                yield src, dst, probe
