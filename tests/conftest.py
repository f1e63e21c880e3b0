"""Suite-wide policy: missing services skip locally but fail in CI.

Tests that need a display, PostgreSQL, Redis, Chromium or another system
service call ``require(...)`` instead of ``pytest.skip``. With
``PRESENCE_REQUIRE_SERVICES=1`` (set by .ci/run) a missing service is a
failure, so a forgotten install step can never pass silently.
"""

from __future__ import annotations

import os

import pytest


def services_required() -> bool:
    return os.environ.get("PRESENCE_REQUIRE_SERVICES") == "1"


def require(available: bool, reason: str) -> None:
    """Skip (locally) or fail (in CI) when a needed service is missing."""
    if available:
        return
    if services_required():
        pytest.fail(f"required service missing in CI: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(name="require")
def require_fixture() -> object:
    return require
