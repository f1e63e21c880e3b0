"""A keyring backend for benchmark runs of the real desktop app.

The app keeps its session token only in the OS keychain. A benchmark starts
the app with ``PYTHON_KEYRING_BACKEND=benchmarks._keyring.EnvKeyring`` and
the token of a seeded session in ``BENCH_SESSION_TOKEN``, so the app signs in
exactly as it does every morning (a stored session, ``auth``) without a
keychain daemon. Writes are kept in memory for the life of the process.
"""

from __future__ import annotations

import os

import keyring.backend


class EnvKeyring(keyring.backend.KeyringBackend):
    priority = 1

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._items: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        stored = self._items.get((service, username))
        if stored is not None:
            return stored
        if username.startswith("session@"):
            return os.environ.get("BENCH_SESSION_TOKEN")
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        self._items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self._items.pop((service, username), None)
