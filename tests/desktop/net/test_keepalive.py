"""A dead or frozen server is noticed by the client's own keepalive, and the
header then says what is wrong ("Connection lost", "Can't reach server")."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from presence_desktop.core.api import Link
from presence_desktop.core.format import connection_text
from presence_desktop.net.client import (
    CONNECTION_LOST,
    KEEPALIVE_SECONDS,
    KEEPALIVE_TIMEOUT,
    UNREACHABLE,
)
from presence_desktop.net.keepalive import QuietPingConnection
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


# ---------------------------------------------------------------- who pings (net/keepalive.py)


async def _counting_pings(
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[list[bytes | None], asyncio.Event]:
    """The payload of every ping the client sends (None: random), and an event set by the first."""
    sent: list[bytes | None] = []
    first = asyncio.Event()
    original = QuietPingConnection.ping

    async def ping(self: QuietPingConnection, data: bytes | None = None) -> Awaitable[float]:
        sent.append(data)
        first.set()
        return await original(self, data)

    monkeypatch.setattr(QuietPingConnection, "ping", ping)
    return sent, first


@pytest.mark.slow
async def test_a_quiet_server_is_pinged_with_an_empty_ping(monkeypatch: pytest.MonkeyPatch) -> None:
    sent, first = await _counting_pings(monkeypatch)

    async def silent(ws: ServerConnection) -> None:
        await ws.wait_closed()

    async with serve(silent, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(
            f"ws://127.0.0.1:{port}",
            create_connection=QuietPingConnection,
            ping_interval=0.5,
            ping_timeout=5.0,
        ):
            await asyncio.wait_for(first.wait(), HANG_GUARD)
    assert sent[0] == b""  # 8 bytes a round trip instead of 16


@pytest.mark.slow
async def test_a_server_that_keeps_talking_is_never_pinged(monkeypatch: pytest.MonkeyPatch) -> None:
    """Anything the server sends (here its own pings, every 0.1 s) proves it alive.

    The client would ping after 2 s of silence; the server talks twenty times
    as often for three of those intervals, so only a stall of the whole
    loop for 2 s could make the client ping.
    """
    sent, _first = await _counting_pings(monkeypatch)
    talked = asyncio.Event()

    async def talkative(ws: ServerConnection) -> None:
        for _ in range(60):
            await ws.ping()  # the client's automatic pong answers; no client ping
            await asyncio.sleep(0.1)
        talked.set()
        await ws.wait_closed()

    async with serve(talkative, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(
            f"ws://127.0.0.1:{port}",
            create_connection=QuietPingConnection,
            ping_interval=2.0,
            ping_timeout=5.0,
        ):
            await asyncio.wait_for(talked.wait(), HANG_GUARD)
    assert sent == []
