"""A login's reads see exactly what was committed, on every instance.

A session-resume login reads through ``Store.run_read``: on a SQLite file on
a reader thread of the store's own, with its own connection, and on
PostgreSQL on one pooled connection; its snapshot lists come from one
UNION ALL statement. Random sequences of relation changes and of session
creation and revocation, written by one store (one server instance), are
read back after every step by a second store on the same database (another
instance): the snapshot lists match the tables, and a revoked session is
refused at once, everywhere (there is no session cache to go stale).

The default tier runs a few sequences on SQLite; the slow tier more, on
SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from presence_server.auth import Identity, IdentityKind
from presence_server.domain import friends
from presence_server.storage.database import create_engine, migrate
from presence_server.storage.store import CommandError, Store, StoreClosed
from tests.support.servers import sqlite_url
from tests.support.services import fresh_postgres_database, postgres_dsn

PEOPLE = 3
NOW = 1_700_000_000
RELATION_OPS = ["request", "accept", "decline", "cancel", "remove", "block", "unblock"]

person = st.integers(min_value=0, max_value=PEOPLE - 1)
relation_ops = st.lists(
    st.tuples(st.sampled_from(RELATION_OPS), person, person).filter(lambda op: op[1] != op[2]),
    max_size=20,
)
SESSION_SLOTS = 3
session_ops = st.lists(
    st.one_of(
        st.tuples(st.just("create"), person),
        st.tuples(st.just("revoke"), st.integers(0, SESSION_SLOTS - 1)),
        st.tuples(st.just("sign_out_everywhere"), person),
    ),
    max_size=15,
)


class Instances:
    """Two stores on one database, as two server instances would have, and the users."""

    def __init__(self, writer: Store, reader: Store, users: list[int]) -> None:
        self.writer = writer
        self.reader = reader
        self.users = users


@contextlib.asynccontextmanager
async def instances(url: str) -> AsyncIterator[Instances]:
    engine = create_engine(url)
    await migrate(engine)
    writer, reader = Store(engine), Store(create_engine(url))
    try:
        users = [
            (await writer.upsert_identity(Identity(IdentityKind.DEV, f"p{i}"), NOW)).id
            for i in range(PEOPLE)
        ]
        yield Instances(writer, reader, users)
    finally:
        await reader.close()
        await writer.close()


@contextlib.contextmanager
def database_url(backend: str, runner: asyncio.Runner) -> Iterator[str]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield sqlite_url(Path(tmp) / "presence.sqlite3")
        return
    urls = fresh_postgres_database(postgres_dsn())

    async def first() -> str:
        return await anext(urls)

    async def drop() -> None:
        with contextlib.suppress(StopAsyncIteration):
            await anext(urls)  # the generator drops the database on its way out

    try:
        yield runner.run(first())
    finally:
        runner.run(drop())


async def tables(store: Store, me: int) -> tuple[list[int], ...]:
    """The four snapshot lists straight from the tables (the definition)."""
    queries = (
        "SELECT friend_id FROM friendships WHERE user_id = :me",
        "SELECT from_id FROM friend_requests WHERE to_id = :me AND from_id NOT IN"
        " (SELECT blocked_id FROM blocks WHERE blocker_id = :me)",
        "SELECT to_id FROM friend_requests WHERE from_id = :me",
        "SELECT blocked_id FROM blocks WHERE blocker_id = :me",
    )
    found: list[list[int]] = []
    async with store.read() as conn:
        for query in queries:
            found.append(sorted(r[0] for r in await conn.execute(sa.text(query), {"me": me})))
    return tuple(found)


async def apply_relation(store: Store, op: str, me: int, other: int) -> None:
    changes: dict[str, Callable[[], Awaitable[friends.Outcome]]] = {
        "request": lambda: friends.request(store, me, other, NOW, 100),
        "accept": lambda: friends.accept(store, me, other, NOW, 100),
        "decline": lambda: friends.decline(store, me, other),
        "cancel": lambda: friends.cancel(store, me, other),
        "remove": lambda: friends.remove(store, me, other),
        "block": lambda: friends.block(store, me, other, NOW),
        "unblock": lambda: friends.unblock(store, me, other),
    }
    with contextlib.suppress(CommandError):  # refused: changes nothing (checked below)
        await changes[op]()


async def check_relations(db: Instances, ops: list[tuple[str, int, int]]) -> None:
    for op, a, b in ops:
        await apply_relation(db.writer, op, db.users[a], db.users[b])
        for me in db.users:
            rel = await friends.relations(db.reader, me)
            lists = (rel.friends, rel.incoming, rel.outgoing, rel.blocked)
            shown = tuple(sorted(u.id for u in rows) for rows in lists)
            assert shown == await tables(db.writer, me), (op, a, b, me)
            for rows in lists:
                assert [(u.login.lower(), u.id) for u in rows] == sorted(
                    (u.login.lower(), u.id) for u in rows
                )


async def check_sessions(db: Instances, ops: list[tuple[str, int]]) -> None:
    tokens: list[tuple[str, str, int]] = []  # (session id, token, user)
    live: set[str] = set()
    for op, arg in ops:
        if op == "create":
            sid, token = await db.writer.create_session(db.users[arg], "test", NOW)
            tokens.append((sid, token, db.users[arg]))
            live.add(sid)
        elif op == "revoke" and arg < len(tokens):
            sid, _token, user = tokens[arg]
            await db.writer.revoke_sessions(user, [sid], NOW)
            live.discard(sid)
        elif op == "sign_out_everywhere":
            await db.writer.revoke_sessions(db.users[arg], None, NOW)
            live -= {sid for sid, _t, user in tokens if user == db.users[arg]}
        for sid, token, user in tokens:
            resumed = await db.reader.resume_session(token, NOW)
            if sid in live:
                assert resumed is not None and resumed[0] == sid and resumed[1].id == user
            else:
                assert resumed is None, "a revoked session was accepted by another instance"


def run_sequences(backend: str, examples: int) -> None:
    with asyncio.Runner() as runner, database_url(backend, runner) as url:
        db: Instances | None = None
        opened = instances(url)
        db = runner.run(opened.__aenter__())
        try:

            @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
            @given(rel=relation_ops, sess=session_ops)
            def sequence(rel: list[tuple[str, int, int]], sess: list[tuple[str, int]]) -> None:
                assert db is not None
                runner.run(check_relations(db, rel))
                runner.run(check_sessions(db, sess))

            sequence()
        finally:
            runner.run(opened.__aexit__(None, None, None))


def test_login_reads_see_every_committed_change() -> None:
    run_sequences("sqlite", examples=15)


@pytest.mark.slow
@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_login_reads_see_every_committed_change_many(backend: str) -> None:
    run_sequences(backend, examples=60)


def count_users(conn: sa.Connection) -> int:
    return int(conn.execute(sa.text("SELECT count(*) FROM users")).scalar_one())


async def test_close_waits_for_reads_in_flight_and_refuses_later_ones(tmp_path: Path) -> None:
    """A read on the reader thread (the file was busy) is waited for by ``close()``."""
    path = tmp_path / "presence.sqlite3"
    engine = create_engine(sqlite_url(path))
    await migrate(engine)
    await engine.dispose()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    store = Store(engine)
    order: list[str] = []
    reading = asyncio.ensure_future(store.run_read(count_users))
    reading.add_done_callback(lambda _f: order.append("read"))
    ticked = asyncio.Event()
    asyncio.get_running_loop().call_soon(ticked.set)
    await ticked.wait()  # the read is on the reader thread now, waiting for the lock
    closing = asyncio.ensure_future(store.close())
    closing.add_done_callback(lambda _f: order.append("closed"))
    await asyncio.sleep(0)
    holder.execute("COMMIT")
    holder.close()
    await asyncio.wait_for(closing, 60)  # hang guard only
    assert order == ["read", "closed"], "close() returned before the read in flight ended"
    assert reading.result() == 0
    with pytest.raises(StoreClosed):
        await store.run_read(count_users)


async def test_a_read_that_would_wait_for_a_lock_waits_off_the_event_loop(tmp_path: Path) -> None:
    """Reads run on the loop only while SQLite can answer at once; a busy file
    (here: another process holding it exclusively) sends the read to the
    reader thread, and the loop keeps serving everyone else meanwhile."""
    path = tmp_path / "presence.sqlite3"
    engine = create_engine(sqlite_url(path))
    await migrate(engine)
    await engine.dispose()  # no pooled connection holds the file open now
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    store = Store(engine)
    try:
        reading = asyncio.ensure_future(store.run_read(count_users))
        ticked = asyncio.Event()
        asyncio.get_running_loop().call_soon(ticked.set)
        await ticked.wait()
        assert not reading.done(), "the read did not wait for the lock"
        holder.execute("COMMIT")
        holder.close()  # releases the exclusive lock
        assert await asyncio.wait_for(reading, 60) == 0  # hang guard only
        assert store._reader is not None and store._reader.waited == 1
        # The loop's own connection never waits for a lock.
        timeout = await store.run_read(
            lambda c: int(c.exec_driver_sql("PRAGMA busy_timeout").scalar_one())
        )
        assert timeout == 0 and store._reader.waited == 1
    finally:
        with contextlib.suppress(sqlite3.ProgrammingError):
            holder.close()
        await store.close()
