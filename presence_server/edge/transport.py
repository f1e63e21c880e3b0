"""Bytes in and out of one WebSocket: the thin layer around ``session.machine``.

Everything a connection decides lives in its ``Session``; this module only
moves frames between the socket and the session, the way python-websockets'
asyncio connection wraps its sans-I/O protocol. Frames go straight into the
socket's transport (as ``websockets.broadcast`` writes them), so there is no
send queue and no writer task per connection; the session reads the
transport's write-buffer size after each frame and closes a client that has
stopped reading.

Frames written during one turn of the event loop are framed at once but
reach the socket together at the start of the next turn, one ``send`` per
connection instead of one per frame (``Flusher``): at saturation a
connection gets several deltas per turn, and the system call was half of
the server's CPU (docs/decisions.md, "Coalesced socket writes").

A turn's hold is bounded (``FLUSH_BUDGET_SECONDS``): a turn that runs a
backlog (hundreds of commands that arrived while the process had no core)
flushes what it framed every few milliseconds instead of holding the first
command's deliveries until the last command is done (docs/decisions.md,
"A turn's frames wait at most 5 ms").
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections.abc import Callable
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.protocol import State

from presence_protocol import CloseCode, limits

from ..metrics import AnyMetrics
from ..session.hub import Hub
from ..session.machine import Handlers, Session
from .handshake import Edge

CLOSE_WAIT_SECONDS = 10.0
"""How long the end of a connection waits for the close handshake and for
work the session still runs (a hang guard, far above what either takes)."""

FLUSH_BUDGET_SECONDS = 0.005
"""The longest a framed delta waits in a turn for the rest of that turn's
work before it is handed to the socket. Far below the 50 ms p99 target; long
enough that at saturation a connection still gets several deltas per write."""

CLOCK_EVERY = 32
"""The clock is read every this many frames, not on each: the bound stays
within a few frames of the budget at a fraction of the cost."""


class Flusher:
    """Sends what the outputs of one event loop wrote during the current turn.

    The first frame an output gets in a turn registers it here, and one
    callback at the start of the next turn hands each registered
    connection's frames to its transport as one buffer. Order is kept: every
    frame of a connection goes through its websockets protocol's one write
    list, and anything websockets sends itself (a pong, the close frame)
    flushes that list first.

    A turn that has held frames for ``budget`` seconds (read on ``clock``
    every ``CLOCK_EVERY`` frames) flushes at once, inside the turn:
    a long turn costs its first deliveries at most the budget, not the
    whole turn.
    """

    __slots__ = (
        "_budget",
        "_clock",
        "_loop",
        "_metrics",
        "_opened",
        "_outputs",
        "_scheduled",
        "frames",
        "last_frame",
        "last_wire",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        metrics: AnyMetrics,
        *,
        budget: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._loop = loop
        self._metrics = metrics
        self._budget = FLUSH_BUDGET_SECONDS if budget is None else budget
        self._clock = clock
        self._opened = 0.0
        """When the oldest frame not yet flushed was registered."""
        self._scheduled = False
        self._outputs: list[WebSocketOutput] = []
        self.frames = 0
        """Frames framed since the last flush: ``presence_messages_out_total``
        grows once per flush, not once per frame (its lock cost more than the
        counting)."""
        self.last_frame: bytes | None = None
        self.last_wire = b""
        """The last message and its WebSocket frame: a fan-out hands the same
        bytes object to every recipient, so it is framed once per event."""

    def add(self, out: WebSocketOutput) -> None:
        """Register an output that got its first frame since the last flush."""
        if not self._outputs:
            if not self._scheduled:
                self._scheduled = True
                self._loop.call_soon(self._turn)
            self._opened = self._clock()
        self._outputs.append(out)

    def framed(self) -> None:
        """Count one frame; every ``CLOCK_EVERY`` frames, flush if the budget is spent."""
        self.frames += 1
        if not self.frames % CLOCK_EVERY and self._clock() - self._opened >= self._budget:
            self.flush()

    def _turn(self) -> None:
        self._scheduled = False
        self.flush()

    def flush(self) -> None:
        """Hand every registered output's frames to its transport now."""
        outputs, self._outputs = self._outputs, []
        frames, self.frames = self.frames, 0
        if frames:
            self._metrics.messages_out.inc(frames)
        for out in outputs:
            out.flush()


_flushers: weakref.WeakKeyDictionary[Hub, Flusher] = weakref.WeakKeyDictionary()


def flusher(hub: Hub) -> Flusher:
    """The ``Flusher`` of a server (its hub; tests run several servers, each on its loop)."""
    found = _flushers.get(hub)
    if found is None:
        found = _flushers[hub] = Flusher(asyncio.get_running_loop(), hub.metrics)
    return found


class WebSocketOutput:
    """A session's ``Output`` on a websockets server connection."""

    __slots__ = ("closed", "flusher", "unflushed", "ws")

    def __init__(self, ws: ServerConnection, flusher: Flusher) -> None:
        self.ws = ws
        self.flusher = flusher
        self.unflushed = 0
        """Bytes framed this turn and not yet handed to the transport (0: not registered)."""
        self.closed: asyncio.Task[None] | None = None
        """The close handshake, once the session asked for it."""

    def write(self, frame: bytes) -> int:
        ws = self.ws
        protocol = ws.protocol
        if protocol.state is not State.OPEN:
            return 0  # closing: the peer gets nothing more
        flusher = self.flusher
        if protocol.extensions or protocol.debug:
            protocol.send_text(frame)  # per-connection framing (never with compression=None)
        elif frame is flusher.last_frame:
            protocol.writes.append(flusher.last_wire)  # what send_text would append
        else:
            wire = Frame(Opcode.TEXT, frame).serialize(mask=False, extensions=[])
            flusher.last_frame, flusher.last_wire = frame, wire
            protocol.writes.append(wire)
        if not self.unflushed:
            flusher.add(self)
        self.unflushed += len(frame)
        flusher.framed()  # may flush this output too, inside the turn
        return ws.transport.get_write_buffer_size() + self.unflushed

    def flush(self) -> None:
        """Hand the frames of this turn to the transport, in one write when possible."""
        self.unflushed = 0
        ws = self.ws
        if ws.transport.is_closing():
            return  # the connection is gone; websockets discards the rest
        writes = ws.protocol.writes
        if len(writes) > 1 and all(writes):  # no end-of-stream marker among them
            ws.transport.write(b"".join(ws.protocol.data_to_send()))
        else:
            ws.send_data()

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
        out = WebSocketOutput(ws, flusher(hub))
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
