"""Fixtures: a real server on a free loopback port with a SQLite file in tmp_path."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from presence_server import RunningServer, ServerConfig, start_server

from .client import Client, login_dev

StartServer = Callable[..., Awaitable[RunningServer]]
Login = Callable[..., Awaitable[Client]]


def database_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "presence.sqlite3"


@pytest.fixture
async def start(db_path: Path) -> AsyncIterator[StartServer]:
    """Start servers on the test's database; all are stopped at teardown."""
    started: list[RunningServer] = []

    async def _start(**overrides: Any) -> RunningServer:
        options: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": 0,
            "database_url": database_url(db_path),
            "dev_login": True,
        }
        options.update(overrides)
        server = await start_server(ServerConfig(**options))
        started.append(server)
        return server

    yield _start
    for server in reversed(started):
        await server.stop()


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
