"""Real services for production-server tests: PostgreSQL, Redis, server processes.

* ``postgres_url`` — a fresh database on ``$TEST_PG_DSN`` (dropped afterwards).
* ``redis_url`` — ``$TEST_REDIS_URL`` with a key prefix of its own per test.
* ``redis_server`` — a private ``redis-server`` process the test may stop and
  start again on the same port (restarting the shared one would disturb
  other tests).
* ``spawn`` — real ``presence-server`` processes (the console script), each
  on port 0; ``ServerProcess.port`` is read from its listening line.

Without the services, tests skip locally and fail in CI (``require``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import require
from tests.server.conftest import fresh_postgres_database

LISTENING = re.compile(r"^listening on (wss?)://127\.0\.0\.1:(\d+)$")
STARTUP_TIMEOUT = 60.0


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    dsn = os.environ.get("TEST_PG_DSN", "")
    require(bool(dsn), "needs PostgreSQL: set $TEST_PG_DSN (scripts/start_services.sh)")
    async for url in fresh_postgres_database(dsn):
        yield url


@pytest.fixture
def redis_prefix() -> str:
    return f"t{secrets.token_hex(4)}:"


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("TEST_REDIS_URL", "")
    require(bool(url), "needs Redis: set $TEST_REDIS_URL (scripts/start_services.sh)")
    return url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisProcess:
    """A redis-server of the test's own, stopped and started on one port."""

    def __init__(self, binary: str, directory: Path) -> None:
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.directory),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert self.proc.stdout is not None
        async with asyncio.timeout(STARTUP_TIMEOUT):
            while True:
                line = await self.proc.stdout.readline()
                assert line, "redis-server exited before it was ready"
                if b"Ready to accept connections" in line:
                    break
        # Keep draining its output so it never blocks on a full pipe.
        self._drain = asyncio.create_task(self._discard(self.proc.stdout))

    @staticmethod
    async def _discard(stream: asyncio.StreamReader) -> None:
        while await stream.read(65536):
            pass

    async def stop(self, sig: signal.Signals = signal.SIGKILL) -> None:
        """Stop it (by default as abruptly as a crash); its data is gone."""
        proc, self.proc = self.proc, None
        if proc is None or proc.returncode is not None:
            return
        proc.send_signal(sig)
        await proc.wait()
        await self._drain


@pytest.fixture
async def redis_server(tmp_path: Path) -> AsyncIterator[RedisProcess]:
    binary = shutil.which("redis-server")
    require(
        binary is not None and bool(os.environ.get("TEST_REDIS_URL")),
        "needs redis-server on PATH and $TEST_REDIS_URL (scripts/start_services.sh)",
    )
    assert binary is not None
    server = RedisProcess(binary, tmp_path)
    await server.start()
    yield server
    await server.stop()


def server_command(*args: str) -> list[str]:
    """The installed ``presence-server`` console script, as an operator runs it."""
    script = Path(sys.executable).with_name("presence-server")
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-m", "presence_server", *args]


class ServerProcess:
    def __init__(self, proc: asyncio.subprocess.Process, stderr: Path) -> None:
        self.proc = proc
        self.stderr_path = stderr
        self.port = 0
        self.scheme = "ws"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def http_url(self) -> str:
        return f"{'https' if self.scheme == 'wss' else 'http'}://127.0.0.1:{self.port}"

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    async def listening(self) -> ServerProcess:
        assert self.proc.stdout is not None
        async with asyncio.timeout(STARTUP_TIMEOUT):
            line = (await self.proc.stdout.readline()).decode().rstrip("\n")
        match = LISTENING.match(line)
        assert match, (line, self.stderr)
        self.scheme, self.port = match.group(1), int(match.group(2))
        return self

    def kill(self) -> None:
        """kill -9: no drain, no goodbye to Redis."""
        self.proc.kill()

    async def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return await self.wait()

    async def wait(self) -> int:
        async with asyncio.timeout(STARTUP_TIMEOUT):
            return await self.proc.wait()

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        async with httpx.AsyncClient(**kwargs) as client:
            return await client.get(self.http_url + path, timeout=10)


Spawn = Callable[..., Coroutine[Any, Any, ServerProcess]]


@pytest.fixture
async def spawn(tmp_path: Path) -> AsyncIterator[Spawn]:
    """Start ``presence-server`` processes; only the environment the test gives."""
    started: list[ServerProcess] = []

    async def _spawn(*args: str, env: dict[str, str] | None = None) -> ServerProcess:
        errors = tmp_path / f"server-{len(started)}.log"
        environ = {k: v for k, v in os.environ.items() if not k.startswith("PRESENCE_")}
        environ.update({"XDG_DATA_HOME": str(tmp_path / "data"), **(env or {})})
        with errors.open("wb") as err:
            proc = await asyncio.create_subprocess_exec(
                *server_command(*args), stdout=asyncio.subprocess.PIPE, stderr=err, env=environ
            )
        process = ServerProcess(proc, errors)
        started.append(process)
        return process

    yield _spawn
    for process in started:
        if process.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.proc.kill()
            await process.proc.wait()
