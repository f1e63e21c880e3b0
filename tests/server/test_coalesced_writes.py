"""Frames written in one loop turn reach the socket together, in order, and nothing is lost.

The server hands each connection's frames of one event-loop turn to the
transport in one write (``edge.transport.Flusher``): at saturation that
halves the system calls of a fan-out. What a client must still see: every
frame, in the order written, before the close frame; and the
``presence_messages_out_total`` counter still counts frames.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from presence_protocol import PresenceUpdate, SeenStatus, encode
from presence_server.cluster.fanout import Event
from presence_server.edge.transport import (
    CLOCK_EVERY,
    FLUSH_BUDGET_SECONDS,
    Flusher,
    WebSocketOutput,
)
from presence_server.metrics import Metrics
from tests.support.servers import StartServer

from .client import befriend, login_dev

HANG_GUARD = 30.0


async def test_deltas_of_one_turn_reach_a_friend_in_one_write_in_order(
    start: StartServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await start()
    carol = await login_dev(server.url, "carol")
    dave = await login_dev(server.url, "dave")
    await befriend(carol, dave)
    dave_addr = dave.ws.transport.get_extra_info("sockname")

    # Count the writes that reach dave's socket on the server side.
    writes: list[bytes] = []
    transport_cls = type(dave.ws.transport)
    original = transport_cls.write

    def counting_write(self: asyncio.Transport, data: Any) -> None:
        if self.get_extra_info("peername") == dave_addr:
            writes.append(bytes(data))
        original(self, data)

    monkeypatch.setattr(transport_cls, "write", counting_write)

    hub = server.hub
    base = 10**9  # above any version the registry has handed out in this test
    statuses = [SeenStatus.DND, SeenStatus.ONLINE, SeenStatus.AWAY, SeenStatus.DND]
    frames = [encode(PresenceUpdate(user_id=carol.me, status=status)) for status in statuses]
    # Four events in one turn: publish() never suspends on one instance.
    for i, frame in enumerate(frames):
        await hub.fanout.publish([dave.me], Event(frame=frame, subject=carol.me, version=base + i))
    got = [await dave.expect(PresenceUpdate, within=HANG_GUARD) for _ in statuses]
    assert [u.status for u in got] == statuses
    assert len(writes) == 1, f"{len(writes)} writes for one turn's frames"
    assert b"".join(writes).count(b'"presence"') == len(statuses)
    await carol.close()
    await dave.close()


@st.composite
def turns(draw: st.DrawFn) -> tuple[list[list[int]], bool]:
    """Frames (their numbers) written per loop turn, and whether the server closes after."""
    sizes = draw(st.lists(st.integers(0, 6), min_size=1, max_size=8))
    n = 0
    out: list[list[int]] = []
    for size in sizes:
        out.append(list(range(n, n + size)))
        n += size
    return out, draw(st.booleans())


async def _run(plan: list[list[int]], close: bool) -> tuple[list[int], int | None, float]:
    """Write ``plan`` through a ``WebSocketOutput`` on real loopback sockets."""
    metrics = Metrics()
    received: list[int] = []
    done = asyncio.get_running_loop().create_future()

    async def handler(ws: ServerConnection) -> None:
        out = WebSocketOutput(ws, Flusher(asyncio.get_running_loop(), metrics))
        for turn in plan:
            for n in turn:
                out.write(json.dumps({"n": n}).encode())
            await asyncio.sleep(0)  # the end of a loop turn
        if close:
            out.close(4000, "done")
            assert out.closed is not None
            await out.closed
        else:
            await done

    async with serve(handler, "127.0.0.1", 0) as ws_server:
        port = ws_server.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}") as client:
            total = sum(len(t) for t in plan)
            try:
                async with asyncio.timeout(HANG_GUARD):
                    while close or len(received) < total:
                        received.append(json.loads(await client.recv())["n"])
            except ConnectionClosed:
                pass
            code = client.close_code if close else None
            done.set_result(None)
    counted = metrics.messages_out._value.get()  # type: ignore[attr-defined]
    return received, code, counted


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(turns())
def test_every_frame_arrives_in_order_before_the_close(plan: tuple[list[list[int]], bool]) -> None:
    frames, close = plan
    received, code, counted = asyncio.run(_run(frames, close))
    expected = [n for turn in frames for n in turn]
    assert received == expected
    assert counted == len(expected)
    if close:
        assert code == 4000


async def test_one_message_framed_once_reaches_every_connection_intact() -> None:
    """The same bytes object written to many connections (a fan-out) is framed
    once and shared; each client must still get exactly that message, and a
    different message written in between must not be mistaken for it."""
    metrics = Metrics()
    shared = json.dumps({"n": "shared", "pad": "x" * 300}).encode()  # > 125 bytes: 16-bit length
    other = b'{"n":"other"}'
    got: dict[int, list[bytes | str]] = {}
    opened: list[WebSocketOutput] = []
    ready = asyncio.Event()
    flusher: Flusher | None = None

    async def handler(ws: ServerConnection) -> None:
        nonlocal flusher
        if flusher is None:
            flusher = Flusher(asyncio.get_running_loop(), metrics)
        opened.append(WebSocketOutput(ws, flusher))
        if len(opened) == 3:
            ready.set()
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0, compression=None) as ws_server:
        port = ws_server.sockets[0].getsockname()[1]
        clients = [await connect(f"ws://127.0.0.1:{port}", compression=None) for _ in range(3)]
        async with asyncio.timeout(HANG_GUARD):
            await ready.wait()
        opened[0].write(shared)
        opened[1].write(other)
        opened[1].write(shared)
        opened[2].write(shared)
        async with asyncio.timeout(HANG_GUARD):
            for i, client in enumerate(clients):
                got[i] = [await client.recv(decode=False)]
            got[1].append(await clients[1].recv(decode=False))
        for client in clients:
            await client.close()
    assert got == {0: [shared], 1: [other, shared], 2: [shared]}


# ---------------------------------------------------------------- the turn budget


class _Clock:
    """A monotonic clock the test moves by hand (seconds)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_long_turn_sends_its_first_frames_once_the_budget_is_spent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A turn that runs a backlog must not hold its first deliveries until it ends:
    once the budget is spent, what was framed reaches the socket inside the turn."""
    metrics = Metrics()
    clock = _Clock()
    opened: list[WebSocketOutput] = []
    ready = asyncio.Event()
    loop = asyncio.get_running_loop()
    flusher = Flusher(loop, metrics, budget=FLUSH_BUDGET_SECONDS, clock=clock)

    async def handler(ws: ServerConnection) -> None:
        opened.append(WebSocketOutput(ws, flusher))
        if len(opened) == 2:
            ready.set()
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0, compression=None) as ws_server:
        port = ws_server.sockets[0].getsockname()[1]
        clients = [await connect(f"ws://127.0.0.1:{port}", compression=None) for _ in range(2)]
        async with asyncio.timeout(HANG_GUARD):
            await ready.wait()
        first, other = opened
        sent: list[Any] = []  # the server-side transports written to, in order
        transport_cls = type(first.ws.transport)
        original = transport_cls.write

        def counting_write(self: asyncio.Transport, data: Any) -> None:
            sent.append(self)
            original(self, data)

        monkeypatch.setattr(transport_cls, "write", counting_write)

        # One turn, no await from here to the checks: the first delta, then the
        # clock moves past the budget while the turn writes more to another client.
        first.write(b'{"n":"first"}')
        for n in range(CLOCK_EVERY - 2):
            other.write(json.dumps({"n": n}).encode())
        assert sent == [], "flushed before the budget was spent"
        clock.now += 2 * FLUSH_BUDGET_SECONDS
        other.write(b'{"n":"late"}')  # the CLOCK_EVERY-th frame: the clock is read
        assert first.ws.transport in sent, "the first frame still waits for the end of the turn"
        assert sent.count(other.ws.transport) == 1, "one write for the frames held so far"
        other.write(b'{"n":"after"}')  # a frame after the flush waits for the turn
        assert sent.count(other.ws.transport) == 1
        async with asyncio.timeout(HANG_GUARD):
            assert await clients[0].recv() == '{"n":"first"}'
            got = [await clients[1].recv() for _ in range(CLOCK_EVERY)]
        assert [json.loads(g)["n"] for g in got] == [*range(CLOCK_EVERY - 2), "late", "after"]
        for client in clients:
            await client.close()
    assert metrics.messages_out._value.get() == CLOCK_EVERY + 1  # type: ignore[attr-defined]


class _Turns:
    """Just enough of an event loop for a ``Flusher``: ``call_soon`` and running a turn."""

    def __init__(self) -> None:
        self.ready: list[Any] = []

    def call_soon(self, callback: Any) -> None:
        self.ready.append(callback)

    def run_turn(self) -> None:
        ready, self.ready = self.ready, []
        for callback in ready:
            callback()


class _Output:
    """A connection's output as ``WebSocketOutput`` drives the flusher, recording
    frames as pending (framed, with their clock time) and sent (flushed)."""

    def __init__(self, flusher: Flusher, clock: _Clock) -> None:
        self.flusher = flusher
        self.clock = clock
        self.pending: list[tuple[int, float, list[int]]] = []
        """(frame number, written at, [writes made while it was overdue])."""
        self.sent: list[int] = []

    def write(self, n: int) -> None:
        if not self.pending:
            self.flusher.add(self)  # type: ignore[arg-type]
        self.pending.append((n, self.clock(), [0]))
        self.flusher.framed()

    def flush(self) -> None:
        self.sent += [n for n, _, _ in self.pending]
        self.pending = []


@st.composite
def schedules(draw: st.DrawFn) -> list[tuple[str, int]]:
    """Writes to one of three connections, clock steps (ms) and ends of turns."""
    return draw(
        st.lists(
            st.one_of(
                st.tuples(st.just("write"), st.integers(0, 2)),
                st.tuples(st.just("tick"), st.integers(0, 4)),
                st.tuples(st.just("turn"), st.just(0)),
            ),
            max_size=300,
        )
    )


@settings(max_examples=200, deadline=None)
@given(schedules())
def test_no_frame_waits_past_the_budget_and_none_is_lost_or_reordered(
    schedule: list[tuple[str, int]],
) -> None:
    """Over random writes, clock steps and turns: a frame is sent at the latest
    within ``CLOCK_EVERY`` writes of its wait reaching the budget, else at the
    end of its turn; every frame is sent once, in the order written."""
    clock = _Clock()
    turns = _Turns()
    flusher = Flusher(turns, Metrics(), budget=FLUSH_BUDGET_SECONDS, clock=clock)  # type: ignore[arg-type]
    outputs = [_Output(flusher, clock) for _ in range(3)]
    written: list[list[int]] = [[], [], []]
    n = 0
    for op, arg in schedule:
        if op == "write":
            for out in outputs:
                for _, at, overdue in out.pending:
                    if clock() - at >= FLUSH_BUDGET_SECONDS:
                        overdue[0] += 1
            outputs[arg].write(n)
            written[arg].append(n)
            n += 1
            for out in outputs:
                for frame, _, overdue in out.pending:
                    assert overdue[0] < CLOCK_EVERY, (
                        f"frame {frame} overdue for {overdue[0]} writes"
                    )
        elif op == "tick":
            clock.now += arg / 1000
        else:
            turns.run_turn()
            assert all(not out.pending for out in outputs), "a turn ended with frames unsent"
    turns.run_turn()
    assert [out.sent for out in outputs] == written
