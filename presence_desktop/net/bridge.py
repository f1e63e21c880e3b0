"""The local editor bridge: where editor plugins tell the desktop what I do.

Transport: ``QLocalServer`` with ``UserAccessOption``. On Linux and macOS
that is a Unix domain socket created user-only (mode 0700) inside a
directory of mine with mode 0700; on Windows it is a named pipe whose ACL
admits only my account. One class covers both, and it runs on the app's
qasync loop like everything else. No TCP port: other users and web pages
cannot reach it.

The protocol itself lives in ``bridge_protocol``; this module only moves
bytes, hands reports to the ``ActivityMerger``, and (bridge version 2) hands
commands to whoever listens on ``commands`` and writes the lines
``net.editor_link`` gives it to the clients that asked for them.
"""

from __future__ import annotations

import contextlib
import getpass
import itertools
import logging
import os
import re
import socket
import stat
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtNetwork import QLocalServer, QLocalSocket

from ..core.activity import ActivityMerger, Source
from ..core.events import Signal
from .bridge_protocol import (
    MAX_CONNECTIONS,
    BridgeSession,
    Command,
    ErrorCode,
    ErrorLine,
    encode_line,
)

log = logging.getLogger(__name__)

ENV_ADDRESS = "PRESENCE_BRIDGE_SOCKET"
"""Overrides the endpoint on both sides (editor plugins read it too)."""


class BridgeError(Exception):
    """The bridge cannot listen; ``title`` and ``message`` are for the user."""

    def __init__(self, title: str, message: str) -> None:
        super().__init__(f"{title}: {message}")
        self.title = title
        self.message = message


def _user_tag() -> str:
    try:
        name = getpass.getuser()
    except Exception:  # no user name at all: still unique per user on POSIX
        name = str(os.getuid()) if hasattr(os, "getuid") else "user"
    return re.sub(r"[^a-z0-9_.-]", "_", name.lower())[:64] or "user"


def default_address() -> str:
    """Where this user's bridge listens; docs/bridge.md states the same rule."""
    override = os.environ.get(ENV_ADDRESS)
    if override:
        return override
    if sys.platform == "win32":
        return rf"\\.\pipe\presence-desktop-bridge-{_user_tag()}"
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime):
        return os.path.join(runtime, "presence-desktop", "bridge.sock")
    return os.path.join(tempfile.gettempdir(), f"presence-desktop-{os.getuid()}", "bridge.sock")


def _prepare_directory(path: Path) -> None:
    """Make the socket's directory mine and private, or refuse.

    In a shared temp directory someone else could have created it first to
    catch my editor's reports; then the bridge does not start.
    """
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = path.lstat()
    except OSError:
        info = None
    if info is None or not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise BridgeError(
            "Editor bridge not started",
            f"{path} is not a directory owned by you. Remove it and restart the app.",
        )
    if stat.S_IMODE(info.st_mode) != 0o700:
        path.chmod(0o700)


def _listening(path: str) -> bool:
    """Whether a live server answers on ``path`` (a leftover file does not)."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(0.5)
        probe.connect(path)
        return True
    except OSError:
        return False
    finally:
        probe.close()


class _Connection:
    def __init__(self, bridge: EditorBridge, sock: QLocalSocket, key: int) -> None:
        self.bridge = bridge
        self.sock = sock
        self.key = key
        self.session = BridgeSession()
        self.closed = False
        self.active_at = time.monotonic()
        """When this window last sent something (the sign-in request goes to the latest)."""
        sock.readyRead.connect(self._read)
        sock.disconnected.connect(self._gone)
        sock.errorOccurred.connect(self._error)

    def _read(self) -> None:
        if self.closed:
            return
        data = bytes(self.sock.readAll().data())
        out = self.session.feed(data)
        self.active_at = time.monotonic()
        for reply in out.replies:
            self.sock.write(reply)
        for report in out.reports:
            self.bridge.merger.update(("bridge", self.key), report, Source.BRIDGE)
        if out.reports:
            self.bridge.reports.emit(len(out.reports))
        if out.replies:
            self.sock.flush()
        if out.close:
            self.close()
            return
        if out.joined:
            self.bridge.joined.emit(self.key)
        for command in out.commands:
            if self.closed:
                break
            self.bridge.commands.emit((self.key, command))

    def write(self, line: bytes) -> None:
        if not self.closed:
            self.sock.write(line)
            self.sock.flush()

    def _error(self, error: QLocalSocket.LocalSocketError) -> None:
        if error is not QLocalSocket.LocalSocketError.PeerClosedError:
            log.debug("bridge connection %d: %s", self.key, self.sock.errorString())

    def _gone(self) -> None:
        self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.bridge._forget(self)
        # Let queued replies (an error, or hello) reach the editor before closing.
        self.sock.disconnectFromServer()
        self.sock.deleteLater()


class EditorBridge(QObject):
    """Listens for editor windows and feeds their reports into the merger."""

    def __init__(self, merger: ActivityMerger, address: str | None = None) -> None:
        super().__init__()
        self.merger = merger
        self.address = address or default_address()
        self._server: QLocalServer | None = None
        self._connections: dict[int, _Connection] = {}
        self._ids = itertools.count(1)
        self.connections_changed = Signal[int]()
        """Number of connected editor windows."""
        self.reports = Signal[int]()
        """Reports were handed to the merger (how many, for tests and stats)."""
        self.joined = Signal[int]()
        """A version-2 client said hello (its key): send it the current state."""
        self.commands = Signal[tuple[int, Command]]()
        """A version-2 client asked for something (its key, the command)."""

    @property
    def listening(self) -> bool:
        return self._server is not None and self._server.isListening()

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    @property
    def two_way_keys(self) -> list[int]:
        """Connections speaking version 2, most recently active first."""
        conns = [c for c in self._connections.values() if c.session.two_way and not c.closed]
        return [c.key for c in sorted(conns, key=lambda c: c.active_at, reverse=True)]

    def editor_of(self, key: int) -> str:
        conn = self._connections.get(key)
        hello = conn.session.hello if conn is not None else None
        return hello.editor if hello is not None else ""

    def send(self, key: int, line: dict[str, Any]) -> bool:
        """Write one line to one version-2 client; False if it is gone."""
        conn = self._connections.get(key)
        if conn is None or not conn.session.two_way:
            return False
        conn.write(encode_line(line))
        return True

    def broadcast(self, line: dict[str, Any]) -> int:
        """Write one line to every version-2 client; how many got it."""
        data = encode_line(line)
        sent = 0
        for conn in list(self._connections.values()):
            if conn.session.two_way and not conn.closed:
                conn.write(data)
                sent += 1
        return sent

    def refuse(self, key: int, code: ErrorCode, message: str, request_id: str = "") -> None:
        """An ``error`` line to one client (a command the desktop will not carry out);
        ``id`` echoes the command's id when it had one."""
        conn = self._connections.get(key)
        if conn is None:
            return
        if request_id:
            conn.write(
                encode_line(
                    {"type": "error", "code": code.value, "message": message, "id": request_id}
                )
            )
        else:
            conn.write(encode_line(ErrorLine(code=code.value, message=message)))

    def start(self) -> None:
        """Listen; raises ``BridgeError`` with a message a person can act on."""
        if self.listening:
            return
        if sys.platform != "win32":
            path = Path(self.address)
            _prepare_directory(path.parent)
            if path.exists() or path.is_symlink():
                if _listening(self.address):
                    raise BridgeError(
                        "Editor bridge not started",
                        "Another copy of the app is already running for this user.",
                    )
                # A socket left behind by a crash: safe to replace.
                QLocalServer.removeServer(self.address)
        server = QLocalServer(self)
        server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        server.setMaxPendingConnections(16)
        server.newConnection.connect(self._accept)
        if not server.listen(self.address):
            reason = server.errorString()
            server.deleteLater()
            raise BridgeError(
                "Editor bridge not started",
                f"Cannot listen for editors ({reason}). Editor activity will not be shared.",
            )
        self._server = server
        log.info("editor bridge listening")

    def close(self) -> None:
        for conn in list(self._connections.values()):
            conn.close()
        if self._server is not None:
            self._server.close()
            self._server.deleteLater()
            self._server = None

    def _accept(self) -> None:
        assert self._server is not None
        while self._server.hasPendingConnections():
            sock = self._server.nextPendingConnection()
            key = next(self._ids)
            conn = _Connection(self, sock, key)
            if len(self._connections) >= MAX_CONNECTIONS:
                sock.write(
                    conn.session.refuse(
                        ErrorCode.TOO_MANY_WINDOWS, f"at most {MAX_CONNECTIONS} editor windows"
                    )
                )
                sock.flush()
                conn.closed = True
                sock.disconnectFromServer()
                sock.deleteLater()
                continue
            self._connections[key] = conn
            self.connections_changed.emit(len(self._connections))

    def _forget(self, conn: _Connection) -> None:
        if self._connections.pop(conn.key, None) is not None:
            with contextlib.suppress(Exception):
                self.merger.remove(("bridge", conn.key))
            self.connections_changed.emit(len(self._connections))
