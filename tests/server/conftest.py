"""Fixtures: a real server on a free loopback port, on SQLite and on PostgreSQL.

Every test that uses ``database`` (directly or through ``start``, ``server``
or ``login``) runs twice: on a SQLite file in tmp_path and on a fresh
PostgreSQL database created for that test (``TEST_PG_DSN``; skipped locally
without it, a failure in CI). Tests about the SQLite file itself are marked
``sqlite_only``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from presence_server import RunningServer
from presence_server.database import normalize_url
from tests.conftest import require

from .client import Client, login_dev
from .helpers import StartServer, fresh_postgres_database, running_servers, sqlite_url

__all__ = ["StartServer", "fresh_postgres_database"]  # imported from here by other suites

Login = Callable[..., Awaitable[Client]]

PG_DSN_VARIABLE = "TEST_PG_DSN"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sqlite_only: about the SQLite file; not run on PostgreSQL")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "database" not in metafunc.fixturenames:
        return
    sqlite_only = metafunc.definition.get_closest_marker("sqlite_only") is not None
    backends = ["sqlite"] if sqlite_only else ["sqlite", "postgresql"]
    metafunc.parametrize("database", backends, indirect=True)


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
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        yield Database("sqlite", sqlite_url(tmp_path / "presence.sqlite3"))
        return
    dsn = os.environ.get(PG_DSN_VARIABLE, "")
    require(bool(dsn), f"PostgreSQL tests need ${PG_DSN_VARIABLE} (scripts/start_services.sh)")
    async for url in fresh_postgres_database(dsn):
        yield Database("postgresql", url)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """The SQLite file of the ``sqlite`` variant (for ``sqlite_only`` tests)."""
    return tmp_path / "presence.sqlite3"


@pytest.fixture
async def start(database: Database) -> AsyncIterator[StartServer]:
    """Start servers on the test's database; all are stopped at teardown."""
    async with running_servers(database.url) as start:
        yield start


@pytest.fixture
async def server(start: StartServer) -> RunningServer:
    return await start()


@pytest.fixture
async def login(server: RunningServer) -> AsyncIterator[Login]:
    """Dev-login clients to ``server``; closed at teardown (before the server stops)."""
    opened: list[Client] = []

    async def _login(name: str, device: str = "test", url: str | None = None) -> Client:
        client = await login_dev(url or server.url, name, device)
        opened.append(client)
        return client

    yield _login
    for client in opened:
        await client.close()
