"""A server database filled in bulk: users, one session each, and a friend graph.

Making 15,000 accounts or 50,000 friendships through the protocol would take
longer than the benchmarks themselves (friend requests are rate limited, on
purpose), so the tables are written directly, after the real migrations ran.
User ``i`` (0-based) has id ``FIRST_ID + i``, login ``bench<i>`` and session
token ``token_for(i)``; friends form a ring: ``i`` is friends with the
``friends // 2`` users on each side, so every user has exactly ``friends``.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

FIRST_ID = 10_000_000
"""Eight digits, like real GitHub ids of today (the wire size depends on it)."""


def token_for(i: int) -> str:
    return f"bench-session-{i:06d}"


def user_id(i: int) -> int:
    return FIRST_ID + i


def friends_of(i: int, users: int, friends: int) -> list[int]:
    """Indexes of the friends of user ``i`` in the ring graph."""
    half = friends // 2
    return [(i + d) % users for d in range(-half, half + 1) if d != 0]


def seed(path: Path, users: int, friends: int) -> str:
    """Create and fill a SQLite database; returns its SQLAlchemy URL."""
    # Imported here: load generators import this module for token_for/friends_of
    # and should not pay for SQLAlchemy and Alembic at start-up.
    from presence_server.auth import hash_token
    from presence_server.storage.database import create_engine, migrate

    if friends >= users:
        raise ValueError("need more users than friends per user")
    url = f"sqlite+aiosqlite:///{path}"

    async def _migrate() -> None:
        engine = create_engine(url)
        try:
            await migrate(engine)
        finally:
            await engine.dispose()

    asyncio.run(_migrate())
    now = int(time.time())
    db = sqlite3.connect(path)
    try:
        with db:
            db.executemany(
                "INSERT INTO users (id, kind, login, login_lower, created_at, updated_at,"
                " last_seen, status, next_seq, acked_seq)"
                " VALUES (?, 'github', ?, ?, ?, ?, ?, 'online', 0, 0)",
                (
                    (user_id(i), f"bench{i}", f"bench{i}", now, now, now - 3600)
                    for i in range(users)
                ),
            )
            db.executemany(
                "INSERT INTO sessions (id, user_id, token_hash, device, created_at,"
                " last_used_at) VALUES (?, ?, ?, 'bench', ?, ?)",
                (
                    (f"s{i:08x}", user_id(i), hash_token(token_for(i)), now, now)
                    for i in range(users)
                ),
            )
            db.executemany(
                "INSERT INTO friendships (user_id, friend_id, since) VALUES (?, ?, ?)",
                (
                    (user_id(i), user_id(j), now)
                    for i in range(users)
                    for j in friends_of(i, users, friends)
                ),
            )
    finally:
        db.close()
    return url
