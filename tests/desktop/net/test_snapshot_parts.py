"""The desktop client takes a snapshot that came in parts (docs/protocol.md §5).

A server cuts a snapshot that does not fit in one frame of its announced
``max_server_frame_bytes`` into ``snapshot`` + ``snapshot_part`` frames. The
client must join them before it applies anything: applying the first frame
alone would show a friend list that is missing people.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from presence_protocol import Snapshot, SnapshotPart, User, encode_text, limits
from presence_protocol.paging import snapshot_frames
from presence_server import ServerLimits
from presence_server.storage.database import normalize_url
from presence_server.storage.schema import friend_requests, users
from tests.support.servers import running_servers, sqlite_url

from .helpers import Peer

MakePeer = Callable[..., Peer]
LIMIT = limits.MIN_SERVER_FRAME_BYTES
"""The smallest limit a server may announce, so that sixty wide requests need
several frames."""
WIDE = 60
WIDE_NAME = "語" * 255


async def test_a_snapshot_in_parts_is_applied_whole_at_sign_in(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "parts.sqlite3")
    async with running_servers(url) as start:
        server = await start(limits=ServerLimits(max_server_frame_bytes=LIMIT))
        alice = Peer(server.url, "alice")
        await alice.online()
        me = alice.me
        await alice.client.stop()
        engine = create_async_engine(normalize_url(url))
        async with engine.begin() as conn:
            await conn.execute(
                sa.insert(users),
                [
                    {"id": 10**9 + n, "kind": "github", "login": f"w{n}", "login_lower": f"w{n}",
                     "name": WIDE_NAME, "created_at": 1, "updated_at": 1}
                    for n in range(WIDE)
                ],
            )  # fmt: skip
            await conn.execute(
                sa.insert(friend_requests),
                [{"from_id": 10**9 + n, "to_id": me, "created_at": 1} for n in range(WIDE)],
            )
        await engine.dispose()

        again = Peer(server.url, "alice")
        await again.online()
        try:
            assert set(again.state.incoming) == {10**9 + n for n in range(WIDE)}
            assert all(u.name == WIDE_NAME for u in again.state.incoming.values())
        finally:
            await again.client.stop()


async def test_a_live_snapshot_in_parts_replaces_the_state_only_once_whole(
    make_peer: MakePeer,
) -> None:
    peer = make_peer("alice")
    await peer.online()
    me = peer.state.me or User(id=1, login="alice")
    wide = [User(id=500 + n, login=f"w{n}", name=WIDE_NAME) for n in range(WIDE)]
    frames = snapshot_frames(Snapshot(me=me, incoming=wide), LIMIT)
    assert len(frames) > 2 and isinstance(frames[1], SnapshotPart)
    for frame in frames[:-1]:
        peer.client._dispatch(encode_text(frame))
        assert not peer.state.incoming  # nothing applied from a partial snapshot
    peer.client._dispatch(encode_text(frames[-1]))
    assert set(peer.state.incoming) == {u.id for u in wide}
