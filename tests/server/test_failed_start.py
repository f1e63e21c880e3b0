"""A start that fails after the database was opened leaves nothing open.

An aiosqlite connection lives on a worker thread of its own, so a pooled
connection left behind by a failed start shows as a thread that stays.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from presence_server import ServerConfig, start_server
from tests.support.servers import StartServer

JOIN_SECONDS = 5.0


def database_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if "connection_worker" in t.name}


def left_running(before: set[threading.Thread]) -> set[threading.Thread]:
    """Database threads started since ``before`` that do not end (a closed
    connection's thread ends a moment after the close returns)."""
    for thread in database_threads() - before:
        thread.join(JOIN_SECONDS)
    return database_threads() - before


async def test_a_bad_redis_address_fails_the_start_without_keeping_the_database(
    tmp_path: Path,
) -> None:
    before = database_threads()
    config = ServerConfig(
        host="127.0.0.1",
        port=0,
        database_url=f"sqlite:///{tmp_path / 'presence.sqlite3'}",
        redis_url="redis://127.0.0.1:not-a-port/0",
    )
    with pytest.raises(ValueError, match="Port"):
        await start_server(config)
    assert (tmp_path / "presence.sqlite3").exists()  # it got as far as migrating
    assert not left_running(before)


@pytest.mark.sqlite_only
async def test_a_busy_port_fails_the_start_without_keeping_the_database(
    start: StartServer, tmp_path: Path
) -> None:
    running = await start()
    before = database_threads()
    config = ServerConfig(
        host="127.0.0.1",
        port=running.port,
        database_url=f"sqlite:///{tmp_path / 'other.sqlite3'}",
    )
    with pytest.raises(OSError):
        await start_server(config)
    assert not left_running(before)
