"""A real ``presence-server`` process that tests can kill -9 and start again.

It runs the installed entry point's code (``python -m presence_server``) on a
SQLite file (or PostgreSQL / Redis URLs), logs to a file in the test's
directory (one of the files the final secret scan reads), and reports its
own resource use from ``/proc``: resident memory and CPU seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
START_TIMEOUT = 60.0

OPEN_LIMITS = (
    "--handshakes-per-minute",
    "0",
    "--max-connections-per-user",
    "0",
)
"""Every test client comes from 127.0.0.1: per-address limits would throttle the test."""


class ServerProcess:
    def __init__(
        self,
        directory: Path,
        *,
        database_url: str | None = None,
        extra: tuple[str, ...] = (),
        name: str = "server",
    ) -> None:
        self.directory = directory
        self.database_url = database_url or f"sqlite+aiosqlite:///{directory / 'presence.sqlite3'}"
        self.extra = extra
        self.name = name
        self.port = 0
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0
        self.log_path = directory / f"{name}.log"

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def start(self) -> None:
        """Start (again) on the same port and database; returns once it listens."""
        self.directory.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "presence_server",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--database",
                self.database_url,
                "--dev-login",
                "--log-level",
                "INFO",
                *OPEN_LIMITS,
                *self.extra,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        finally:
            log.close()
        assert self.process.stdout is not None
        async with asyncio.timeout(START_TIMEOUT):
            while True:
                line = await self.process.stdout.readline()
                if not line:
                    raise RuntimeError(f"{self.name} exited: see {self.log_path}")
                text = line.decode().strip()
                if text.startswith("listening on "):
                    self.port = int(text.rsplit(":", 1)[1])
                    break
        self.starts += 1

    async def kill9(self) -> None:
        """SIGKILL: no goodbye, no flush, sockets die with the process."""
        process = self.process
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        self.process = None

    async def stop(self) -> int | None:
        """SIGTERM, the way an operator restarts it; returns the exit code."""
        process = self.process
        if process is None:
            return None
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(30):
                code = await process.wait()
        except TimeoutError:
            process.kill()
            code = await process.wait()
        self.process = None
        return code

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def cpu_seconds(self) -> float:
        """User plus system CPU time of the process so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class CpuSampler:
    """Peak CPU use of a process (percent of one core) over short intervals."""

    def __init__(self, server: ServerProcess, interval: float = 0.25) -> None:
        self.server = server
        self.interval = interval
        self.samples: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @property
    def peak(self) -> float:
        return max(self.samples, default=0.0)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        last_cpu, last_time = None, loop.time()
        while True:
            try:
                cpu = self.server.cpu_seconds()
            except (OSError, AssertionError):
                last_cpu = None  # restarting: no process to read
                await asyncio.sleep(self.interval)
                continue
            now = loop.time()
            if last_cpu is not None and cpu >= last_cpu and now > last_time:
                self.samples.append(100.0 * (cpu - last_cpu) / (now - last_time))
            last_cpu, last_time = cpu, now
            await asyncio.sleep(self.interval)


@contextlib.asynccontextmanager
async def redis_cluster(
    root: Path,
    count: int,
    postgres_url: str,
    redis_url: str,
    redis_prefix: str,
    *extra: str,
    instance_prefix: str = "s",
) -> AsyncIterator[list[ServerProcess]]:
    """``count`` instances on one PostgreSQL and one Redis, started and stopped together."""
    servers = [
        ServerProcess(
            root / f"instance{n}",
            database_url=postgres_url,
            name=f"instance{n}",
            extra=(
                *("--redis", redis_url, "--redis-prefix", redis_prefix),
                *("--instance-id", f"{instance_prefix}{n}"),
                *extra,
            ),
        )
        for n in range(count)
    ]
    try:
        for server in servers:
            await server.start()
        yield servers
    finally:
        for server in servers:
            await server.stop()
