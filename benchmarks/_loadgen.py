"""Load generator processes: each holds many connections and obeys its parent.

The parent starts a few workers (``Workers``), gives each a slice of the
seeded users, and drives phases through pipes: connect N more users, publish
presence for a while (open loop at a rate, or closed loop with a fixed
number of commands in flight), stop. Workers report counts and latency
samples; every phase has a deadline, so a stuck server ends a run instead of
hanging it.

Latency needs one clock across processes: ``time.monotonic_ns`` is Linux's
CLOCK_MONOTONIC, the same for every process on the machine. A publisher
writes its send time into the activity's ``project`` label; a receiver
subtracts it from its own receive time.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import dataclasses
import itertools
import multiprocessing
import multiprocessing.connection
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from ._common import raise_nofile
from ._seed import FIRST_ID, token_for
from ._wsclient import WsClient, connect

PRESENCE_PREFIX = b'{"type":"presence"'
OK_PREFIX = b'{"type":"ok"'
PROJECT_KEY = b'"project":"'
STAMP = b"STAMP"
USER_ID_KEY = b'"user_id":'
SLOW_NS = 20_000_000
STALL_NS = 10_000_000


@dataclasses.dataclass
class PublishSpec:
    """One publishing phase; all times are ``monotonic_ns`` on the shared clock."""

    template: bytes
    """A frame with ``STAMP`` where the send time goes and ``USERID`` for the user id."""
    start_ns: int
    end_ns: int
    measure_from_ns: int
    measure_to_ns: int
    rate: float = 0.0
    """Open loop: frames per second from this worker (0 means closed loop)."""
    in_flight: int = 0
    """Closed loop: commands outstanding at any time from this worker."""
    drain_s: float = 3.0


@dataclasses.dataclass
class PublishResult:
    sent: int = 0
    acked: int = 0
    sent_in_window: int = 0
    deliveries_in_window: int = 0
    deliveries_total: int = 0
    latencies_ns: bytes = b""
    """``array('q')`` bytes: receive minus send time of deltas sent within the window."""
    cross_latencies_ns: bytes = b""
    """The same for deltas whose subject is connected to another server instance."""
    closed_connections: int = 0
    slow_ns: bytes = b""
    """``array('q')`` bytes, pairs of (send time, latency) for window samples of
    ``SLOW_NS`` or more: when the slow deliveries happened, to set beside the
    server's long loop turns."""
    stalls: list[tuple[int, int]] = dataclasses.field(default_factory=list)
    """Open loop: (end, length) in ns of every gap of ``STALL_NS`` or more between
    two rounds of this generator's sender (its own loop was busy or descheduled)."""


class Worker:
    """The worker side: runs in its own process."""

    def __init__(self, urls: Sequence[str], indexes: Sequence[int], ready_type: bytes) -> None:
        self.servers: list[tuple[str, int]] = []
        """User ``i`` connects to ``servers[i % len(servers)]``."""
        for url in urls:
            parts = urlsplit(url)
            self.servers.append((parts.hostname or "127.0.0.1", parts.port or 80))
        self.indexes = list(indexes)
        self.ready_type = ready_type
        self.clients: list[WsClient] = []
        self.ready: dict[int, asyncio.Future[None]] = {}
        self.phase: PublishSpec | None = None
        self.result = PublishResult()
        self.latencies = array.array("q")
        self.cross_latencies = array.array("q")
        self.slow = array.array("q")
        self.last_delivery = 0
        self.on_ok: Any = None

    # ------------------------------------------------------------ frames in

    def on_text(self, client: WsClient, payload: bytes) -> None:
        if payload.startswith(PRESENCE_PREFIX):
            self._delivery(client, payload)
        elif payload.startswith(OK_PREFIX):
            if self.on_ok is not None:
                self.on_ok(client)
        elif payload.startswith(self.ready_type):
            fut = self.ready.get(client.user)
            if fut is not None and not fut.done():
                fut.set_result(None)

    def _delivery(self, receiver: WsClient, payload: bytes) -> None:
        phase = self.phase
        if phase is None:
            return
        now = time.monotonic_ns()
        res = self.result
        res.deliveries_total += 1
        self.last_delivery = now
        if phase.measure_from_ns <= now <= phase.measure_to_ns:
            res.deliveries_in_window += 1
        i = payload.find(PROJECT_KEY)
        if i < 0:
            return
        i += len(PROJECT_KEY)
        j = payload.find(b'"', i)
        try:
            stamp = int(payload[i:j])
        except ValueError:
            return
        if phase.measure_from_ns <= stamp <= phase.measure_to_ns:
            if len(self.servers) > 1 and self._cross(receiver, payload):
                self.cross_latencies.append(now - stamp)
            else:
                self.latencies.append(now - stamp)
            if now - stamp >= SLOW_NS:
                self.slow.extend((stamp, now - stamp))

    def _cross(self, receiver: WsClient, payload: bytes) -> bool:
        """The delta's subject is connected to another instance than its receiver."""
        i = payload.find(USER_ID_KEY) + len(USER_ID_KEY)
        j = payload.find(b",", i)
        sender = int(payload[i:j]) - FIRST_ID
        n = len(self.servers)
        return sender % n != receiver.user % n

    # ------------------------------------------------------------ phases

    async def connect_more(self, count: int, concurrency: int = 48) -> tuple[int, int, float]:
        start = time.monotonic()
        todo = self.indexes[len(self.clients) : len(self.clients) + count]
        sem = asyncio.Semaphore(concurrency)
        failures = 0

        async def one(index: int) -> WsClient | None:
            async with sem:
                fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                self.ready[index] = fut
                try:
                    async with asyncio.timeout(30):
                        host, port = self.servers[index % len(self.servers)]
                        client = await connect(host, port, self.on_text)
                    client.user = index
                    token = token_for(index)
                    client.send_text(b'{"type":"auth","id":1,"session":"' + token.encode() + b'"}')
                    await asyncio.wait(
                        [fut, client.closed], timeout=60, return_when=asyncio.FIRST_COMPLETED
                    )
                    if not fut.done():
                        client.close()
                        return None
                    return client
                except (OSError, TimeoutError, ConnectionError):
                    return None
                finally:
                    self.ready.pop(index, None)

        for client in await asyncio.gather(*(one(i) for i in todo)):
            if client is None:
                failures += 1
            else:
                self.clients.append(client)
        return len(self.clients), failures, time.monotonic() - start

    async def publish(self, spec: PublishSpec) -> PublishResult:
        self.phase = spec
        self.result = res = PublishResult()
        self.latencies = array.array("q")
        self.cross_latencies = array.array("q")
        self.slow = array.array("q")
        clients = [c for c in self.clients if not c.closed.done()]
        res.closed_connections = len(self.clients) - len(clients)
        head, _, tail = spec.template.partition(STAMP)
        user_ids = {c: str(10_000_000 + c.user).encode() for c in clients}
        rotation = itertools.cycle(clients)

        def send_one() -> None:
            client = next(rotation)
            now = time.monotonic_ns()
            frame = (head + str(now).encode() + tail).replace(b"USERID", user_ids[client])
            client.send_text(frame)
            res.sent += 1
            if spec.measure_from_ns <= now <= spec.measure_to_ns:
                res.sent_in_window += 1

        def ok(_client: WsClient) -> None:
            res.acked += 1
            if spec.rate == 0 and time.monotonic_ns() < spec.end_ns:
                send_one()

        self.on_ok = ok
        await asyncio.sleep(max(0.0, (spec.start_ns - time.monotonic_ns()) / 1e9))
        if spec.rate == 0:
            for _ in range(min(spec.in_flight, len(clients))):
                send_one()
            await asyncio.sleep(max(0.0, (spec.end_ns - time.monotonic_ns()) / 1e9))
        else:
            last = time.monotonic_ns()
            while (now := time.monotonic_ns()) < spec.end_ns:
                if now - last >= STALL_NS:
                    res.stalls.append((now, now - last))
                last = now
                due = int((now - spec.start_ns) / 1e9 * spec.rate) - res.sent
                for _ in range(due):
                    send_one()
                await asyncio.sleep(0.002)
        # Drain: until nothing arrived for a while, or the drain budget ends.
        deadline = time.monotonic_ns() + int(spec.drain_s * 1e9)
        while time.monotonic_ns() < deadline:
            await asyncio.sleep(0.1)
            if time.monotonic_ns() - self.last_delivery > 300_000_000 and res.acked >= res.sent:
                break
        self.on_ok = None
        self.phase = None
        res.latencies_ns = self.latencies.tobytes()
        res.cross_latencies_ns = self.cross_latencies.tobytes()
        res.slow_ns = self.slow.tobytes()
        res.closed_connections = sum(1 for c in self.clients if c.closed.done())
        return res

    async def close_all(self) -> None:
        for client in self.clients:
            client.close()
        await asyncio.sleep(0.2)


def _worker_main(
    conn: multiprocessing.connection.Connection,
    urls: Sequence[str],
    indexes: Sequence[int],
    ready_type: bytes,
) -> None:
    raise_nofile()

    async def main() -> None:
        worker = Worker(urls, indexes, ready_type)
        loop = asyncio.get_running_loop()
        while True:
            command, arg = await loop.run_in_executor(None, conn.recv)
            if command == "connect":
                conn.send(await worker.connect_more(arg))
            elif command == "publish":
                conn.send(await worker.publish(arg))
            elif command == "stop":
                await worker.close_all()
                conn.send(True)
                return

    asyncio.run(main())


class Workers:
    """The parent side: start, command and stop a set of worker processes."""

    def __init__(
        self,
        url: str | Sequence[str],
        users: int,
        processes: int,
        *,
        ready_type: bytes = b'{"type":"snapshot"',
    ) -> None:
        """``url``: one server, or several (user ``i`` goes to ``url[i % len(url)]``)."""
        urls = [url] if isinstance(url, str) else list(url)
        ctx = multiprocessing.get_context("spawn")
        self.pipes: list[multiprocessing.connection.Connection] = []
        self.procs: list[Any] = []
        self.sizes: list[int] = []
        for p in range(processes):
            indexes = list(range(p, users, processes))
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=_worker_main, args=(child, urls, indexes, ready_type), daemon=True
            )
            proc.start()
            self.pipes.append(parent)
            self.procs.append(proc)
            self.sizes.append(len(indexes))

    def _all(self, command: str, args: Sequence[Any], timeout: float) -> list[Any]:
        for pipe, arg in zip(self.pipes, args, strict=True):
            pipe.send((command, arg))
        results = []
        deadline = time.monotonic() + timeout
        for pipe in self.pipes:
            if not pipe.poll(max(0.0, deadline - time.monotonic())):
                raise TimeoutError(f"a load generator did not finish {command!r} in {timeout} s")
            results.append(pipe.recv())
        return results

    def connect(self, total: int, timeout: float = 240.0) -> tuple[int, int, float]:
        """Bring the number of open connections up to ``total`` (spread evenly)."""
        n = len(self.pipes)
        share = [total // n + (1 if p < total % n else 0) for p in range(n)]
        current = getattr(self, "_open", [0] * n)
        more = [max(0, s - c) for s, c in zip(share, current, strict=True)]
        start = time.monotonic()
        results = self._all("connect", more, timeout)
        self._open = [r[0] for r in results]
        return sum(r[0] for r in results), sum(r[1] for r in results), time.monotonic() - start

    def publish(self, specs: Sequence[PublishSpec], timeout: float) -> list[PublishResult]:
        return self._all("publish", specs, timeout)

    def stop(self) -> None:
        with contextlib.suppress(TimeoutError, OSError, EOFError):
            self._all("stop", [None] * len(self.pipes), 20.0)
        for proc in self.procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
