"""Reconnect storm: 3,000 clients in three processes come back after a server restart.

Every client uses the desktop's backoff generator (exponential, full jitter:
attempt n waits a uniform time in [0, min(30 s, 0.5 s * 2^n)]). The server
is a real ``presence-server`` process on SQLite; it is restarted with SIGTERM
(every connection closes with 4000, "reconnect") while all clients are
connected. Asserted: every one of the clients is back and signed in exactly
once, on the restarted process. Measured and printed (not asserted: a busy
machine stretches it): the time from the new process listening until the
last client is back, the attempts that took, and the server's peak CPU. The
rate a storm drains at is a benchmark's job, against a same-run baseline:
``benchmarks/connections.py`` measures connect + session resume + snapshot
per second against bare websockets handshakes (docs/performance.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from presence_desktop.core.backoff import MAX_DELAY
from tests.security import issued
from tests.support.processes import CpuSampler, ServerProcess

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

CLIENTS = 3000
PROCESSES = 3
HANG_GUARD = 10 * (MAX_DELAY + 15.0)
"""No wait here is a speed bound: 10× the time a client can take to come back."""
ROOT = Path(__file__).resolve().parents[2]


class Child:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            event = json.loads(line)
            if "token" in event:
                issued.record(event["token"])
            else:
                await self.events.put(event)

    async def next(self, key: str, within: float) -> dict[str, Any]:
        while True:
            event = await asyncio.wait_for(self.events.get(), within)
            if key in event:
                return event

    async def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.terminate()
        await self.process.wait()
        self.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.reader


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ServerProcess]:
    process = ServerProcess(tmp_path / "server", extra=("--log-level", "WARNING"))
    await process.start()
    yield process
    await process.stop()


async def test_three_thousand_clients_come_back_after_a_restart_without_a_herd(
    server: ServerProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    per = CLIENTS // PROCESSES
    children = [
        Child(
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tests.chaos.storm_child",
                server.url,
                str(n * per),
                str(per),
                cwd=ROOT,
                stdout=asyncio.subprocess.PIPE,
            )
        )
        for n in range(PROCESSES)
    ]
    try:
        started = time.monotonic()
        for child in children:
            assert (await child.next("ready", HANG_GUARD))["ready"] == per
        connect_all = time.monotonic() - started
        rss_before = server.rss_bytes()

        down_at = time.time()
        await server.stop()
        stopped_at = time.time()
        sampler = CpuSampler(server, interval=0.2)
        await server.start()
        listening_at = time.time()
        sampler.start()
        backs = [await child.next("back", HANG_GUARD) for child in children]
        await sampler.stop()
        back_at = [t for b in backs for t in b["back_at"]]
        attempts = [a for b in backs for a in b["attempts"]]
        assert len(back_at) == CLIENTS
        assert min(back_at) > stopped_at, "every client signed in again to the new process"
        recovery = max(back_at) - listening_at
        half = statistics.median(back_at) - listening_at
        rss_after = server.rss_bytes()
    finally:
        for child in children:
            await child.stop()
    with capsys.disabled():
        print(
            f"\nstorm: {CLIENTS} clients in {PROCESSES} processes, "
            f"first connect {connect_all:.1f}s; "
            f"restart (stop {stopped_at - down_at:.1f}s, start {listening_at - stopped_at:.1f}s): "
            f"all back {recovery:.1f}s after the "
            f"server listened (half by {half:.1f}s), attempts median "
            f"{statistics.median(attempts):.0f} max {max(attempts)}; server peak CPU "
            f"{sampler.peak:.0f}% of one core; RSS {rss_before / 2**20:.0f} -> "
            f"{rss_after / 2**20:.0f} MiB"
        )
