"""Durable state: users, sessions, chosen status, last seen and messages.

Every public method is one transaction. On SQLite, writes go through one
asyncio lock per process: SQLite allows a single writer anyway, and queueing
in Python instead of inside SQLite's busy handler avoids "database is locked"
errors when a read transaction would have to be upgraded. On PostgreSQL,
several instances write at once; a transaction that reads before it writes
(allocating a dev id, a first GitHub sign-in, a message's seq and its
idempotency check, a friend change) first takes advisory locks on the users
it concerns (``database.advisory_lock``), so two instances cannot both pass
the same check. Friend relations live in ``friends.py`` and use ``write()`` /
``read()`` directly.

A write a user asked for is not given up because the asking task went away
(the client disconnected, the server is stopping): each durable write runs
as its own task (``finish``), the caller awaits it through ``asyncio.shield``
and ``close()`` waits for every such task before releasing the pool. A
connection is opened and handed back under the same protection, so a
cancellation can never leave one checked out for the garbage collector.

Reads on the hot paths (a login's session, its snapshot, the replay) are
plain functions of a synchronous connection run by ``Store.run_read`` in one
go. aiosqlite runs every cursor call on its connection's thread, so one
statement through SQLAlchemy's async layer costs four thread hops and a
pooled read a fifth (the rollback); a login was about forty. For a SQLite
file ``run_read`` instead runs the whole function on a read-only connection
of its own to the same file (WAL: it sees every committed write and does not
wait for the writer), on the event loop itself as long as SQLite can answer
without waiting for a lock, else on the store's reader thread (see
``_SqliteReader``). On PostgreSQL (asyncpg has no threads) and for an
in-memory SQLite database (which a second connection would not see) it runs
the same function on one pooled async connection (``AsyncConnection.run_sync``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Sequence
from typing import Any, Concatenate, ParamSpec, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from presence_protocol import Message, Status, User

from .. import auth
from ..auth import Identity, IdentityKind
from .database import DEV_ID_LOCK, advisory_lock
from .schema import friend_request_times, friendships, id_counters, messages, sessions, users

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

SESSION_USE_GRANULARITY = 3600
"""Seconds: ``last_used_at`` is refreshed at most this often (a tenth of the idle
period when that is shorter; idle expiry is in days)."""

DEV_ID_BASE = 2**52
"""Dev users get ids above this. GitHub ids are far below it (hundreds of
millions), and the wire allows ids up to 2**53, so the ranges cannot meet."""


DEV_USER_COUNTER = "dev_user"
"""The ``id_counters`` row of dev-login user ids."""


class CommandError(Exception):
    """A command that cannot be applied; the transaction is rolled back."""

    def __init__(self, code: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after


@dataclasses.dataclass(frozen=True, slots=True)
class UserRow:
    id: int
    kind: str
    login: str
    name: str | None
    avatar_url: str | None
    last_seen: int | None
    status: Status
    status_until: int | None
    acked_seq: int

    def wire(self) -> User:
        return User(id=self.id, login=self.login, name=self.name, avatar_url=self.avatar_url)


@dataclasses.dataclass(frozen=True, slots=True)
class SessionRow:
    id: str
    user_id: int
    device: str
    created_at: int
    last_used_at: int


@dataclasses.dataclass(frozen=True, slots=True)
class MessageRow:
    id: int
    sender_id: int
    recipient_id: int
    client_msg_id: str
    text: str
    sent_at: int
    seq: int

    def wire(self) -> Message:
        return Message(
            seq=self.seq,
            message_id=str(self.id),
            sender=self.sender_id,
            text=self.text,
            sent_at=self.sent_at,
        )


USER_COLUMNS = (
    users.c.id,
    users.c.kind,
    users.c.login,
    users.c.name,
    users.c.avatar_url,
    users.c.last_seen,
    users.c.status,
    users.c.status_until,
    users.c.acked_seq,
)


def user_row(row: Any) -> UserRow:
    try:
        status = Status(row.status)
    except ValueError:
        status = Status.ONLINE
    return UserRow(
        id=row.id,
        kind=row.kind,
        login=row.login,
        name=row.name,
        avatar_url=row.avatar_url,
        last_seen=row.last_seen,
        status=status,
        status_until=row.status_until,
        acked_seq=row.acked_seq,
    )


def _message_row(row: Any) -> MessageRow:
    return MessageRow(
        id=row.id,
        sender_id=row.sender_id,
        recipient_id=row.recipient_id,
        client_msg_id=row.client_msg_id,
        text=row.text,
        sent_at=row.sent_at,
        seq=row.seq,
    )


async def fetch_user(conn: AsyncConnection, user_id: int) -> UserRow | None:
    row = (await conn.execute(sa.select(*USER_COLUMNS).where(users.c.id == user_id))).first()
    return user_row(row) if row else None


def _read_only(busy_timeout_ms: int) -> Callable[[Any, Any], None]:
    def pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
            cursor.execute("PRAGMA query_only=ON")
        finally:
            cursor.close()

    return pragmas


SQLITE_BUSY, SQLITE_LOCKED = 5, 6


def _is_busy(exc: sa.exc.OperationalError) -> bool:
    """SQLite answered "database is locked" (it would have had to wait)."""
    code = getattr(exc.orig, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (SQLITE_BUSY, SQLITE_LOCKED)


class _SqliteReader:
    """Two read-only synchronous connections to the store's SQLite file.

    ``now`` runs a read on the event loop itself, on a connection that never
    waits for a lock (``busy_timeout=0``): a login's reads are a few indexed
    lookups bounded by the protocol's limits, which SQLite answers from its
    page cache in well under a millisecond of CPU, less than handing them to a
    thread and back costs (measured: about 0.3 ms of CPU per hop, GIL hand-overs
    included). A read that would have to wait (SQLite says busy: in WAL mode
    only while another process holds the file exclusively, e.g. in recovery)
    goes to ``call`` instead, on a thread of its own with the writer's
    5 s busy timeout, so the loop never waits for a lock.
    """

    def __init__(self, url: sa.URL) -> None:
        url = url.set(drivername="sqlite+pysqlite")
        self.inline = sa.create_engine(url, pool_size=1)
        sa.event.listen(self.inline, "connect", _read_only(0))
        self.engine = sa.create_engine(url, pool_size=1)
        sa.event.listen(self.engine, "connect", _read_only(5000))
        self.thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="sqlite-reader")
        self.waited = 0
        """Reads that found the file busy and went to the thread (for tests and logs)."""

    def now(self, fn: Callable[[sa.Connection], T]) -> T:
        """On the event loop: one read transaction, rolled back at the end; raises
        ``OperationalError`` at once if SQLite is busy."""
        with self.inline.connect() as conn:
            return fn(conn)

    def call(self, fn: Callable[[sa.Connection], T]) -> T:
        """On the reader thread: one read transaction, waiting up to 5 s for a lock."""
        with self.engine.connect() as conn:
            return fn(conn)

    def close(self) -> None:
        """On the reader thread: closes its connection where it was used."""
        self.engine.dispose()


def _reader_for(engine: AsyncEngine) -> _SqliteReader | None:
    url = engine.url
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database or ""
    if not database or database == ":memory:" or "mode=memory" in str(url):
        return None
    return _SqliteReader(url)


class StoreClosed(RuntimeError):
    """The store was closed (the server stopped); nothing more is read or written."""


def durable(
    method: Callable[Concatenate[Store, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[Store, P], Coroutine[Any, Any, T]]:
    """Mark a store method as a write that finishes even if its caller is cancelled."""

    async def run(self: Store, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self.finish(method(self, *args, **kwargs))

    run.__name__ = method.__name__
    run.__qualname__ = method.__qualname__
    run.__doc__ = method.__doc__
    return run


class Store:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._lock: asyncio.Lock | None = asyncio.Lock() if self.dialect == "sqlite" else None
        self._running: set[asyncio.Future[Any]] = set()
        self._closed = False
        self._reader = _reader_for(engine)

    # ------------------------------------------------------------ tasks

    def _track(self, work: Awaitable[T]) -> asyncio.Future[T]:
        task = asyncio.ensure_future(work)
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return task

    async def finish(self, work: Awaitable[T]) -> T:
        """Run ``work`` to its end as its own task, whatever happens to the caller.

        The caller still gets the result or the exception when it is there to
        receive it; a cancelled caller gets ``CancelledError`` at once while the
        write goes on, and ``close()`` waits for it.
        """
        task = self._track(work)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(_report_orphan)
            raise

    async def _connect(self) -> AsyncConnection:
        """A pooled connection; if the caller is cancelled meanwhile, it goes back."""
        if self._closed:
            raise StoreClosed("the store is closed")
        task = self._track(self.engine.connect().start())
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(self._close_unclaimed)
            raise

    def _close_unclaimed(self, task: asyncio.Future[AsyncConnection]) -> None:
        if not task.cancelled() and task.exception() is None:
            self._track(task.result().close())

    async def _release(self, conn: AsyncConnection) -> None:
        """Close (rolling back what was not committed) even if cancelled meanwhile."""
        await asyncio.shield(self._track(conn.close()))

    # ------------------------------------------------------------ transactions

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction; an exception inside rolls everything back.

        The commit and the return of the connection are shielded; the body is
        not (use ``finish``/``durable`` for a write that must not be cut short).
        """
        async with self._lock or contextlib.nullcontext():
            conn = await self._connect()
            try:
                await conn.begin()
                yield conn
                await asyncio.shield(self._track(conn.commit()))
            finally:
                await self._release(conn)

    async def ping(self) -> None:
        """Raise unless the database answers (for /readyz)."""
        async with self.read() as conn:
            await conn.execute(sa.text("SELECT 1"))

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        conn = await self._connect()
        try:
            yield conn
        finally:
            await self._release(conn)

    async def run_read(self, fn: Callable[[sa.Connection], T]) -> T:
        """Run ``fn`` (synchronous, reads only, bounded) on one connection, in one go.

        The point is the number of thread hops (see the module docstring):
        on a SQLite file ``fn`` runs on the loop, or whole on the reader thread
        if the file is busy; otherwise on one pooled async connection.
        ``close()`` waits for reads in flight, as for writes. ``fn`` may run
        twice (busy on the loop, then on the thread), so it must only read.
        """
        if self._closed:
            raise StoreClosed("the store is closed")
        reader = self._reader
        if reader is None:
            async with self.read() as conn:
                return await conn.run_sync(fn)
        try:
            return reader.now(fn)
        except sa.exc.OperationalError as exc:
            if not _is_busy(exc):
                raise
        reader.waited += 1
        log.warning(
            "the SQLite file was busy; a read waits on the reader thread",
            extra={"event": "sqlite_busy_read"},
        )
        work = asyncio.get_running_loop().run_in_executor(reader.thread, reader.call, fn)
        return await asyncio.shield(self._track(work))

    async def drain(self) -> None:
        """Wait until every write in flight has finished (and its connection is back)."""
        while self._running:
            await asyncio.wait(list(self._running))

    async def close(self) -> None:
        """Finish the writes in flight, then release every pooled connection."""
        await self.drain()
        self._closed = True
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.inline.dispose()
            await asyncio.get_running_loop().run_in_executor(reader.thread, reader.close)
            reader.thread.shutdown(wait=False)
        await self.engine.dispose()

    # ------------------------------------------------------------ users

    @durable
    async def upsert_identity(self, identity: Identity, now: int) -> UserRow:
        """The user row for a login; created on first sign-in, labels refreshed after."""
        async with self.write() as conn:
            if identity.kind is IdentityKind.DEV:
                await advisory_lock(conn, DEV_ID_LOCK)
                user_id = await self._dev_user_id(conn, identity.login, now)
            else:
                assert identity.id is not None
                user_id = identity.id
                await advisory_lock(conn, user_id)
                values = {
                    "login": identity.login,
                    "login_lower": identity.login.lower(),
                    "name": identity.name,
                    "avatar_url": identity.avatar_url,
                    "updated_at": now,
                }
                done = await conn.execute(
                    sa.update(users).where(users.c.id == user_id).values(**values)
                )
                if done.rowcount == 0:
                    await conn.execute(
                        sa.insert(users).values(
                            id=user_id, kind=identity.kind.value, created_at=now, **values
                        )
                    )
            row = await fetch_user(conn, user_id)
            assert row is not None
            return row

    async def _dev_user_id(self, conn: AsyncConnection, login: str, now: int) -> int:
        """The same dev login always maps to the same id on this database."""
        found = (
            await conn.execute(
                sa.select(users.c.id).where(
                    users.c.kind == IdentityKind.DEV.value,
                    users.c.login_lower == login.lower(),
                )
            )
        ).scalar()
        if found is not None:
            return int(found)
        user_id = await _next_id(conn, DEV_USER_COUNTER, floor=DEV_ID_BASE)
        await conn.execute(
            sa.insert(users).values(
                id=user_id,
                kind=IdentityKind.DEV.value,
                login=login,
                login_lower=login.lower(),
                created_at=now,
                updated_at=now,
            )
        )
        return user_id

    async def github_users(self, ids: Sequence[int], limit: int = 50) -> list[UserRow]:
        """Users of this server among ``ids`` (GitHub ids someone follows)."""
        if not ids:
            return []
        async with self.read() as conn:
            rows = await conn.execute(
                sa.select(*USER_COLUMNS)
                .where(
                    users.c.kind == IdentityKind.GITHUB.value,
                    users.c.id.in_(list(ids)[:1000]),
                )
                .order_by(users.c.login_lower)
                .limit(limit)
            )
            return [user_row(r) for r in rows]

    @durable
    async def set_status(self, user_id: int, status: Status, until: int | None) -> None:
        """Remember the status last chosen, so a newly connected device starts with it."""
        async with self.write() as conn:
            await conn.execute(
                sa.update(users)
                .where(users.c.id == user_id)
                .values(status=status.value, status_until=until)
            )

    @durable
    async def expire_status(self, user_id: int, until: int) -> None:
        """Revert a timed status to online, unless a newer choice replaced it."""
        async with self.write() as conn:
            await conn.execute(
                sa.update(users)
                .where(users.c.id == user_id, users.c.status_until == until)
                .values(status=Status.ONLINE.value, status_until=None)
            )

    @durable
    async def set_last_seen(self, user_ids: Iterable[int], when: int) -> None:
        ids = sorted(user_ids)  # the same row order in every instance: no deadlock
        async with self.write() as conn:
            for start in range(0, len(ids), 500):  # stay far below bound-parameter limits
                chunk = ids[start : start + 500]
                await conn.execute(
                    sa.update(users).where(users.c.id.in_(chunk)).values(last_seen=when)
                )

    @durable
    async def take_friend_request_slot(
        self, user_id: int, limit: int, window_ms: int, now_ms: int
    ) -> int | None:
        """Count one friend request against the rolling window; None if allowed.

        When the window is full nothing is recorded and the milliseconds until
        the oldest counted request leaves it are returned.
        """
        times = friend_request_times
        async with self.write() as conn:
            await advisory_lock(conn, user_id)
            await conn.execute(
                sa.delete(times).where(
                    times.c.user_id == user_id, times.c.at_ms <= now_ms - window_ms
                )
            )
            count, oldest = (
                await conn.execute(
                    sa.select(sa.func.count(), sa.func.min(times.c.at_ms)).where(
                        times.c.user_id == user_id
                    )
                )
            ).one()
            if count >= limit:
                return max(int(oldest) + window_ms - now_ms, 1)
            await conn.execute(sa.insert(times).values(user_id=user_id, at_ms=now_ms))
            return None

    # ------------------------------------------------------------ sessions

    @durable
    async def create_session(self, user_id: int, device: str, now: int) -> tuple[str, str]:
        """A new session for a device: returns (session id, token). Only the hash is kept."""
        token = auth.new_session_token()
        session_id = auth.new_session_id()
        async with self.write() as conn:
            await conn.execute(
                sa.insert(sessions).values(
                    id=session_id,
                    user_id=user_id,
                    token_hash=auth.hash_token(token),
                    device=device,
                    created_at=now,
                    last_used_at=now,
                )
            )
        return session_id, token

    @durable
    async def resume_session(
        self, token: str, now: int, idle_since: int = 0
    ) -> tuple[str, UserRow] | None:
        """The session and user behind a token, or None if unknown, revoked or
        unused since before ``idle_since`` (expired, even if not purged yet).

        Use is recorded at most once per ``SESSION_USE_GRANULARITY``: a reconnect
        storm is then thousands of reads, not thousands of serialized writes.
        """
        token_hash = auth.hash_token(token)
        found = await self.run_read(lambda c: _session_user(c, token_hash, idle_since))
        if found is None:
            return None
        row, user = found
        granularity = min(SESSION_USE_GRANULARITY, max((now - idle_since) // 10, 0))
        if row.last_used_at < now - granularity:
            async with self.write() as conn:
                await conn.execute(
                    sa.update(sessions).where(sessions.c.id == row.id).values(last_used_at=now)
                )
        return row.id, user

    async def list_sessions_page(
        self, user_id: int, after: tuple[int, str] | None, limit: int
    ) -> list[SessionRow]:
        """Up to ``limit`` live sessions of a user after the key ``after``
        (``(created_at, id)`` of the last one already listed), oldest first.

        The key is the listing's order, so a page continues exactly where the
        previous one stopped even when sessions are created or revoked between
        pages: each query reads a bounded slice, whatever the user's total.
        """
        query = (
            sa.select(
                sessions.c.id,
                sessions.c.user_id,
                sessions.c.device,
                sessions.c.created_at,
                sessions.c.last_used_at,
            )
            .where(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None))
            .order_by(sessions.c.created_at, sessions.c.id)
            .limit(limit)
        )
        if after is not None:
            created_at, session_id = after
            query = query.where(
                sa.or_(
                    sessions.c.created_at > created_at,
                    sa.and_(sessions.c.created_at == created_at, sessions.c.id > session_id),
                )
            )
        async with self.read() as conn:
            rows = await conn.execute(query)
            return [
                SessionRow(r.id, r.user_id, r.device, r.created_at, r.last_used_at) for r in rows
            ]

    @durable
    async def revoke_sessions(
        self, user_id: int, session_ids: Sequence[str] | None, now: int
    ) -> list[str]:
        """Revoke some (or, with None, all) live sessions of a user; returns those revoked."""
        async with self.write() as conn:
            where = [sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None)]
            if session_ids is not None:
                where.append(sessions.c.id.in_(list(session_ids)))
            ids = [r.id for r in await conn.execute(sa.select(sessions.c.id).where(*where))]
            if ids:
                await conn.execute(
                    sa.update(sessions).where(sessions.c.id.in_(ids)).values(revoked_at=now)
                )
            return ids

    # ------------------------------------------------------------ friends (reads)

    async def friend_ids(self, user_id: int) -> list[int]:
        return await self.run_read(lambda c: friend_ids(c, user_id))

    async def friends_of(self, user_ids: Iterable[int]) -> dict[int, list[int]]:
        """Friends of many users, ``FRIENDS_OF_CHUNK`` users per read.

        A stop reads the friends of every user it held (15,000 at a time in
        ``benchmarks.reconnect_storm``): each chunk is one prepared read through
        ``run_read`` (the login reads' path, no SQLAlchemy row per friendship),
        and the loop gets a turn between chunks.
        """
        ids = sorted(set(user_ids))
        result: dict[int, list[int]] = {}
        for start in range(0, len(ids), FRIENDS_OF_CHUNK):
            chunk = ids[start : start + FRIENDS_OF_CHUNK]
            # A short last chunk repeats its first id: one prepared statement fits all.
            params = {
                f"u{i}": chunk[i] if i < len(chunk) else chunk[0] for i in range(FRIENDS_OF_CHUNK)
            }
            rows = await self.run_read(
                functools.partial(fetch_all, query=_FRIENDS_OF, params=params)
            )
            for user_id, friend_id in rows:
                result.setdefault(user_id, []).append(friend_id)
            await asyncio.sleep(0)
        return result

    # ------------------------------------------------------------ messages

    @durable
    async def store_message(
        self, sender: int, recipient: int, client_msg_id: str, text: str, now: int
    ) -> tuple[MessageRow, bool]:
        """Store a message for a friend; returns (row, stored now).

        A repeated ``client_msg_id`` from the same sender to the same recipient
        returns the original message and ``False``: a resend never creates a
        second message, even if the friendship has ended since. To another
        recipient it is refused (``invalid_message``).
        """
        async with self.write() as conn:
            await advisory_lock(conn, sender)
            existing = (
                await conn.execute(
                    sa.select(messages).where(
                        messages.c.sender_id == sender,
                        messages.c.client_msg_id == client_msg_id,
                    )
                )
            ).first()
            if existing is not None:
                if existing.recipient_id != recipient:
                    # Answering with the first message's message_sent would tell
                    # the sender this one was delivered while nobody gets it.
                    raise CommandError(
                        "invalid_message",
                        "send_message: this client_msg_id was already used for a message "
                        "to someone else; give every message its own",
                    )
                return _message_row(existing), False
            if not await _are_friends(conn, sender, recipient):
                raise CommandError("not_friends", "you can only message friends")
            seq = (
                await conn.execute(
                    sa.update(users)
                    .where(users.c.id == recipient)
                    .values(next_seq=users.c.next_seq + 1)
                    .returning(users.c.next_seq)
                )
            ).scalar_one()
            result = await conn.execute(
                sa.insert(messages)
                .values(
                    sender_id=sender,
                    recipient_id=recipient,
                    client_msg_id=client_msg_id,
                    text=text,
                    sent_at=now,
                    seq=seq,
                )
                .returning(messages.c.id)
            )
            message_id = result.scalar_one()
            row = MessageRow(message_id, sender, recipient, client_msg_id, text, now, seq)
            return row, True

    async def unacked(self, user_id: int, after_seq: int, limit: int) -> list[MessageRow]:
        return await self.run_read(lambda c: _unacked(c, user_id, after_seq, limit))

    @durable
    async def ack(self, user_id: int, seq: int) -> int:
        """Move the acknowledged mark forward (never back, never past the last seq)."""
        async with self.write() as conn:
            await advisory_lock(conn, user_id)
            row = (
                await conn.execute(
                    sa.select(users.c.next_seq, users.c.acked_seq).where(users.c.id == user_id)
                )
            ).one()
            target = min(seq, row.next_seq)
            if target > row.acked_seq:
                await conn.execute(
                    sa.update(users).where(users.c.id == user_id).values(acked_seq=target)
                )
                return int(target)
            return int(row.acked_seq)


async def _next_id(conn: AsyncConnection, name: str, floor: int) -> int:
    """The next id of a kind, never one handed out before (even if its row is gone).

    The caller holds the lock that serializes this kind (``DEV_ID_LOCK``);
    the UPDATE also locks the counter row on PostgreSQL. A missing row
    (a database created before the counter existed is migrated, so only a
    hand-made one) starts above every existing id.
    """
    bumped = (
        await conn.execute(
            sa.update(id_counters)
            .where(id_counters.c.name == name)
            .values(value=id_counters.c.value + 1)
            .returning(id_counters.c.value)
        )
    ).scalar()
    if bumped is not None:
        return int(bumped)
    highest = (
        await conn.execute(sa.select(sa.func.max(users.c.id)).where(users.c.id > floor))
    ).scalar()
    value = int(highest or floor) + 1
    await conn.execute(sa.insert(id_counters).values(name=name, value=value))
    return value


# ---------------------------------------------------------------- reads (run_read)


@dataclasses.dataclass(frozen=True, slots=True)
class Query:
    """A hot read, built once, with its SQLite text compiled once too.

    Building a statement and its cache key cost SQLAlchemy several times what
    SQLite needs to answer it; on SQLite even executing a cached statement
    does (an execution context, a result object, row processors for columns
    that need none). So ``fetch_all`` hands the precompiled text straight to
    the sqlite3 connection; on PostgreSQL it executes the statement as usual.
    Rows are read by position.
    """

    statement: sa.Executable
    sqlite_sql: str
    sqlite_params: tuple[str, ...]
    sqlite_defaults: dict[str, Any]
    """Values of the parameters SQLAlchemy adds itself (e.g. the OFFSET after a LIMIT)."""


def prepare(statement: sa.Select[Any] | sa.CompoundSelect[Any]) -> Query:
    compiled = statement.compile(dialect=sqlite_dialect.dialect(paramstyle="qmark"))
    names = tuple(compiled.positiontup or ())
    return Query(statement, str(compiled), names, dict(compiled.params))


def fetch_all(conn: sa.Connection, query: Query, params: dict[str, Any]) -> list[Sequence[Any]]:
    """The rows of a prepared read (see ``Query``)."""
    if conn.dialect.name == "sqlite":
        raw: Any = conn.connection.driver_connection
        args = [
            params[name] if name in params else query.sqlite_defaults[name]
            for name in query.sqlite_params
        ]
        rows: list[Sequence[Any]] = raw.execute(query.sqlite_sql, args).fetchall()
        return rows
    return list(conn.execute(query.statement, params))


_SESSION_USER = prepare(
    sa.select(sessions.c.id, sessions.c.last_used_at, *USER_COLUMNS)
    .join(users, users.c.id == sessions.c.user_id)
    .where(
        sessions.c.token_hash == sa.bindparam("token_hash"),
        sessions.c.revoked_at.is_(None),
        sessions.c.last_used_at >= sa.bindparam("idle_since"),
    )
)
FRIENDS_OF_CHUNK = 500
"""Users per read in ``Store.friends_of`` (far below bound-parameter limits)."""
_FRIENDS_OF = prepare(
    sa.select(friendships.c.user_id, friendships.c.friend_id).where(
        friendships.c.user_id.in_([sa.bindparam(f"u{i}") for i in range(FRIENDS_OF_CHUNK)])
    )
)
_USER = prepare(sa.select(*USER_COLUMNS).where(users.c.id == sa.bindparam("user_id")))
_FRIEND_IDS = prepare(
    sa.select(friendships.c.friend_id).where(friendships.c.user_id == sa.bindparam("user_id"))
)
_UNACKED = prepare(
    sa.select(
        messages.c.id,
        messages.c.sender_id,
        messages.c.recipient_id,
        messages.c.client_msg_id,
        messages.c.text,
        messages.c.sent_at,
        messages.c.seq,
    )
    .where(
        messages.c.recipient_id == sa.bindparam("user_id"),
        messages.c.seq > sa.bindparam("after_seq"),
        messages.c.expired_at.is_(None),
    )
    .order_by(messages.c.seq)
    .limit(sa.bindparam("limit", type_=sa.Integer))
)


def user_row_at(row: Sequence[Any], at: int) -> UserRow:
    """A ``UserRow`` from ``USER_COLUMNS`` starting at position ``at`` of a row
    (by position: a login reads dozens of them)."""
    uid, kind, login, name, avatar_url, last_seen, status, until, acked = row[at : at + 9]
    try:
        chosen = Status(status)
    except ValueError:
        chosen = Status.ONLINE
    return UserRow(uid, kind, login, name, avatar_url, last_seen, chosen, until, acked)


@dataclasses.dataclass(frozen=True, slots=True)
class _SessionHit:
    id: str
    last_used_at: int


def _session_user(
    conn: sa.Connection, token_hash: str, idle_since: int
) -> tuple[_SessionHit, UserRow] | None:
    """A live session by token hash and its user, in one statement."""
    rows = fetch_all(conn, _SESSION_USER, {"token_hash": token_hash, "idle_since": idle_since})
    if not rows:
        return None
    row = rows[0]
    return _SessionHit(row[0], row[1]), user_row_at(row, 2)


def read_user(conn: sa.Connection, user_id: int) -> UserRow | None:
    """``fetch_user`` on a synchronous connection (for ``Store.run_read``)."""
    rows = fetch_all(conn, _USER, {"user_id": user_id})
    return user_row_at(rows[0], 0) if rows else None


def friend_ids(conn: sa.Connection, user_id: int) -> list[int]:
    return [row[0] for row in fetch_all(conn, _FRIEND_IDS, {"user_id": user_id})]


def _unacked(conn: sa.Connection, user_id: int, after_seq: int, limit: int) -> list[MessageRow]:
    rows = fetch_all(conn, _UNACKED, {"user_id": user_id, "after_seq": after_seq, "limit": limit})
    return [MessageRow(*row) for row in rows]


def _report_orphan(task: asyncio.Future[Any]) -> None:
    """A write whose caller had gone failed: nobody else will hear of it."""
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None and not isinstance(exc, CommandError):
        log.error("a write failed after its caller had gone", exc_info=exc)


async def _are_friends(conn: AsyncConnection, a: int, b: int) -> bool:
    found = (
        await conn.execute(
            sa.select(friendships.c.user_id).where(
                friendships.c.user_id == a, friendships.c.friend_id == b
            )
        )
    ).first()
    return found is not None
