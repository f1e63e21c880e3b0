"""Where the session token lives, as seen by the core and the net client.

The real store wraps the OS keychain (``presence_desktop.platform``); the core
only knows this small interface, so it never imports keyring and tests and
the demo keep the token in memory.
"""

from __future__ import annotations

from typing import Protocol


class Credentials(Protocol):
    """Get, replace or forget the session token of the signed-in account.

    Implementations may raise an exception with ``title`` and ``message``
    attributes when the store is unavailable; callers turn it into a
    ``UserError``.
    """

    def get(self) -> str | None: ...
    def set(self, token: str) -> None: ...
    def delete(self) -> None: ...


class MemoryCredentials:
    """Keeps the token for the life of the process only (tests, the demo)."""

    def __init__(self, token: str | None = None) -> None:
        self._token = token

    def get(self) -> str | None:
        return self._token

    def set(self, token: str) -> None:
        self._token = token

    def delete(self) -> None:
        self._token = None

    def __repr__(self) -> str:
        # Never show the secret itself in logs or tracebacks.
        return f"MemoryCredentials(stored={self._token is not None})"
