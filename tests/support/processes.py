"""Real ``presence-server`` processes, as an operator runs them.

One class serves every suite that needs a process of its own (CLI, signals,
migrations, TLS, clusters, chaos, storms):

* ``ServerProcess(directory, args=[...])`` runs the console script with
  exactly those arguments and only the ``PRESENCE_*`` environment the test
  gives (``spawn`` fixture).
* ``ServerProcess(directory, database_url=..., extra=...)`` runs a dev-login
  server on that database with open per-address limits; ``start()`` again
  after ``kill9()`` or ``stop()`` reuses the same port, as a restarted
  service would.

Its stderr goes to ``directory/NAME.log`` (one of the files the final secret
scan reads); ``rss_bytes`` and ``cpu_seconds`` come from ``/proc``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
START_TIMEOUT = 60.0
"""Hang guard for a start or an exit (a server starts in well under 2 s)."""
LISTENING = re.compile(r"^listening on (wss?)://127\.0\.0\.1:(\d+)$")

OPEN_LIMITS = ("--handshakes-per-minute", "0", "--max-connections-per-user", "0")
"""Every test client comes from 127.0.0.1: per-address limits would throttle the test."""


def server_command(*args: str) -> list[str]:
    """The installed ``presence-server`` console script, as an operator runs it."""
    script = Path(sys.executable).with_name("presence-server")
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-m", "presence_server", *args]


class ServerProcess:
    def __init__(
        self,
        directory: Path,
        *,
        args: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        database_url: str | None = None,
        extra: tuple[str, ...] = (),
        name: str = "server",
    ) -> None:
        self.directory = directory
        self.args = None if args is None else list(args)
        self.env = dict(env or {})
        self.database_url = database_url or f"sqlite+aiosqlite:///{directory / 'presence.sqlite3'}"
        self.extra = extra
        self.name = name
        self.port = 0
        self.scheme = "ws"
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0
        self.log_path = directory / f"{name}.log"

    # ------------------------------------------------------------ addresses

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def http_url(self) -> str:
        return f"{'https' if self.scheme == 'wss' else 'http'}://127.0.0.1:{self.port}"

    @property
    def proc(self) -> asyncio.subprocess.Process:
        assert self.process is not None, f"{self.name} is not running"
        return self.process

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def stderr(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    # ------------------------------------------------------------ life cycle

    def _argv(self) -> list[str]:
        if self.args is not None:
            return server_command(*self.args)
        return server_command(
            *("--host", "127.0.0.1", "--port", str(self.port)),
            *("--database", self.database_url, "--dev-login", "--log-level", "INFO"),
            *OPEN_LIMITS,
            *self.extra,
        )

    def _environ(self) -> dict[str, str]:
        environ = dict(os.environ)
        if self.args is not None:
            # Only the PRESENCE_* settings the test gives, and a data dir of its own.
            environ = {k: v for k, v in environ.items() if not k.startswith("PRESENCE_")}
            environ["XDG_DATA_HOME"] = str(self.directory / "data")
        environ["PYTHONUNBUFFERED"] = "1"
        environ.update(self.env)
        return environ

    async def launch(self) -> ServerProcess:
        """Start the process; returns at once (``listening`` waits for it to serve)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                *self._argv(), stdout=asyncio.subprocess.PIPE, stderr=log, env=self._environ()
            )
        return self

    async def first_line(self) -> str:
        assert self.proc.stdout is not None
        async with asyncio.timeout(START_TIMEOUT):
            line = await self.proc.stdout.readline()
        return line.decode().rstrip("\n")

    async def listening(self) -> ServerProcess:
        """Wait for the ``listening on`` line; read the scheme and port from it."""
        while True:
            line = await self.first_line()
            assert line, f"{self.name} exited before it listened:\n{self.stderr[-3000:]}"
            match = LISTENING.match(line)
            if match:
                self.scheme, self.port = match.group(1), int(match.group(2))
                self.starts += 1
                return self

    async def start(self) -> ServerProcess:
        """Start (again: same port and database) and wait until it listens."""
        await self.launch()
        return await self.listening()

    async def finish(self) -> tuple[int, str]:
        """Wait for exit; returns the exit code and the rest of stdout."""
        assert self.proc.stdout is not None
        async with asyncio.timeout(START_TIMEOUT):
            rest = await self.proc.stdout.read()
            code = await self.proc.wait()
        return code, rest.decode()

    async def wait(self) -> int:
        async with asyncio.timeout(START_TIMEOUT):
            return await self.proc.wait()

    def kill(self) -> None:
        """kill -9 now: no drain, no goodbye to Redis (``wait`` reaps it)."""
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()

    async def kill9(self) -> None:
        """SIGKILL and reap: sockets die with the process."""
        process = self.process
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        self.process = None

    async def terminate(self) -> int:
        """SIGTERM and wait; returns the exit code (the process stays inspectable)."""
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGTERM)
        return await self.wait()

    async def stop(self) -> int | None:
        """SIGTERM, the way an operator restarts it (kill -9 after the hang
        guard); returns the exit code, and ``start`` may be called again."""
        process = self.process
        if process is None:
            return None
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(START_TIMEOUT):
                code = await process.wait()
        except TimeoutError:
            process.kill()
            code = await process.wait()
        self.process = None
        return code

    async def reap(self) -> None:
        """At teardown: whatever is still running is killed."""
        if self.process is not None and self.process.returncode is None:
            await self.kill9()

    # ------------------------------------------------------------ observing

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        async with httpx.AsyncClient(**kwargs) as client:
            return await client.get(self.http_url + path, timeout=10)

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def cpu_seconds(self) -> float:
        """User plus system CPU time of the process so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


Spawn = Callable[..., Coroutine[Any, Any, ServerProcess]]


@pytest.fixture
async def spawn(tmp_path: Path) -> AsyncIterator[Spawn]:
    """``await spawn(*args, env=...)`` launches ``presence-server *args`` (not yet
    listening: call ``listening()``); every process left is killed at teardown."""
    started: list[ServerProcess] = []

    async def _spawn(*args: str, env: dict[str, str] | None = None) -> ServerProcess:
        process = ServerProcess(tmp_path, args=args, env=env, name=f"server-{len(started)}")
        started.append(process)
        return await process.launch()

    yield _spawn
    for process in started:
        await process.reap()


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
