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
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from presence_protocol import CloseCode, limits

from ..session.hub import Hub
from ..session.machine import Handlers, Session
from .handshake import Edge

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


async def serve_connection(
    ws: ServerConnection,
    *,
    hub: Hub,
    handlers: Handlers,
    edge: Edge,
    tasks: set[asyncio.Task[Any]],
) -> None:
    """Run one connection from the end of its handshake to the end of its close.

    One coroutine per connection, the websockets handler itself: an idle
    connection's memory is mostly fixed costs like this frame. ``tasks`` holds
    the running handlers (a drain cancels those that outlive it).
    """
    hub.metrics.connections.inc()
    task = asyncio.current_task()
    if task is not None:
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    try:
        offered = ws.request.headers.get_all("Sec-WebSocket-Protocol") if ws.request else []
        if ws.subprotocol is None and offered:
            await ws.close(
                CloseCode.UNSUPPORTED_PROTOCOL,
                f"this server speaks {limits.SUBPROTOCOL}; update the app",
            )
            return
        if hub.stopping:
            await ws.close(CloseCode.SERVER_RESTART, "server restarting")
            return
        ip = edge.client_ip(ws.remote_address, ws.request.headers if ws.request else None)
        # Everything the handshake carried is read by now (subprotocol, client
        # address). Its headers would stay for the connection's whole life:
        # about 3 KiB, a fifth of an idle connection.
        for message in (ws.request, ws.response):
            if message is not None:
                message.headers.clear()
        out = WebSocketOutput(ws)
        session = Session(hub, handlers, out, ip)
        session.start()
        try:
            while not session.closing:
                await session.receive(await ws.recv())
            # Closed by the server: read and drop what the client still sends,
            # or a full receive buffer would stall the close handshake until
            # its timeout. Bounded: a client that never completes the close is cut.
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
    finally:
        hub.metrics.connections.dec()
