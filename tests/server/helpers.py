"""Starting real servers and fresh databases for tests.

Shared by the conftests of tests/server, tests/security and tests/retention,
which differ only in which database their servers use.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from presence_server import RunningServer, ServerConfig, start_server

StartServer = Callable[..., Awaitable[RunningServer]]


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
