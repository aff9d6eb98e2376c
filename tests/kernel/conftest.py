"""Fixtures for kernel tests: labs of network namespaces, always cleaned up.

Every test here carries the ``kernel`` marker. Where network namespaces cannot be created
(not root, no ``ip``/``nft``), the tests skip with the reason, loudly (``-ra`` lists it).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager

import netaddr
import pytest

from npc import ir
from tests.kernel import probe
from tests.kernel.check import hosts_of
from tests.kernel.netns import HostSpec, Lab, build, netns_unavailable
from tests.synth import random_cluster

MakeLab = Callable[[Iterable[HostSpec]], Lab]
Ports = Sequence[tuple[ir.Protocol, int]]
#: The random clusters of the kernel tests (a lab of this shape holds any of them).
SHAPE = {"namespaces": 3, "pods": 8}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/kernel/" in item.nodeid:
            item.add_marker(pytest.mark.kernel)


@pytest.fixture(scope="session")
def netns_ok() -> None:
    reason = netns_unavailable()
    if reason is not None:
        pytest.skip(f"KERNEL TESTS SKIPPED: {reason}")


@contextmanager
def _labs() -> Iterator[MakeLab]:
    """A lab builder; every namespace its labs created is deleted on exit, pass or fail."""
    labs: list[Lab] = []

    def make(hosts: Iterable[HostSpec]) -> Lab:
        lab = Lab()
        labs.append(lab)  # registered first: a half-built lab is destroyed too
        return build(hosts, lab)

    try:
        yield make
    finally:
        for lab in labs:
            lab.destroy()


@pytest.fixture
def make_lab(netns_ok: None) -> Iterator[MakeLab]:
    """Build labs for one test."""
    with _labs() as make:
        yield make


@pytest.fixture(scope="module")
def make_module_lab(netns_ok: None) -> Iterator[MakeLab]:
    """Build labs shared by the tests of a module."""
    with _labs() as make:
        yield make


@pytest.fixture(scope="module", params=[False, True], ids=["ipv4", "dualstack"])
def two_node_lab(request: pytest.FixtureRequest, make_module_lab: MakeLab) -> tuple[bool, Lab]:
    """(dual-stack?, a lab with two nodes) for :data:`SHAPE` clusters, shared by a module."""
    ipv6 = bool(request.param)
    snapshot = random_cluster(random.Random(0), **SHAPE, ipv6=ipv6)
    return ipv6, make_module_lab(hosts_of(snapshot))


@pytest.fixture(scope="session")
def sctp_problem(netns_ok: None) -> str | None:
    """Why SCTP cannot be probed here (None when it can): two hosts and a router with no
    ruleset must pass raw SCTP INIT packets both ways, IPv4 and IPv6."""
    ips = {
        "a": [netaddr.IPAddress("10.250.0.2"), netaddr.IPAddress("fd25::2")],
        "b": [netaddr.IPAddress("10.250.0.3"), netaddr.IPAddress("fd25::3")],
    }
    lab = Lab()
    try:
        build(((key, addrs, "router") for key, addrs in ips.items()), lab)
        a, b = lab.hosts["a"], lab.hosts["b"]
        probes = [
            probe.Probe(x.netns, str(x.ips[v]), y.netns, str(y.ips[v]), "SCTP", 5000)
            for x, y in ((a, b), (b, a))
            for v in (0, 1)
        ]
        passed = probe.run(probes, [True] * len(probes))
    except OSError as exc:
        return f"raw SCTP sockets fail here: {exc}"
    finally:
        lab.destroy()
    if not all(passed):
        return "raw SCTP INIT packets do not cross an empty router here"
    return None


@pytest.fixture
def probe_ports_for(sctp_problem: str | None) -> Callable[[Ports], Ports]:
    """The ports to probe: SCTP ones only where SCTP can be probed."""

    def keep(ports: Ports) -> Ports:
        if sctp_problem is None:
            return ports
        return [(proto, port) for proto, port in ports if proto is not ir.Protocol.SCTP]

    return keep
