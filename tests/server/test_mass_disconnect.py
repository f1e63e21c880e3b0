"""Many clients dropping at once without a stop (a network cut, a crashed load
balancer): their last seen is written together, not one statement per user,
and friends still get every offline delta, with its last seen, after the write.
"""

from __future__ import annotations

import asyncio

from presence_protocol import PresenceUpdate, SeenStatus
from presence_server import RunningServer
from tests.server.client import Client, befriend, login_dev
from tests.support.servers import Database, on_last_seen_written

USERS = 24


async def _offline_deltas(watcher: Client, users: set[int]) -> dict[int, PresenceUpdate]:
    """Wait until the watcher was told that each of ``users`` went offline."""
    seen: dict[int, PresenceUpdate] = {}
    while set(seen) != users:
        update = await watcher.expect(PresenceUpdate, status=SeenStatus.OFFLINE)
        seen[update.user_id] = update
    return seen


async def test_clients_dropping_at_once_share_one_last_seen_write(
    server: RunningServer, database: Database
) -> None:
    watcher = await login_dev(server.url, "watcher")
    droppers = await asyncio.gather(*(login_dev(server.url, f"drop{i}") for i in range(USERS)))
    for client in droppers:
        await befriend(watcher, client)
    watcher.take(PresenceUpdate)
    writes: list[list[int]] = []
    on_last_seen_written(server.hub.store, lambda ids, _when: writes.append(ids))
    for client in droppers:  # the network goes: no close frame from anyone
        client.ws.transport.abort()
    ids = {c.me for c in droppers}
    deltas = await _offline_deltas(watcher, ids)

    # One write per loop turn in which connections ended; they all end within
    # a few turns here, where one write per user was USERS writes.
    assert sorted(u for w in writes for u in w) == sorted(ids)
    assert len(writes) <= 3, f"{len(writes)} last-seen writes for {USERS} users"
    # Each delta was sent after its write: the stamp it shows is the stored one.
    order = "FROM users ORDER BY id"
    stored = dict(
        zip(
            await database.column(f"SELECT id {order}"),
            await database.column(f"SELECT last_seen {order}"),
            strict=True,
        )
    )
    for uid, update in deltas.items():
        assert update.last_seen is not None
        assert stored[uid] == update.last_seen
    await watcher.close()
