"""The session token's only home: the operating system's keychain.

One class wraps ``keyring`` and turns each of its failures into a title and a
message a person can act on. There is deliberately no fallback: when no real
keychain exists, signing in still works for this run but is not remembered,
and the user is told how to fix it. Plaintext backends (``keyrings.alt``'s
files, the null and fail backends) are refused even when keyring would pick
them, because a token in a file readable by any process of the user is
exactly what the keychain is for avoiding.

The entry is keyed by the server URL in both the service name and the
account, so a person using two servers has two independent sign-ins and a
keychain viewer shows which server an entry belongs to.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from typing import Any, Final

import keyring
import keyring.backend
import keyring.errors

from presence_desktop.core.api import UserError, UserErrorRaised

log = logging.getLogger(__name__)

SERVICE_PREFIX: Final = "presence-desktop"
_REFUSED_MODULES: Final = ("keyrings.alt", "keyring.backends.null", "keyring.backends.fail")

NO_KEYCHAIN = UserError(
    "No keychain to remember your sign-in",
    "Presence keeps your session only in the system keychain, and none was found. "
    "You stay signed in until you quit. To be remembered, install and start a Secret "
    "Service provider such as GNOME Keyring (gnome-keyring) or KWallet, make sure it "
    "is unlocked, then sign in again.",
    "no_keychain",
)
LOCKED = UserError(
    "Your keychain is locked",
    "Unlock your keychain (for example GNOME Keyring or KWallet) and try again.",
    "keychain_locked",
)


class CredentialError(UserErrorRaised):
    """The keychain could not be used; ``error`` says why and what to do."""


def normalize_server_url(url: str) -> str:
    """One spelling per server: lower-case scheme and host, no credentials, no trailing slash."""
    parts = urllib.parse.urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme.lower(), netloc, parts.path.rstrip("/"), "", ""))


def is_refused(backend: keyring.backend.KeyringBackend) -> bool:
    """True for backends that do not protect secrets (files, null, fail)."""
    return type(backend).__module__.startswith(_REFUSED_MODULES)


def usable_backend() -> keyring.backend.KeyringBackend:
    """The keychain to use: keyring's choice minus plaintext ones. Raises ``CredentialError``."""
    from keyring.backends import chainer

    chosen = keyring.get_keyring()
    if isinstance(chosen, chainer.ChainerBackend):
        # The chainer writes to the first backend that accepts; keep only safe ones.
        members: list[keyring.backend.KeyringBackend] = list(chosen.backends)
        safe = [b for b in members if not is_refused(b)]
        if not safe:
            raise CredentialError(NO_KEYCHAIN)
        if len(safe) < len(members):
            log.info("ignoring plaintext keychain backends among %d", len(members))
        return safe[0]
    if is_refused(chosen):
        if type(chosen).__module__.startswith("keyrings.alt"):
            log.warning("refusing plaintext keychain backend %s", type(chosen).__qualname__)
        raise CredentialError(NO_KEYCHAIN)
    return chosen


class CredentialStore:
    """The session token for one server, in the OS keychain."""

    def __init__(self, server_url: str) -> None:
        self.server_url = normalize_server_url(server_url)
        self.service = f"{SERVICE_PREFIX} {self.server_url}"
        self.account = f"session@{self.server_url}"
        self._unsaved: str | None = None
        """A token the keychain refused: kept in memory for this run only."""

    def __repr__(self) -> str:
        return f"CredentialStore({self.server_url!r})"

    def get(self) -> str | None:
        """The stored session token, or None when there is none.

        With no keychain at all nothing can be stored, so that is None too;
        the missing keychain is reported once, by ``set``, when it matters.
        """
        if self._unsaved is not None:
            return self._unsaved
        try:
            value = self._call("read your sign-in from", "get_password")
        except CredentialError as exc:
            if exc.error.code == "no_keychain":
                return None
            raise
        return value if isinstance(value, str) and value else None

    def set(self, token: str) -> None:
        """Save the token; if the keychain fails, keep it for this run and say why."""
        if not token:
            raise ValueError("refusing to store an empty session token")
        try:
            self._call("save your sign-in to", "set_password", token)
        except CredentialError:
            self._unsaved = token
            raise
        self._unsaved = None

    def delete(self) -> None:
        """Forget the token; forgetting a token that is not there is not an error."""
        self._unsaved = None
        try:
            self._call("remove your sign-in from", "delete_password")
        except CredentialError as exc:
            if exc.error.code not in ("keychain_missing_entry", "no_keychain"):
                raise

    async def get_async(self) -> str | None:
        """``get`` off the event loop: a keychain may block on an unlock prompt."""
        return await asyncio.to_thread(self.get)

    async def set_async(self, token: str) -> None:
        await asyncio.to_thread(self.set, token)

    async def delete_async(self) -> None:
        await asyncio.to_thread(self.delete)

    def _call(self, doing: str, method: str, *args: str) -> Any:
        backend = usable_backend()
        try:
            return getattr(backend, method)(self.service, self.account, *args)
        except keyring.errors.KeyringLocked:
            raise CredentialError(LOCKED) from None
        except keyring.errors.NoKeyringError:
            raise CredentialError(NO_KEYCHAIN) from None
        except keyring.errors.PasswordDeleteError:
            raise CredentialError(
                UserError("Nothing to remove", "", "keychain_missing_entry")
            ) from None
        except Exception as exc:
            # Never log the exception text: some backends echo arguments back.
            log.warning("keychain %s failed: %s", method, type(exc).__name__)
            raise CredentialError(
                UserError(
                    "The keychain did not work",
                    f"Presence could not {doing} the system keychain "
                    f"({type(exc).__name__}). Make sure your keychain (for example GNOME "
                    "Keyring or KWallet) is running and unlocked, then try again.",
                    "keychain_error",
                )
            ) from None
