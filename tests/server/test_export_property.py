"""Export paging as a property: random frame limits, the data changing between pages.

Over random sequences of "ask for the next page" mixed with relations
appearing and disappearing meanwhile (a request arrives, a request is
withdrawn, a block is lifted), for a random announced frame limit:

* no page exceeds the limit (from 4 000 bytes: the widest message takes 3 KB);
* no entry comes twice, in any list;
* every entry that existed before the export began and still exists after
  it is in the export (keyset cursors: a change elsewhere in a list neither
  shifts nor hides it);
* every message comes exactly once, oldest first.

It calls the domain function the ``export_account`` command calls, on a
real SQLite file, without a socket.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from presence_protocol import AccountExport, encode
from presence_protocol.paging import ACCOUNT_LISTS, join_export
from presence_server.domain.account import export_page, parse_cursor
from presence_server.storage.database import create_engine, migrate
from presence_server.storage.schema import blocks, friend_requests, friendships, messages, users
from presence_server.storage.store import Store
from tests.support.servers import sqlite_url

pytestmark = pytest.mark.slow  # a property over a database: many examples, seconds

ME = 1
NOW = 1_700_000_000
RELATED = {"friends": range(100, 130), "incoming": range(200, 320), "blocked": range(400, 440)}
NEWCOMERS = range(900, 960)
"""Users who send a request while the export runs."""
MESSAGES = 90


def _user(uid: int) -> dict[str, object]:
    # Every seventh record is wide, so entries differ in size by two orders.
    name = "語" * 255 if uid % 7 == 0 else f"User {uid}"
    return {
        "id": uid, "kind": "dev", "login": f"u{uid}", "login_lower": f"u{uid}", "name": name,
        "created_at": NOW, "updated_at": NOW,
    }  # fmt: skip


async def _seed(path: Path) -> None:
    engine = create_engine(sqlite_url(path))
    try:
        await migrate(engine)
        async with engine.begin() as conn:
            everyone = [ME, *(u for r in RELATED.values() for u in r), *NEWCOMERS]
            await conn.execute(sa.insert(users), [_user(uid) for uid in everyone])
            await conn.execute(
                sa.insert(friendships),
                [{"user_id": ME, "friend_id": f, "since": NOW} for f in RELATED["friends"]]
                + [{"user_id": f, "friend_id": ME, "since": NOW} for f in RELATED["friends"]],
            )
            await conn.execute(
                sa.insert(friend_requests),
                [{"from_id": u, "to_id": ME, "created_at": NOW} for u in RELATED["incoming"]],
            )
            await conn.execute(
                sa.insert(blocks),
                [
                    {"blocker_id": ME, "blocked_id": u, "created_at": NOW}
                    for u in RELATED["blocked"]
                ],
            )
            await conn.execute(
                sa.insert(messages),
                [
                    {"sender_id": 100 + n % 30, "recipient_id": ME, "client_msg_id": f"c{n}",
                     "text": "\x01" * (n * 37 % 500 + 1), "sent_at": NOW + n, "seq": n}
                    for n in range(1, MESSAGES + 1)
                ],
            )  # fmt: skip
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("export") / "seeded.sqlite3"
    asyncio.run(_seed(path))
    return path


Change = tuple[str, int]
changes = st.lists(
    st.one_of(
        st.tuples(st.just("request"), st.sampled_from(list(NEWCOMERS))),
        st.tuples(st.just("withdraw"), st.sampled_from(list(RELATED["incoming"]))),
        st.tuples(st.just("unblock"), st.sampled_from(list(RELATED["blocked"]))),
        st.tuples(st.just("page"), st.just(0)),
    ),
    max_size=60,
)


async def _apply(store: Store, change: Change) -> None:
    kind, uid = change
    async with store.write() as conn:
        if kind == "request":
            exists = await conn.scalar(
                sa.select(sa.func.count())
                .select_from(friend_requests)
                .where(friend_requests.c.from_id == uid)
            )
            if not exists:
                await conn.execute(
                    sa.insert(friend_requests).values(from_id=uid, to_id=ME, created_at=NOW)
                )
        elif kind == "withdraw":
            await conn.execute(sa.delete(friend_requests).where(friend_requests.c.from_id == uid))
        elif kind == "unblock":
            await conn.execute(sa.delete(blocks).where(blocks.c.blocked_id == uid))


async def _export(
    path: Path, limit: int, plan: list[Change]
) -> tuple[list[AccountExport], set[Change]]:
    engine = create_engine(sqlite_url(path))
    store = Store(engine)
    pages: list[AccountExport] = []
    applied: set[Change] = set()
    try:
        after: str | None = None
        steps = iter(plan)
        while True:
            for change in steps:  # the changes before the next page
                if change[0] == "page":
                    break
                await _apply(store, change)
                applied.add(change)
            page = await export_page(
                store, ME, None, parse_cursor(after), request_id=len(pages), max_bytes=limit
            )
            assert len(encode(page)) <= limit
            pages.append(page)
            if page.next is None:
                return pages, applied
            after = page.next
    finally:
        await engine.dispose()


@settings(
    deadline=None,  # no speed bound: the machine is shared
    max_examples=40,
    # The seed is only read; too_slow is a wall-clock bound (the suite's profile
    # suppresses it, and a list given here replaces the profile's).
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(limit=st.integers(min_value=4_000, max_value=40_000), plan=changes)
def test_pages_fit_and_nothing_that_stayed_is_lost_or_repeated(
    seeded: Path, tmp_path: Path, limit: int, plan: list[Change]
) -> None:
    path = tmp_path / f"copy-{limit}.sqlite3"
    shutil.copy(seeded, path)
    try:
        pages, applied = asyncio.run(_export(path, limit, plan))
    finally:
        path.unlink()
    account, exported = join_export(pages)
    assert account is not None
    for name in ACCOUNT_LISTS:
        ids = [e.user.id if name != "sessions" else e.id for e in getattr(account, name)]
        assert len(ids) == len(set(ids)), f"{name}: an entry came twice"
    withdrawn = {uid for kind, uid in applied if kind == "withdraw"}
    unblocked = {uid for kind, uid in applied if kind == "unblock"}
    incoming = {r.user.id for r in account.incoming}
    assert set(RELATED["incoming"]) - withdrawn <= incoming
    assert incoming <= set(RELATED["incoming"]) | set(NEWCOMERS)
    assert {r.user.id for r in account.blocked} >= set(RELATED["blocked"]) - unblocked
    assert [r.user.id for r in account.friends] == list(RELATED["friends"])
    assert [m.seq for m in exported] == list(range(1, MESSAGES + 1))
    assert [int(p.id) for p in pages if isinstance(p.id, int)] == list(range(len(pages)))
