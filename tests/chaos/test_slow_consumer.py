"""A client that stops reading is cut off (4003) and nobody else waits for it.

Ten pairs of friends message each other all along (one message per pair
every 100 ms) through a real ``presence-server`` process, while mallory asks
for her session list 300 times a second (sixty sessions: each answer is
about 5 KB). She reads the answers at first; then she stops reading (her
receive buffer is tiny, and her client stops taking frames off it). Her
frames pile up in her own connection's write buffer, bounded in bytes,
until the server closes her with 4003; the pairs' round trips with mallory
reading and with mallory stuck are compared. The same traffic flows in
both phases, so any difference is the cost of the stuck reader.

(Chat messages alone cannot do this: the server sends at most
``MAX_REPLAY_MESSAGES`` unacknowledged messages to a device, so a reader
that stops acknowledging stops receiving them; command replies and presence
deltas are what can pile up.)
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from presence_protocol import (
    CloseCode,
    Message,
    MessageSent,
    PresenceUpdate,
    SeenStatus,
    SendMessage,
    limits,
)
from tests.server.client import Client, befriend, login_dev
from tests.support.processes import ServerProcess

pytestmark = pytest.mark.slow

PAIRS = 10
REQUESTS_PER_SECOND = 300


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ServerProcess]:
    process = ServerProcess(
        tmp_path / "server", extra=("--commands-per-minute", "1000000", "--log-level", "WARNING")
    )
    await process.start()
    yield process
    await process.stop()


async def paced(stop: asyncio.Event, interval: float) -> bool:
    """Wait ``interval`` unless stopped first; True to go on."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), interval)
    return not stop.is_set()


async def test_a_reader_that_stops_is_closed_and_others_keep_their_pace(
    server: ServerProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    pairs: list[tuple[Client, Client]] = []
    for n in range(PAIRS):
        a = await login_dev(server.url, f"a{n}")
        b = await login_dev(server.url, f"b{n}")
        await befriend(a, b)
        pairs.append((a, b))
    for i in range(59):
        await (await login_dev(server.url, "mallory", f"device-{i:02}")).close()
    seed = await login_dev(server.url, "mallory", "device-59")
    watcher = await login_dev(server.url, "watcher")
    await befriend(watcher, seed)
    token = seed.session or ""
    await seed.close()
    await watcher.expect(PresenceUpdate, status=SeenStatus.OFFLINE)

    # Mallory's device: a tiny receive buffer and a client that keeps one frame.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", server.port))
    ws: ClientConnection = await connect(
        server.url,
        sock=sock,
        subprotocols=[limits.SUBPROTOCOL],  # type: ignore[list-item]
        max_queue=1,
        max_size=limits.MAX_SERVER_FRAME_BYTES,
    )
    await ws.send(f'{{"type":"auth","session":"{token}"}}')
    received = 0

    async def read() -> None:
        nonlocal received
        async for _ in ws:
            received += 1

    reader = asyncio.ensure_future(read())
    await watcher.expect(PresenceUpdate, status=SeenStatus.ONLINE)

    phase = "reading"
    latencies: dict[str, list[float]] = {"reading": [], "stuck": [], "after": []}
    delivered: dict[str, set[int]] = {"reading": set(), "stuck": set(), "after": set()}
    stop = asyncio.Event()
    enough = asyncio.Event()
    wanted = 300

    async def chat(a: Client, b: Client, n: int) -> None:
        for i in range(10**6):
            started = time.monotonic()
            reply = await a.request(SendMessage(to=b.me, text=f"{n}:{i}", client_msg_id=f"c{i}"))
            assert isinstance(reply, MessageSent), reply
            assert (await b.expect(Message)).text == f"{n}:{i}"
            latencies[phase].append(time.monotonic() - started)
            delivered[phase].add(n)
            if len(latencies[phase]) >= wanted:
                enough.set()
            if not await paced(stop, 0.1):
                return

    async def ask() -> None:
        with contextlib.suppress(ConnectionClosed):
            while await paced(stop, 10 / REQUESTS_PER_SECOND):
                for _ in range(10):
                    await ws.send('{"type":"list_sessions"}')

    traffic = [asyncio.ensure_future(chat(a, b, n)) for n, (a, b) in enumerate(pairs)]
    traffic.append(asyncio.ensure_future(ask()))
    await asyncio.wait_for(enough.wait(), 60)

    # Mallory stops reading.
    phase = "stuck"
    enough.clear()
    stuck_at = time.monotonic()
    reader.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await reader
    await asyncio.wait_for(watcher.expect(PresenceUpdate, status=SeenStatus.OFFLINE), 60)
    cut_after = time.monotonic() - stuck_at
    # Reading again drains what got through, then the close code.
    with contextlib.suppress(ConnectionClosed):
        async for _ in ws:
            received += 1
    assert ws.close_code == CloseCode.SLOW_CONSUMER, ws.close_code

    phase = "after"
    wanted = 100
    enough.clear()
    await asyncio.wait_for(enough.wait(), 60)
    stop.set()
    await asyncio.gather(*traffic)
    for client in (watcher, *(c for pair in pairs for c in pair)):
        await client.close()

    # Every pair kept talking while mallory's device was stuck and after it was
    # cut (each message arrived, in order: ``chat`` asserts it). How fast they
    # kept pace is measured and printed, not asserted: on a busy machine a
    # time bound fails for reasons that are not the server's.
    assert delivered["stuck"] == set(range(PAIRS)), delivered["stuck"]
    assert delivered["after"] == set(range(PAIRS)), delivered["after"]
    reading, stuck = latencies["reading"], latencies["stuck"]
    p95 = {k: statistics.quantiles(v, n=20)[-1] for k, v in latencies.items()}
    with capsys.disabled():
        print(
            f"\nslow consumer: cut with 4003 {cut_after:.1f}s after it stopped reading "
            f"(it had taken {received} frames); {PAIRS} pairs' round trips p95 while it read "
            f"{p95['reading'] * 1000:.0f} ms, while it was stuck {p95['stuck'] * 1000:.0f} ms "
            f"(max {max(stuck) * 1000:.0f}), after {p95['after'] * 1000:.0f} ms; median "
            f"{statistics.median(reading) * 1000:.1f} / {statistics.median(stuck) * 1000:.1f} ms"
        )
