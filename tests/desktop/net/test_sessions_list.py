"""The desktop lists every live session, following the server's pages.

A ``sessions`` reply holds as many sessions as fit in one frame and ``next``
continues it (docs/protocol.md §4); ``PresenceClient.list_sessions`` must
follow it, or a user with many sessions would see (and could revoke) only
the first page's.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from presence_protocol import Sessions, encode, limits
from presence_server import ServerLimits
from presence_server.storage.database import normalize_url
from presence_server.storage.schema import sessions
from tests.support.servers import running_servers, sqlite_url

from .helpers import Peer

LIMIT = limits.MIN_SERVER_FRAME_BYTES
"""The smallest limit a server may announce: ninety wide sessions take several pages."""
WIDE_DEVICE = "\x01" * limits.MAX_DEVICE_CHARS


async def test_every_session_is_listed_across_pages(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "sessions.sqlite3")
    async with running_servers(url) as start:
        server = await start(limits=ServerLimits(max_server_frame_bytes=LIMIT))
        alice = Peer(server.url, "alice")
        await alice.online()
        engine = create_async_engine(normalize_url(url))
        async with engine.begin() as conn:
            await conn.execute(
                sa.insert(sessions),
                [
                    {"id": f"{n:016x}", "user_id": alice.me, "token_hash": f"{n:064x}",
                     "device": WIDE_DEVICE, "created_at": 1_700_000_000 + n,
                     "last_used_at": 1_700_000_000 + n}
                    for n in range(90)
                ],
            )  # fmt: skip
        await engine.dispose()
        try:
            listed = await alice.client.list_sessions()
        finally:
            await alice.client.stop()
    assert len(encode(Sessions(id=1, sessions=listed))) > LIMIT  # not one page's worth
    assert len(listed) == 91 and len({s.id for s in listed}) == 91
    assert {s.id for s in listed if s.device == WIDE_DEVICE} == {f"{n:016x}" for n in range(90)}
    assert [s.current for s in listed].count(True) == 1
