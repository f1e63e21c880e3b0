"""A write a user made survives the task that asked for it being cancelled.

The database is made slow for real: the test holds a write lock from a
second connection (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: the recipient's
row ``FOR UPDATE``), so the server's message write is stuck inside the
database when its handler is cancelled (a client gone, a server stopping).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import QueuePool

from presence_protocol import Message, MessageSent, SendMessage
from presence_server import RunningServer
from tests.support.servers import Database, StartServer

from .client import befriend, login_dev

TIMEOUT = 10.0


@contextlib.asynccontextmanager
async def write_lock(database: Database, user_id: int) -> AsyncIterator[None]:
    """Hold a lock that the server's message write to ``user_id`` must wait for."""
    if database.backend == "sqlite":
        path = make_url(database.url).database
        assert path
        holder = sqlite3.connect(path, isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")
            yield
            holder.execute("ROLLBACK")
        finally:
            holder.close()
        return
    dsn = make_url(database.url).set(drivername="postgresql").render_as_string(False)
    pg = await asyncpg.connect(dsn)
    try:
        async with pg.transaction():
            await pg.execute("SELECT id FROM users WHERE id = $1 FOR UPDATE", user_id)
            yield
    finally:
        await pg.close()


def pool_of(server: RunningServer) -> QueuePool:
    """The server's connection pool (kept: stopping replaces the engine's pool)."""
    pool = server.hub.store.engine.pool
    assert isinstance(pool, QueuePool)
    return pool


def on_message_write(server: RunningServer) -> asyncio.Event:
    """Set when the server's message write reaches the database (and waits there)."""
    reached = asyncio.Event()

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE USERS SET NEXT_SEQ"):
            reached.set()

    event.listen(server.hub.store.engine.sync_engine, "before_cursor_execute", seen)
    return reached


class Seen(logging.Handler):
    """Sets an event when a log record with a given ``event`` field is emitted."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name_wanted = name
        self.happened = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "event", None) == self.name_wanted:
            self.happened.set()


@pytest.fixture
def drain_cancelled() -> Any:
    seen = Seen("drain_cancelled")
    logger = logging.getLogger("presence_server.edge.server")
    logger.addHandler(seen)
    yield seen.happened
    logger.removeHandler(seen)


async def test_a_cancelled_write_is_finished_and_returns_its_connection(
    start: StartServer, database: Database
) -> None:
    server = await start()
    alice = await login_dev(server.url, "alice")
    bob = await login_dev(server.url, "bob")
    await befriend(alice, bob)
    store = server.hub.store
    pool = pool_of(server)
    reached = on_message_write(server)

    async with write_lock(database, bob.me):
        write = asyncio.create_task(store.store_message(alice.me, bob.me, "m-1", "hi", 1))
        await asyncio.wait_for(reached.wait(), TIMEOUT)
        write.cancel()
        with pytest.raises(asyncio.CancelledError):
            await write
    await alice.close()
    await bob.close()
    async with asyncio.timeout(TIMEOUT):
        await server.stop()  # waits for the write, then releases the pool

    assert await database.column("SELECT text FROM messages") == ["hi"]
    assert pool.checkedout() == 0


async def test_a_message_whose_sender_left_mid_write_is_stored_once_across_a_stop(
    start: StartServer, database: Database, drain_cancelled: asyncio.Event
) -> None:
    server = await start(drain_seconds=0.2)
    alice = await login_dev(server.url, "alice")
    bob = await login_dev(server.url, "bob")
    await befriend(alice, bob)
    pool = pool_of(server)
    reached = on_message_write(server)

    async with write_lock(database, bob.me):
        await alice.send(SendMessage(id=7, to=bob.me, text="hi bob", client_msg_id="m-1"))
        await asyncio.wait_for(reached.wait(), TIMEOUT)
        await alice.close()  # gone before the write could answer
        await bob.close()
        stopping = asyncio.create_task(server.stop())
        # The handler is still stuck in the write: the drain gives up on it.
        await asyncio.wait_for(drain_cancelled.wait(), TIMEOUT)
    async with asyncio.timeout(TIMEOUT):
        await stopping

    assert pool.checkedout() == 0
    assert await database.column("SELECT text FROM messages") == ["hi bob"]

    # The sender never heard back, so her app sends it again after the restart:
    # the same message is acknowledged and the recipient gets it once.
    again = await start()
    alice = await login_dev(again.url, "alice")
    bob = await login_dev(again.url, "bob")
    reply = await alice.request(SendMessage(to=bob.me, text="hi bob", client_msg_id="m-1"))
    assert isinstance(reply, MessageSent)
    assert await database.column("SELECT id FROM messages") == [int(reply.message_id)]
    await bob.barrier()
    assert [m.text for m in bob.take(Message)] == ["hi bob"]
    await alice.close()
    await bob.close()
