"""A stop under many connections: what clients and the database see (docs/deployment.md).

Everyone gets close code 4000 (reconnect), and last seen is stamped for every
user in one write at the end of the drain rather than one write per user: a
restart of a server holding 15,000 clients is measured in
``benchmarks.reconnect_storm`` and its stop is part of the 30-second target.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable

from presence_protocol import CloseCode
from presence_server import RunningServer
from tests.server.client import befriend, login_dev
from tests.support.servers import Database

USERS = 30


async def test_a_stop_closes_everyone_with_4000_and_stamps_last_seen_in_one_write(
    server: RunningServer, database: Database
) -> None:
    clients = await asyncio.gather(*(login_dev(server.url, f"user{i}") for i in range(USERS)))
    for a, b in itertools.pairwise(clients):  # a chain: everyone has a friend
        await befriend(a, b)
    store = server.hub.store
    real = store.set_last_seen
    writes: list[list[int]] = []

    async def spy(user_ids: Iterable[int], when: int) -> None:
        ids = list(user_ids)
        writes.append(ids)
        await real(ids, when)

    store.set_last_seen = spy  # type: ignore[method-assign]
    await server.stop()
    codes = await asyncio.gather(*(c.closed() for c in clients))
    assert set(codes) == {CloseCode.SERVER_RESTART}
    assert len(writes) == 1, f"{len(writes)} last-seen writes for one stop"
    assert len(writes[0]) == USERS
    stamped = await database.column("SELECT last_seen FROM users")
    assert len(stamped) == USERS and all(s is not None for s in stamped)
