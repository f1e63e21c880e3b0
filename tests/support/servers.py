"""In-process presence servers on a free loopback port, and their databases.

* ``database`` — a SQLite file in ``tmp_path``, or, where a directory
  parametrizes it (tests/server runs each test on both), a fresh PostgreSQL
  database (skipped locally without ``$TEST_PG_DSN``, a failure in CI).
* ``db_path`` — that SQLite file, for tests that read it as an operator would.
* ``start`` — ``await start(**config overrides)`` runs a dev-login server on
  the test's database; every one started is stopped at teardown, newest first.
* ``ServerHandle`` — one server that can be stopped and started again on the
  same port and file (for reconnect tests).
* ``gc_restored`` — for tests of the server's GC policy, which is process-wide:
  nothing frozen before or after, and no policy callback left behind.
* ``on_last_seen_written`` — note every last-seen statement a store runs (how
  many a stop or a mass disconnect costs).
* ``hand_clock`` — a running server's session timers and rate windows on a
  ``FakeClock`` the test moves (windows and deadlines that must not depend on
  how fast a loaded machine gets through the test).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from presence_server import RunningServer, ServerConfig, start_server
from presence_server.edge.gc_policy import _on_gc
from presence_server.storage.database import normalize_url
from presence_server.storage.store import Store

from .clock import FakeClock
from .services import fresh_postgres_database, postgres_dsn

StartServer = Callable[..., Awaitable[RunningServer]]
SQLITE_NAME = "presence.sqlite3"


@pytest.fixture
def gc_restored() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()
    assert _on_gc not in gc.callbacks, "a GC policy outlived its test"


def on_last_seen_written(store: Store, note: Callable[[list[int], int], None]) -> None:
    """Call ``note(user_ids, when)`` once each ``store.set_last_seen`` is done."""
    write = store.set_last_seen

    async def noted(user_ids: Iterable[int], when: int) -> None:
        ids = list(user_ids)
        await write(ids, when)
        note(ids, when)

    store.set_last_seen = noted  # type: ignore[method-assign]


def hand_clock(server: RunningServer, clock: FakeClock) -> FakeClock:
    """Run ``server``'s session timers and rate windows on ``clock`` from now on.

    A presence window of half a second or an auth deadline of 0.3 s on the
    loop's clock makes a test race the machine: on a loaded CI box the five
    commands that should share a window, or the one that should beat the
    deadline, are sometimes not done in time, and the test fails for a reason
    that is not the server's. On ``clock`` the window ends, and the deadline
    passes, exactly when the test calls ``clock.advance`` — everything else
    (sockets, frames, the database) stays real. The hub's clock is the one
    ``Session`` reads (``presence_server/session/timing.py``); the server
    builds it with the loop's clock, so it is replaced here, before the
    connections under test are opened (a session arms its auth deadline when
    it opens). Unix time stays ``ServerConfig.clock_ns`` (pass
    ``clock_ns=`` to ``start`` to set that too).
    """
    server.hub.clock = clock
    server.hub.monotonic = clock.monotonic
    return clock


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


@contextlib.asynccontextmanager
async def running_servers(database_url: str) -> AsyncIterator[StartServer]:
    """``start(**overrides)`` runs an in-process dev-login server on a free
    loopback port and ``database_url``; every one started is stopped on exit,
    newest first."""
    started: list[RunningServer] = []

    async def _start(**overrides: Any) -> RunningServer:
        options: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": 0,
            "database_url": database_url,
            "dev_login": True,
        }
        options.update(overrides)
        server = await start_server(ServerConfig(**options))
        started.append(server)
        return server

    try:
        yield _start
    finally:
        for server in reversed(started):
            await server.stop()


@dataclasses.dataclass(frozen=True)
class Database:
    backend: str
    url: str

    async def column(self, sql: str) -> list[Any]:
        """The first column of a query's rows, read outside the server."""
        engine = create_async_engine(normalize_url(self.url))
        try:
            async with engine.connect() as conn:
                return [row[0] for row in await conn.execute(sa.text(sql))]
        finally:
            await engine.dispose()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """The SQLite file of the test's ``sqlite`` database."""
    return tmp_path / SQLITE_NAME


@pytest.fixture
async def database(request: pytest.FixtureRequest, db_path: Path) -> AsyncIterator[Database]:
    """SQLite unless the test is parametrized (indirectly) with ``"postgresql"``."""
    backend = getattr(request, "param", "sqlite")
    if backend == "sqlite":
        yield Database("sqlite", sqlite_url(db_path))
        return
    async for url in fresh_postgres_database(postgres_dsn()):
        yield Database("postgresql", url)


@pytest.fixture
async def start(database: Database) -> AsyncIterator[StartServer]:
    """Start servers on the test's database; all are stopped at teardown."""
    async with running_servers(database.url) as start:
        yield start


class ServerHandle:
    """One server database that can be stopped and started again on the same port.

    ``config`` overrides go to every start (``clock_ns=`` for a test that owns
    the server's wall clock)."""

    def __init__(self, directory: Path, **config: Any) -> None:
        self.database_url = sqlite_url(directory / SQLITE_NAME)
        self.port = 0
        self.server: RunningServer | None = None
        self.config = config

    async def start(self) -> RunningServer:
        self.server = await start_server(
            ServerConfig(
                **{
                    "host": "127.0.0.1",
                    "port": self.port,
                    "database_url": self.database_url,
                    "dev_login": True,
                    **self.config,
                }
            )
        )
        self.port = self.server.port
        return self.server

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
            self.server = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"


@pytest.fixture
async def server_handle(tmp_path: Path) -> AsyncIterator[ServerHandle]:
    """A started ``ServerHandle`` on a SQLite file in ``tmp_path``; stopped at teardown."""
    handle = ServerHandle(tmp_path)
    await handle.start()
    yield handle
    await handle.stop()
