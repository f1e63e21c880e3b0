"""tests/server: every test that uses ``database`` (directly or through
``start``, ``server`` or ``login``) runs twice: on a SQLite file in tmp_path
and on a fresh PostgreSQL database created for that test (``TEST_PG_DSN``;
skipped locally without it, a failure in CI). Tests about the SQLite file
itself are marked ``sqlite_only``. The fixtures themselves live in the
suite's plugin (``tests/support/servers.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from presence_server import RunningServer
from tests.support.servers import StartServer

from .client import Client, login_dev

Login = Callable[..., Awaitable[Client]]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sqlite_only: about the SQLite file; not run on PostgreSQL")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "database" not in metafunc.fixturenames:
        return
    sqlite_only = metafunc.definition.get_closest_marker("sqlite_only") is not None
    backends = ["sqlite"] if sqlite_only else ["sqlite", "postgresql"]
    metafunc.parametrize("database", backends, indirect=True)


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
