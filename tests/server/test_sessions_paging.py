"""``list_sessions`` answers every user, however many sessions they have.

Issue 14's leftover: a ``sessions`` reply held every live session in one
frame, about 490 bytes each at worst, so a user with ~2,200 live sessions got
``internal_error`` instead of the list. The reply is now cut to fit
``max_server_frame_bytes`` and continued with ``next`` / ``after``
(docs/protocol.md §4 Sessions, §8). Runs on SQLite and PostgreSQL (conftest).
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import create_async_engine

from presence_protocol import (
    Error,
    ErrorCode,
    ListSessions,
    Ok,
    RevokeSession,
    SessionInfo,
    Sessions,
    limits,
)
from presence_server import ServerLimits
from presence_server.session.handlers import parse_sessions_cursor, sessions_cursor
from presence_server.storage.database import normalize_url
from presence_server.storage.schema import sessions
from tests.support.servers import Database, StartServer, running_servers, sqlite_url

from .client import Client, login_dev

LIMIT = limits.MAX_SERVER_FRAME_BYTES
WORST_DEVICE = "\x01" * limits.MAX_DEVICE_CHARS
"""A device name a client may send whose every code point JSON-escapes to six bytes."""
_examples = itertools.count()
SEEDED = 2_500
"""Enough worst-case sessions that one frame cannot hold them (≈ 1.2 MB)."""


async def seed_sessions(database: Database, user_id: int, count: int, *, start: int = 0) -> None:
    """``count`` live sessions of ``user_id``, as that many sign-ins would leave them
    (written directly: thousands of logins would take minutes, not the point)."""
    if count == 0:
        return
    now = 1_700_000_000
    engine = create_async_engine(normalize_url(database.url))
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.insert(sessions),
                [
                    {
                        "id": f"{n:016x}",
                        "user_id": user_id,
                        "token_hash": f"{n:064x}",
                        "device": WORST_DEVICE,
                        # Many share a creation second: the key must break ties.
                        "created_at": now + n // 7,
                        "last_used_at": 2**40,
                    }
                    for n in range(start, start + count)
                ],
            )
    finally:
        await engine.dispose()


async def list_all(client: Client) -> list[Sessions]:
    """Every page of my sessions, following ``next`` as a client should."""
    pages: list[Sessions] = []
    after: str | None = None
    while True:
        page = await client.request(ListSessions(after=after))
        assert isinstance(page, Sessions), page
        pages.append(page)
        if page.next is None:
            return pages
        assert page.sessions, "a page that continues must make progress"
        after = page.next


def sent_sizes(client: Client, since: int) -> list[int]:
    return [
        len(frame.encode() if isinstance(frame, str) else frame) for frame in client.raw[since:]
    ]


async def test_thousands_of_live_sessions_are_all_listed_within_the_frame_limit(
    start: StartServer, database: Database
) -> None:
    server = await start(limits=ServerLimits(commands_per_minute=100_000))
    alice = await login_dev(server.url, "alice", max_size=LIMIT)  # sized as §1 says
    await seed_sessions(database, alice.me, SEEDED)
    seen = len(alice.raw)
    pages = await list_all(alice)
    listed = [s for page in pages for s in page.sessions]
    assert len(pages) > 1  # it could not have been one frame
    assert len(listed) == SEEDED + 1 and len({s.id for s in listed}) == SEEDED + 1
    assert [s.device for s in listed].count(WORST_DEVICE) == SEEDED
    assert [(s.created_at, s.id) for s in listed] == sorted((s.created_at, s.id) for s in listed)
    assert [s.current for s in listed].count(True) == 1
    sizes = sent_sizes(alice, seen)
    assert max(sizes) <= LIMIT
    assert sum(sizes) > LIMIT
    assert alice.ws.close_code is None
    await alice.close()


async def test_the_smallest_announced_limit_pages_the_same_list(
    start: StartServer, database: Database
) -> None:
    limit = limits.MIN_SERVER_FRAME_BYTES
    server = await start(
        limits=ServerLimits(commands_per_minute=100_000, max_server_frame_bytes=limit)
    )
    for n in range(3):  # three devices signed in once, as a client would
        await (await login_dev(server.url, "alice", device=f"{n:02}" + "d" * 62)).close()
    alice = await login_dev(server.url, "alice")
    await seed_sessions(database, alice.me, 90)  # about 44 KB of the widest entries
    seen = len(alice.raw)
    pages = await list_all(alice)
    devices = [s.device for page in pages for s in page.sessions]
    signed_in = [f"{n:02}" + "d" * 62 for n in range(3)] + ["test"]
    assert sorted(d for d in devices if d != WORST_DEVICE) == signed_in
    assert devices.count(WORST_DEVICE) == 90
    assert len(pages) > 2
    assert max(sent_sizes(alice, seen)) <= limit
    await alice.close()


@pytest.mark.parametrize(
    "bad", ["", "17", "x.1", "1.", ".abc", "-1.abc", "1" * 20 + ".a", "1." + "a" * 33]
)
async def test_an_after_that_was_never_a_next_is_invalid_message_and_changes_nothing(
    start: StartServer, bad: str
) -> None:
    server = await start()
    alice = await login_dev(server.url, "alice")
    reply = await alice.request(ListSessions(after=bad))
    assert isinstance(reply, Error) and reply.code == ErrorCode.INVALID_MESSAGE
    assert "next" in reply.message
    whole = await alice.request(ListSessions())
    assert isinstance(whole, Sessions) and len(whole.sessions) == 1 and whole.next is None
    assert alice.ws.close_code is None
    await alice.close()


@given(created_at=st.integers(0, 2**62), session_id=st.text(min_size=1, max_size=32))
def test_every_next_the_server_makes_reads_back_as_its_key(
    created_at: int, session_id: str
) -> None:
    cursor = sessions_cursor(created_at, session_id)
    assert len(cursor) <= 64  # fits list_sessions.after
    assert parse_sessions_cursor(cursor) == (created_at, session_id)


revocations = st.lists(st.integers(0, 149), max_size=30)


@pytest.mark.slow  # a property over real servers: forty examples, seconds
@settings(
    max_examples=40,
    deadline=None,
    # too_slow is a wall-clock bound: the suite's profile suppresses it, and a
    # list given here replaces the profile's.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    count=st.integers(0, 150),
    limit=st.integers(limits.MIN_SERVER_FRAME_BYTES, 3 * limits.MIN_SERVER_FRAME_BYTES),
    plan=revocations,
)
def test_paging_while_sessions_are_revoked_misses_no_session_that_stayed(
    tmp_path: Path, count: int, limit: int, plan: list[int]
) -> None:
    """Rule: revoking sessions between pages (listed already or still to come)
    never makes a session that stayed live go missing or come twice, the pages
    stay in order, and no frame exceeds the announced limit."""
    database = Database("sqlite", sqlite_url(tmp_path / f"{next(_examples)}.db"))

    async def run() -> None:
        async with running_servers(database.url) as start:
            shrunk = ServerLimits(commands_per_minute=100_000, max_server_frame_bytes=limit)
            server = await start(limits=shrunk)
            alice = await login_dev(server.url, "alice", max_size=limit)
            await seed_sessions(database, alice.me, count)
            seen = len(alice.raw)
            listed: list[SessionInfo] = []
            revoked: set[str] = set()
            todo = iter(plan)
            after: str | None = None
            while True:
                page = await alice.request(ListSessions(after=after))
                assert isinstance(page, Sessions), page
                listed.extend(page.sessions)
                if page.next is None:
                    break
                assert page.sessions, "a page that continues must make progress"
                after = page.next
                victim = next(todo, None)
                if victim is not None and victim < count and f"{victim:016x}" not in revoked:
                    reply = await alice.request(RevokeSession(session_id=f"{victim:016x}"))
                    assert isinstance(reply, Ok), reply
                    revoked.add(f"{victim:016x}")
            ids = [s.id for s in listed]
            assert len(ids) == len(set(ids))
            keys = [(s.created_at, s.id) for s in listed]
            assert keys == sorted(keys)
            stayed = {f"{n:016x}" for n in range(count)} - revoked
            assert stayed <= set(ids)
            assert set(ids) - stayed - revoked == {s.id for s in listed if s.current}
            assert max(sent_sizes(alice, seen)) <= limit
            await alice.close()

    asyncio.run(run())
