"""The keychain, used through a short-lived child process so the tray never imports keyring.

The tray process idles for days; the keychain is touched a handful of
times: the session token read once at start (then kept in memory, as it
must be to reconnect), written at sign-in and removed at sign-out.
``keyring``'s import chain is not small for that: its core pulls
importlib_metadata, jaraco, more_itertools, backports.tarfile and
configparser (about 3 MiB of the tray's RSS, measured), and on Linux the
Secret Service backend adds secretstorage, jeepney and cryptography (about
8 MiB more). Python cannot unload modules, so the memory would stay for the
life of the process. Instead each keychain operation runs
``presence-desktop --keychain-helper`` (the same program, so a frozen
build and macOS's per-application keychain access work unchanged), which
uses ``CredentialStore`` exactly as the tray used to, answers, and exits.

The token never travels in argv or the environment: the request (with the
token to save) goes on the child's stdin and the answer (with the token
read) comes back on its stdout, one JSON object each. A failure comes back
as the same ``UserError`` that ``CredentialStore`` raises, so the person
reads the same advice.

The first read is started early with ``prefetch`` (at start-up, before the
ui is built), so the child's start overlaps the rest of start-up instead of
blocking the event loop when the client first asks for the token.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from typing import Any, Final

from presence_desktop.core.api import UserError, UserErrorRaised

log = logging.getLogger(__name__)

HELPER_FLAG: Final = "--keychain-helper"
HELPER_TIMEOUT_S: Final = 120.0
"""A keychain may wait for the person to unlock it; after this the call fails with advice."""
MAX_REQUEST_BYTES: Final = 16 * 1024
"""A session token is under 100 bytes and a server address under 2 KB; the
request must also fit a pipe's buffer (16 KiB on macOS), which the tray fills
before the child starts."""

NO_ANSWER = UserError(
    "The keychain did not answer",
    "Presence could not use the system keychain: its helper process did not answer. "
    "Make sure your keychain (for example GNOME Keyring or KWallet) is running and "
    "unlocked, then try again.",
    "keychain_error",
)


class KeychainError(UserErrorRaised):
    """A keychain operation through the helper failed; ``error`` says why and what to do."""


def helper_argv() -> list[str]:
    """How to start this program as a keychain helper (a frozen build is its own interpreter)."""
    if getattr(sys, "frozen", False):
        return [sys.executable, HELPER_FLAG]
    return [sys.executable, "-m", "presence_desktop", HELPER_FLAG]


class ChildCredentialStore:
    """The session token for one server, in the OS keychain, read and written by a child.

    Implements ``core.credentials.Credentials``. The token read (or saved) is
    kept in memory, so reconnecting does not start a process; a token the
    keychain refused to save is kept for this run, as ``CredentialStore``
    does.
    """

    def __init__(self, server_url: str, argv: list[str] | None = None) -> None:
        self.server_url = server_url
        self._argv = argv if argv is not None else helper_argv()
        self._known = False
        self._token: str | None = None
        self._pending: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        # Never show the secret itself in logs or tracebacks.
        return f"ChildCredentialStore({self.server_url!r}, known={self._known})"

    def prefetch(self) -> None:
        """Start reading the token now; ``get`` collects the answer."""
        if not self._known and self._pending is None:
            self._pending = self._start({"op": "get", "server": self.server_url})

    def get(self) -> str | None:
        """The stored session token, or None when there is none (or no keychain at all)."""
        if self._known:
            return self._token
        pending, self._pending = self._pending, None
        if pending is None:
            pending = self._start({"op": "get", "server": self.server_url})
        answer = self._finish(pending)
        token = answer.get("token")
        self._token = token if isinstance(token, str) and token else None
        self._known = True
        return self._token

    def set(self, token: str) -> None:
        """Save the token; if the keychain fails, keep it for this run and raise why."""
        if not token:
            raise ValueError("refusing to store an empty session token")
        self._drop_pending()
        self._token, self._known = token, True
        self._call({"op": "set", "server": self.server_url, "token": token})

    def delete(self) -> None:
        """Forget the token; forgetting a token that is not there is not an error."""
        self._drop_pending()
        self._token, self._known = None, True
        self._call({"op": "delete", "server": self.server_url})

    # ------------------------------------------------------------ the child

    def _call(self, request: dict[str, Any]) -> dict[str, Any]:
        return self._finish(self._start(request))

    def _start(self, request: dict[str, Any]) -> subprocess.Popen[bytes]:
        # The request is written into a pipe before the child starts (it is far
        # below a pipe's capacity), so the child reads it at once and the parent
        # only has to collect the answer.
        data = json.dumps(request).encode()
        if len(data) > MAX_REQUEST_BYTES:
            raise ValueError("keychain request too large (a server address over 16 KB?)")
        read_end, write_end = os.pipe()
        try:
            with open(write_end, "wb", closefd=True) as pipe:
                pipe.write(data)
            return subprocess.Popen(
                self._argv,
                stdin=read_end,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,  # a backend may echo arguments: never keep them
                creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
            )
        except OSError as exc:
            log.warning("cannot start the keychain helper: %s", type(exc).__name__)
            raise KeychainError(NO_ANSWER) from None
        finally:
            os.close(read_end)

    def _finish(self, proc: subprocess.Popen[bytes]) -> dict[str, Any]:
        try:
            out, _ = proc.communicate(timeout=HELPER_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            log.warning("the keychain helper did not answer within %.0f s", HELPER_TIMEOUT_S)
            raise KeychainError(NO_ANSWER) from None
        try:
            answer = json.loads(out)
        except ValueError:
            log.warning("the keychain helper ended with %s and no answer", proc.returncode)
            raise KeychainError(NO_ANSWER) from None
        if not isinstance(answer, dict):
            raise KeychainError(NO_ANSWER)
        error = answer.get("error")
        if isinstance(error, dict):
            raise KeychainError(
                UserError(
                    str(error.get("title", "")),
                    str(error.get("message", "")),
                    str(error.get("code", "keychain_error")),
                )
            )
        return answer

    def _drop_pending(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            try:
                pending.communicate(timeout=HELPER_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                pending.kill()
                pending.communicate()


def helper_backend(argv: list[str] | None = None) -> str:
    """The keyring backend a helper child chooses (``--self-test``: the helper mode works).

    Touches no entry, so it never prompts to unlock a keychain.
    """
    store = ChildCredentialStore("", argv)
    answer = store._finish(store._start({"op": "backend"}))
    backend = answer.get("backend")
    if not isinstance(backend, str):
        raise KeychainError(NO_ANSWER)
    return backend


# ---------------------------------------------------------------- the helper side


def serve(stdin_fd: int = 0, stdout_fd: int = 1) -> int:
    """Run one keychain request from ``stdin_fd`` and answer on ``stdout_fd``.

    File descriptors rather than ``sys.stdin``: a windowed frozen build may
    have no Python-level standard streams. Exit status 0 when an answer
    (success or a ``UserError``) was written, 2 for a malformed request.
    Requests: ``get``, ``set`` (with ``token``), ``delete`` of a ``server``'s
    entry, and ``backend`` (which keyring backend this process would use).
    """
    raw = b""
    while len(raw) <= MAX_REQUEST_BYTES:
        chunk = os.read(stdin_fd, 65536)
        if not chunk:
            break
        raw += chunk
    try:
        request = json.loads(raw)
        op = request["op"]
        if op == "backend":
            import keyring

            chosen = type(keyring.get_keyring())
            _write(stdout_fd, {"backend": f"{chosen.__module__}.{chosen.__qualname__}"})
            return 0
        server = request["server"]
        token = request.get("token")
        if op not in ("get", "set", "delete") or not isinstance(server, str):
            raise ValueError(op)
        if op == "set" and not (isinstance(token, str) and token):
            raise ValueError("set without a token")
    except (ValueError, KeyError, TypeError):
        _write(stdout_fd, {"error": {"title": "Bad keychain request", "message": "", "code": ""}})
        return 2

    from .credentials import CredentialError, CredentialStore

    store = CredentialStore(server)
    answer: dict[str, Any]
    try:
        if op == "get":
            answer = {"token": store.get()}
        elif op == "set":
            store.set(token)
            answer = {}
        else:
            store.delete()
            answer = {}
    except CredentialError as exc:
        e = exc.error
        answer = {"error": {"title": e.title, "message": e.message, "code": e.code}}
    _write(stdout_fd, answer)
    return 0


def _write(fd: int, answer: dict[str, Any]) -> None:
    data = json.dumps(answer).encode()
    while data:
        data = data[os.write(fd, data) :]
