"""Fixtures for kernel tests: labs of network namespaces, always cleaned up.

Every test here carries the ``kernel`` marker. Where network namespaces cannot be created
(not root, no ``ip``/``nft``), the tests skip with the reason, loudly (``-ra`` lists it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import pytest

from tests.kernel.netns import HostSpec, Lab, build, netns_unavailable

MakeLab = Callable[[Iterable[HostSpec]], Lab]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/kernel/" in item.nodeid:
            item.add_marker(pytest.mark.kernel)


@pytest.fixture(scope="session")
def netns_ok() -> None:
    reason = netns_unavailable()
    if reason is not None:
        pytest.skip(f"KERNEL TESTS SKIPPED: {reason}")


def _factory(labs: list[Lab]) -> MakeLab:
    def make(hosts: Iterable[HostSpec]) -> Lab:
        lab = Lab()
        labs.append(lab)  # registered first: a half-built lab is destroyed too
        return build(hosts, lab)

    return make


@pytest.fixture
def make_lab(netns_ok: None) -> Iterator[MakeLab]:
    """Build labs; every namespace they created is deleted after the test, pass or fail."""
    labs: list[Lab] = []
    try:
        yield _factory(labs)
    finally:
        for lab in labs:
            lab.destroy()


@pytest.fixture(scope="module")
def make_module_lab(netns_ok: None) -> Iterator[MakeLab]:
    """Like ``make_lab``, for a lab shared by the tests of a module."""
    labs: list[Lab] = []
    try:
        yield _factory(labs)
    finally:
        for lab in labs:
            lab.destroy()
