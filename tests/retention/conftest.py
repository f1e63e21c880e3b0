"""A real server on a SQLite file in tmp_path, and a raw view of its database.

Tests of several instances sharing a database ask for ``postgres_url`` (a
fresh PostgreSQL database) and ``redis_url``; without the services they skip
locally and fail in CI (the ``require`` fixture).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.qt_loop import qasync_loop
from tests.server.helpers import (
    StartServer,
    fresh_postgres_database,
    running_servers,
    sqlite_url,
)

__all__ = ["StartServer", "rows"]  # the suite's tests import them from here

Require = Callable[[bool, str], None]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "presence.sqlite3"


@pytest.fixture
async def start(db_path: Path) -> AsyncIterator[StartServer]:
    """In-process servers on this test's SQLite file (or the ``database_url``
    a test passes); stopped at teardown."""
    async with running_servers(sqlite_url(db_path)) as start:
        yield start


@pytest.fixture
async def postgres_url(require: Require) -> AsyncIterator[str]:
    """A new, empty PostgreSQL database, dropped after the test."""
    dsn = os.environ.get("TEST_PG_DSN", "")
    require(bool(dsn), "needs PostgreSQL: set $TEST_PG_DSN (scripts/start_services.sh)")
    async for url in fresh_postgres_database(dsn):
        yield url


@pytest.fixture
def redis_url(require: Require) -> str:
    url = os.environ.get("TEST_REDIS_URL", "")
    require(bool(url), "needs Redis: set $TEST_REDIS_URL (scripts/start_services.sh)")
    return url


@pytest.fixture
def redis_prefix() -> str:
    """Keys of this test only, so tests sharing one Redis never meet."""
    return f"t{secrets.token_hex(4)}:"


def rows(db_path: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Read the server's SQLite file directly, as an operator (or a thief) would."""
    with sqlite3.connect(db_path) as conn:
        return list(conn.execute(sql, args))


# ---------------------------------------------------------------- Qt (desktop tests here)

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
_QT_TESTS = ("test_desktop_account.py",)


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    """The settings dialog runs on the qasync loop, like in the app."""
    if Path(str(item.path)).name in _QT_TESTS:
        return {"qasync": qasync_loop}
    return {"asyncio": asyncio.new_event_loop}
