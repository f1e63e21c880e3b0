"""``Store.friends_of``: the friends of many users at once (a stop reads every
user's it held, a sweep those of the users it swept).

Random friendship graphs and random sets of users, more than one read's chunk
of them: the answer is exactly each user's friendships in the table, users
without friends are left out, and unknown or repeated ids change nothing.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from presence_server.storage.database import create_engine, migrate
from presence_server.storage.schema import friendships, users
from presence_server.storage.store import FRIENDS_OF_CHUNK, Store
from tests.support.servers import sqlite_url

USERS = FRIENDS_OF_CHUNK + 200  # the read crosses a chunk boundary
NOW = 1_700_000_000

pairs = st.lists(
    st.tuples(st.integers(1, USERS), st.integers(1, USERS)).filter(lambda p: p[0] != p[1]),
    max_size=400,
)
asked = st.lists(st.integers(1, USERS + 50), max_size=2 * FRIENDS_OF_CHUNK + 10)


async def check(path: Path, edges: list[tuple[int, int]], ask: list[int]) -> None:
    engine = create_engine(sqlite_url(path))
    await migrate(engine)
    links = {(a, b) for a, b in edges} | {(b, a) for a, b in edges}
    async with engine.begin() as conn:
        await conn.execute(
            sa.insert(users),
            [
                {
                    "id": i,
                    "kind": "dev",
                    "login": f"u{i}",
                    "login_lower": f"u{i}",
                    "created_at": NOW,
                    "updated_at": NOW,
                }
                for i in range(1, USERS + 1)
            ],
        )
        if links:
            await conn.execute(
                sa.insert(friendships),
                [{"user_id": a, "friend_id": b, "since": NOW} for a, b in links],
            )
    store = Store(engine)
    try:
        got = await store.friends_of(ask)
    finally:
        await store.close()
    expected: dict[int, list[int]] = {}
    for a, b in sorted(links):
        if a in set(ask):
            expected.setdefault(a, []).append(b)
    assert {u: sorted(f) for u, f in got.items()} == expected


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edges=pairs, ask=asked)
def test_friends_of_many_users_is_exactly_the_table(
    edges: list[tuple[int, int]], ask: list[int]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(check(Path(tmp) / "presence.sqlite3", edges, ask))
