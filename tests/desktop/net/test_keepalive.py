"""A dead or frozen server is noticed by the client's own keepalive, and the
header then says what is wrong ("Connection lost", "Can't reach server")."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from presence_desktop.core.api import Link
from presence_desktop.core.format import connection_text
from presence_desktop.net.client import (
    CONNECTION_LOST,
    KEEPALIVE_SECONDS,
    KEEPALIVE_TIMEOUT,
    UNREACHABLE,
)
from tests.support.processes import ServerProcess
from tests.support.servers import ServerHandle

from .helpers import Peer

HANG_GUARD = 60.0
"""Far above the 1 s the shortened keepalive below needs; only against a hang."""


def test_a_frozen_server_is_noticed_within_15_seconds() -> None:
    # The configured bound: the next ping is at most an interval away, then the pong timeout.
    assert KEEPALIVE_SECONDS + KEEPALIVE_TIMEOUT <= 15.0


async def test_the_connection_uses_the_keepalive(server: ServerHandle) -> None:
    peer = Peer(server.url, "alice")
    try:
        await peer.online()
        ws = peer.client._ws
        assert ws is not None
        assert (ws.ping_interval, ws.ping_timeout) == (KEEPALIVE_SECONDS, KEEPALIVE_TIMEOUT)
    finally:
        await peer.client.stop()


async def test_unreachable_server_is_named_in_the_header(tmp_path: Path) -> None:
    # A port nothing listens on: every attempt fails before it is online.
    peer = Peer("ws://127.0.0.1:9", "alice")
    try:
        peer.client.start()
        info = await peer.wait_link(Link.RECONNECTING)
        assert info.title == UNREACHABLE
        assert connection_text(info, 0.0).startswith("Can't reach server — retrying")
    finally:
        await peer.client.stop()


@pytest.mark.slow
async def test_a_stopped_server_process_is_noticed_by_the_keepalive(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path)
    await server.start()
    peer = Peer(server.url, "alice", keepalive=(0.5, 0.5))
    try:
        await peer.online()
        os.kill(server.pid, signal.SIGSTOP)  # frozen: the socket stays open, nothing answers
        try:
            info = await peer.wait_link(Link.RECONNECTING, within=HANG_GUARD)
            # The next attempt hangs on the frozen server: the header keeps the reason.
            again = await peer.wait_link(Link.CONNECTING, within=HANG_GUARD)
        finally:
            os.kill(server.pid, signal.SIGCONT)
        assert info.title == CONNECTION_LOST
        assert again.title == CONNECTION_LOST
        await peer.wait_link(Link.ONLINE, within=HANG_GUARD)  # and it comes back by itself
    finally:
        await peer.client.stop()
        await server.stop()
