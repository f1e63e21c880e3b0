"""Bytes in and out of one WebSocket: the thin layer around ``session.machine``.

Everything a connection decides lives in its ``Session``; this module only
moves frames between the socket and the session, the way python-websockets'
asyncio connection wraps its sans-I/O protocol. Frames go straight into the
socket's transport (as ``websockets.broadcast`` writes them), so there is no
send queue and no writer task per connection; the session reads the
transport's write-buffer size after each frame and closes a client that has
stopped reading.
"""

from __future__ import annotations

import asyncio
import contextlib

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from ..session.hub import Hub
from ..session.machine import Handlers, Session

CLOSE_WAIT_SECONDS = 10.0
"""How long the end of a connection waits for the close handshake and for
work the session still runs (a hang guard, far above what either takes)."""


class WebSocketOutput:
    """A session's ``Output`` on a websockets server connection."""

    __slots__ = ("closed", "ws")

    def __init__(self, ws: ServerConnection) -> None:
        self.ws = ws
        self.closed: asyncio.Task[None] | None = None
        """The close handshake, once the session asked for it."""

    def write(self, frame: bytes) -> int:
        ws = self.ws
        if ws.protocol.state is not State.OPEN:
            return 0  # closing: the peer gets nothing more
        ws.protocol.send_text(frame)
        ws.send_data()
        return ws.transport.get_write_buffer_size()

    def close(self, code: int, reason: str) -> None:
        self.closed = asyncio.create_task(self.ws.close(code, reason))


async def serve_connection(hub: Hub, ws: ServerConnection, handlers: Handlers, ip: str) -> None:
    """Run one connection from its first frame to the end of its close handshake."""
    out = WebSocketOutput(ws)
    session = Session(hub, handlers, out, ip)
    session.start()
    try:
        while not session.closing:
            await session.receive(await ws.recv())
        # Closed by the server: read and drop what the client still sends,
        # or a full receive buffer would stall the close handshake until its
        # timeout. Bounded: a client that never completes the close is cut.
        async with asyncio.timeout(CLOSE_WAIT_SECONDS):
            while True:
                await ws.recv()
    except (ConnectionClosed, TimeoutError):
        pass
    finally:
        await session.leave()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_WAIT_SECONDS):
                await session.settle()
                if out.closed is not None:
                    await asyncio.wait([out.closed])
        session.end()
