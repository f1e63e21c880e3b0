"""A stop under many connections: what clients and the database see (docs/deployment.md).

Everyone gets close code 4000 (reconnect), and last seen is stamped for every
user in one write at the end of the drain rather than one write per user: a
restart of a server holding 15,000 clients is measured in
``benchmarks.reconnect_storm`` and its stop is part of the 30-second target.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Iterable
from typing import Any

import pytest
import redis.asyncio as aioredis

from presence_protocol import CloseCode
from presence_server import RunningServer
from presence_server.cluster.registry import Change
from tests.server.client import befriend, login_dev
from tests.support.servers import Database, StartServer, on_last_seen_written

USERS = 30


async def test_a_stop_closes_everyone_with_4000_and_stamps_last_seen_in_one_write(
    server: RunningServer, database: Database
) -> None:
    clients = await asyncio.gather(*(login_dev(server.url, f"user{i}") for i in range(USERS)))
    for a, b in itertools.pairwise(clients):  # a chain: everyone has a friend
        await befriend(a, b)
    writes: list[list[int]] = []
    on_last_seen_written(server.hub.store, lambda ids, _when: writes.append(ids))
    await server.stop()
    codes = await asyncio.gather(*(c.closed() for c in clients))
    assert set(codes) == {CloseCode.SERVER_RESTART}
    assert len(writes) == 1, f"{len(writes)} last-seen writes for one stop"
    assert len(writes[0]) == USERS
    stamped = await database.column("SELECT last_seen FROM users")
    assert len(stamped) == USERS and all(s is not None for s in stamped)


async def test_a_stop_takes_each_session_out_of_the_registry_once(server: RunningServer) -> None:
    """Each session leaves the registry once (the drain's bulk teardown), not once
    for the close and again when its handler sees the connection end; and with
    no other instance there is nobody left to tell, so the stop reads nobody's
    friends."""
    clients = await asyncio.gather(*(login_dev(server.url, f"user{i}") for i in range(USERS)))
    for a, b in itertools.pairwise(clients):
        await befriend(a, b)
    hub = server.hub
    registry = hub.registry
    real_remove = registry.remove
    removed: list[tuple[int, str]] = []

    async def remove(user_id: int, device: str) -> Change:
        removed.append((user_id, device))
        return await real_remove(user_id, device)

    registry.remove = remove  # type: ignore[method-assign]
    real_friends_of = hub.store.friends_of
    friend_reads: list[list[int]] = []

    async def friends_of(user_ids: Iterable[int]) -> dict[int, list[int]]:
        ids = list(user_ids)
        friend_reads.append(ids)
        return await real_friends_of(ids)

    hub.store.friends_of = friends_of  # type: ignore[method-assign]
    await server.stop()
    codes = await asyncio.gather(*(c.closed() for c in clients))
    assert set(codes) == {CloseCode.SERVER_RESTART}
    assert sorted(u for u, _ in removed) == sorted(c.me for c in clients), removed
    assert friend_reads == []
    assert await registry.connected() == []


@pytest.mark.slow
@pytest.mark.redis
async def test_a_cluster_instance_drains_the_registry_in_shared_round_trips(
    start: StartServer, redis_url: str, redis_prefix: str
) -> None:
    """With the registry in Redis, a stop issues the removals of every device
    at once so they share the link's batch (a few writes for all), instead of
    one awaited round trip each: an operator's rolling restart waits on it.
    Each device still leaves exactly once, and the registry is empty after."""
    server = await start(redis_url=redis_url, redis_prefix=redis_prefix)
    clients = await asyncio.gather(*(login_dev(server.url, f"user{i}") for i in range(USERS)))
    for a, b in itertools.pairwise(clients):
        await befriend(a, b)
    link = server.link
    assert link is not None
    registry = server.hub.registry
    real_remove = registry.remove
    removed: list[int] = []

    async def remove(user_id: int, device: str) -> Change:
        removed.append(user_id)
        return await real_remove(user_id, device)

    registry.remove = remove  # type: ignore[method-assign]
    link.batch.budget = math.inf  # counted below: no budget split on a busy machine
    writes_before = link.batch.writes
    commands_before = link.batch.commands
    stopping = asyncio.get_running_loop().create_task(server.stop())
    codes = await asyncio.gather(*(c.closed() for c in clients))
    await stopping
    assert set(codes) == {CloseCode.SERVER_RESTART}
    assert sorted(removed) == sorted(c.me for c in clients)
    removals = link.batch.commands - commands_before
    assert removals >= USERS
    # One round trip each would be USERS writes; issued together they share a
    # handful (the offline deltas to friends elsewhere and the last write of
    # the drain come after, in a write or two more).
    assert link.batch.writes - writes_before <= 5, (link.batch.writes - writes_before, removals)
    assert removed  # the check below reads Redis, which the stopped link no longer can
    check: Any = aioredis.Redis.from_url(redis_url)
    try:
        assert await check.keys(f"{redis_prefix}dev:*") == []
    finally:
        await check.aclose()
