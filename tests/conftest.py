"""Suite-wide policy; the shared fixtures come from the ``tests.support`` plugin.

* Missing services skip locally but fail in CI (``require``, in
  ``tests/support/services.py``).
* No test reads or writes the real config, data, state, cache or runtime
  dirs, nor the real keychain.
* ``uv run pytest`` runs the default tier (no services, no display needed,
  a few minutes); ``uv run pytest -m slow`` the heavy tier CI also runs.
"""

from __future__ import annotations

import sys

import keyring
import keyring.backend
import keyring.errors
import pytest
from hypothesis import HealthCheck, settings

# Hypothesis' per-example deadline (200 ms) and its "too slow" health check are
# wall-clock bounds: on a shared machine at load 10 a property test failed on
# them while every example was correct. Speed lives in benchmarks/; a test's
# own ``@settings`` may still set max_examples (docs/decisions.md).
settings.register_profile("suite", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("suite")

# Bytecode caches are written even where PYTHONDONTWRITEBYTECODE=1: without them
# every run compiled the packages, the tests (after pytest's assertion
# rewriting) and each server process's imports from source again, which was
# most of collection's 18 s on a busy machine (docs/decisions.md). Set before
# the plugins below import the packages.
sys.dont_write_bytecode = False

pytest_plugins = [  # services first: the others import it
    "tests.support.services",
    "tests.support.servers",
    "tests.support.sessions",
    "tests.support.processes",
    "tests.support.github",
    "tests.support.qt",
]


@pytest.fixture(autouse=True)
def isolated_user_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """No test reads or writes the real config, data, state, cache or runtime dirs."""
    base = tmp_path_factory.mktemp("xdg")
    for var in ("CONFIG", "DATA", "STATE", "CACHE"):
        path = base / var.lower()
        path.mkdir()
        monkeypatch.setenv(f"XDG_{var}_HOME", str(path))
    runtime = base / "runtime"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    return base


class MemoryKeyring(keyring.backend.KeyringBackend):
    """An in-memory keychain so tests never touch the real one."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        try:
            del self.items[(service, username)]
        except KeyError:
            raise keyring.errors.PasswordDeleteError(username) from None


@pytest.fixture(autouse=True)
def memory_keyring():
    """Every test starts with an empty in-memory keychain; the old backend is restored."""
    old = keyring.get_keyring()
    ring = MemoryKeyring()
    keyring.set_keyring(ring)
    yield ring
    keyring.set_keyring(old)


SLOW_HANG_GUARD = 900
"""Seconds a slow-tier test may run before pytest-timeout stops it. The suite-wide
120 s (pyproject) is 20x a default-tier test; slow tests take 30-120 s on a busy
machine, and a 120 s limit fired inside a GC test that took 130 s under load."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(SLOW_HANG_GUARD))
