"""One running app per user: a second launch asks the first to show itself and exits.

A local socket whose name is private to the user: inside ``XDG_RUNTIME_DIR``
(mode 0700) where there is one, otherwise a per-user name in Qt's default
place (the temp dir on Unix, a named pipe on Windows). The protocol is one
line, ``show``.
"""

from __future__ import annotations

import getpass
import hashlib
import logging
import os
import sys
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_MS = 500
SHOW = b"show\n"


def instance_name(profile: str = "") -> str:
    """The socket name for this user (and profile, e.g. "demo")."""
    suffix = f"-{profile}" if profile else ""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if sys.platform != "win32" and runtime and Path(runtime).is_dir():
        return str(Path(runtime) / f"presence-desktop{suffix}.sock")
    try:
        user = getpass.getuser()
    except Exception:  # no user name (some containers): uid still separates users
        user = str(os.getuid()) if hasattr(os, "getuid") else "user"
    tag = hashlib.sha256(user.encode()).hexdigest()[:12]
    return f"presence-desktop-{tag}{suffix}"


class SingleInstance(QObject):
    show_requested = Signal()

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self._server: QLocalServer | None = None

    def claim(self) -> bool:
        """True: we are the only instance now. False: another one runs and was told to show."""
        if self._notify_running():
            return False
        server = QLocalServer(self)
        server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        if not server.listen(self.name):
            # A socket file left by a crash, or another instance that started
            # just now: ask once more before taking the name over.
            if self._notify_running():
                return False
            QLocalServer.removeServer(self.name)
            if not server.listen(self.name):
                log.warning("single-instance socket unavailable: %s", server.errorString())
                return True  # run anyway; a second launch may then start a second app
        server.newConnection.connect(self._on_connection)
        self._server = server
        return True

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server.deleteLater()
            self._server = None

    def _notify_running(self) -> bool:
        socket = QLocalSocket()
        socket.connectToServer(self.name)
        if not socket.waitForConnected(CONNECT_TIMEOUT_MS):
            return False
        socket.write(SHOW)
        socket.flush()
        socket.waitForBytesWritten(CONNECT_TIMEOUT_MS)
        socket.disconnectFromServer()
        return True

    def _on_connection(self) -> None:
        assert self._server is not None
        while self._server.hasPendingConnections():
            conn = self._server.nextPendingConnection()
            if conn is None:
                break
            conn.readyRead.connect(lambda c=conn: self._read(c))
            conn.disconnected.connect(conn.deleteLater)
            if conn.bytesAvailable():
                self._read(conn)

    def _read(self, conn: QLocalSocket) -> None:
        while conn.canReadLine():
            line = bytes(conn.readLine().data()).strip()
            if line == SHOW.strip():
                self.show_requested.emit()
