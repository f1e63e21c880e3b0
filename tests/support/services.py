"""System services a test may need, and the rule for when they are missing.

Tests that need a display, PostgreSQL, Redis, Chromium, node or another
system service call ``require(...)`` instead of ``pytest.skip``. With
``PRESENCE_REQUIRE_SERVICES=1`` (set by .ci/run) a missing service is a
failure, so a forgotten install step can never pass silently.

* ``postgres_url`` — a new, empty database on ``$TEST_PG_DSN``, dropped after.
* ``redis_url`` / ``redis_prefix`` — ``$TEST_REDIS_URL`` and a key prefix of
  the test's own, so tests sharing one Redis never meet.
* ``redis_server`` — a private ``redis-server`` the test may kill and start
  again on the same port (restarting the shared one would disturb others).
* ``redis_shards`` — a private Redis Cluster of three primaries, for sharded
  pub/sub (``--redis-pubsub``).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
from sqlalchemy.engine import make_url

PG_DSN_VARIABLE = "TEST_PG_DSN"
REDIS_URL_VARIABLE = "TEST_REDIS_URL"
START_TIMEOUT = 60.0
"""Hang guard for a service to start (it takes well under a second)."""

Require = Callable[[bool, str], None]


def services_required() -> bool:
    return os.environ.get("PRESENCE_REQUIRE_SERVICES") == "1"


def require(available: bool, reason: str) -> None:
    """Skip (locally) or fail (in CI) when a needed service is missing."""
    if available:
        return
    if services_required():
        pytest.fail(f"required service missing in CI: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(name="require")
def require_fixture() -> Require:
    return require


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def fresh_postgres_database(dsn: str) -> AsyncIterator[str]:
    """A new, empty database on the server of ``dsn``; dropped afterwards."""
    name = f"presence_t_{secrets.token_hex(6)}"
    admin_dsn = make_url(dsn).set(drivername="postgresql").render_as_string(hide_password=False)
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            url = make_url(dsn).set(database=name).render_as_string(hide_password=False)
            yield url
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def postgres_dsn() -> str:
    dsn = os.environ.get(PG_DSN_VARIABLE, "")
    require(bool(dsn), f"needs PostgreSQL: set ${PG_DSN_VARIABLE} (scripts/start_services.sh)")
    return dsn


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A new, empty PostgreSQL database, dropped after the test."""
    async for url in fresh_postgres_database(postgres_dsn()):
        yield url


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get(REDIS_URL_VARIABLE, "")
    require(bool(url), f"needs Redis: set ${REDIS_URL_VARIABLE} (scripts/start_services.sh)")
    return url


@pytest.fixture
def redis_prefix() -> str:
    """Keys of this test only, so tests sharing one Redis never meet."""
    return f"t{secrets.token_hex(4)}:"


class RedisProcess:
    """A redis-server of the test's own, stopped and started on one port."""

    def __init__(self, binary: str, directory: Path, *extra: str) -> None:
        self.binary = binary
        self.directory = directory
        self.extra = extra
        self.port = free_port()
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            self.binary,
            *("--port", str(self.port), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no", "--dir", str(self.directory)),
            *self.extra,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert self.proc.stdout is not None
        async with asyncio.timeout(START_TIMEOUT):
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
        binary is not None and bool(os.environ.get(REDIS_URL_VARIABLE)),
        f"needs redis-server on PATH and ${REDIS_URL_VARIABLE} (scripts/start_services.sh)",
    )
    assert binary is not None
    server = RedisProcess(binary, tmp_path)
    await server.start()
    yield server
    await server.stop()


class RedisShards:
    """A Redis Cluster of three primaries (no replicas) of the test's own, for
    sharded pub/sub; each node keeps its cluster config in its own directory,
    so a node stopped and started again on its port rejoins."""

    def __init__(self, binary: str, directory: Path, count: int = 3) -> None:
        self.nodes: list[RedisProcess] = []
        for n in range(count):
            node_dir = directory / f"shard{n}"
            node_dir.mkdir(parents=True, exist_ok=True)
            self.nodes.append(
                RedisProcess(
                    binary,
                    node_dir,
                    *("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"),
                    # The bus port defaults to port + 10000: past 65535, or taken.
                    *("--cluster-port", str(free_port()), "--cluster-node-timeout", "2000"),
                )
            )

    @property
    def url(self) -> str:
        """One node: a client reads the slot map from it."""
        return self.nodes[0].url

    async def start(self) -> None:
        for node in self.nodes:
            await node.start()
        create = await asyncio.create_subprocess_exec(
            "redis-cli",
            *("--cluster", "create", *(f"127.0.0.1:{node.port}" for node in self.nodes)),
            *("--cluster-replicas", "0", "--cluster-yes"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await create.communicate()
        assert create.returncode == 0, output.decode(errors="replace")
        await self.wait_ok()

    async def wait_ok(self) -> None:
        """Until every node says the cluster is up. Gossip has no event to
        await: ask each node again every 0.1 s, bounded by a hang guard."""
        async with asyncio.timeout(START_TIMEOUT * 3):
            for node in self.nodes:
                client: Any = aioredis.Redis.from_url(node.url)
                try:
                    state: Any = {}
                    while str(state.get("cluster_state")) not in ("ok", "b'ok'"):
                        await asyncio.sleep(0.1)
                        state = await client.execute_command("CLUSTER INFO")  # parsed to a dict
                finally:
                    await client.aclose()

    async def stop(self) -> None:
        for node in self.nodes:
            await node.stop()


@pytest.fixture
async def redis_shards(tmp_path: Path) -> AsyncIterator[RedisShards]:
    binary = shutil.which("redis-server")
    require(
        binary is not None
        and shutil.which("redis-cli") is not None
        and bool(os.environ.get(REDIS_URL_VARIABLE)),
        f"needs redis-server and redis-cli on PATH and ${REDIS_URL_VARIABLE}",
    )
    assert binary is not None
    shards = RedisShards(binary, tmp_path / "shards")
    try:
        await shards.start()
        yield shards
    finally:  # also when the cluster never came up: no node outlives the test
        await shards.stop()
