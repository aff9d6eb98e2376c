"""Shared pytest configuration: the ``--update-golden`` flag and common fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# No per-example deadline: hypothesis's default (200 ms) fails a correct property test when a
# shared machine stalls; speed is measured by bench/, not asserted here.
settings.register_profile("npc", deadline=None)
settings.load_profile("npc")

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "golden"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite golden expectations from the current output (refused when CI is set)",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--update-golden") and os.environ.get("CI"):
        raise pytest.UsageError("--update-golden is refused when CI is set")


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))
