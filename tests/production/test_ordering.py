"""Deltas that arrive through Redis out of order, or about someone who is not a
friend (yet, or any more), never reach a client.

Pub/sub keeps order per publishing connection only: two instances publishing
about the same user can be overtaken by each other. The events here are
published straight into Redis, as a slower instance would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from presence_protocol import PresenceUpdate, SeenStatus, SetPresence, Status, encode
from presence_server import RunningServer, ServerConfig, start_server
from presence_server.cluster.fanout import Event
from presence_server.cluster.redis_fanout import RedisFanout, encode_message
from tests.server.client import Client, befriend, login_dev


@pytest.fixture
async def server(
    postgres_url: str, redis_url: str, redis_prefix: str
) -> AsyncIterator[RunningServer]:
    config = ServerConfig(
        port=0,
        dev_login=True,
        database_url=postgres_url,
        redis_url=redis_url,
        redis_prefix=redis_prefix,
    )
    running = await start_server(config)
    yield running
    await running.stop()


FUTURE = 2**52
"""A presence version newer than any real one (they are Redis time in microseconds)."""


async def inject(
    server: RunningServer, to: Client, about: int, status: Status, version: int
) -> None:
    """Publish a presence delta for ``to`` to its instance's channel as another instance would."""
    frame = encode(PresenceUpdate(user_id=about, status=SeenStatus(status.value)))
    event = Event(frame=frame, subject=about, version=version)
    payload = encode_message([to.me], event, "elsewhere", 0.0)
    fanout = server.hub.fanout
    assert isinstance(fanout, RedisFanout)
    client = aioredis.Redis.from_url(server.config.redis_url)
    try:
        receivers = await client.publish(fanout.channel, payload)
    finally:
        await client.aclose()
    assert receivers == 1


async def test_an_older_delta_arriving_late_is_dropped(server: RunningServer) -> None:
    alice = await login_dev(server.url, "alice")
    bob = await login_dev(server.url, "bob")
    await befriend(alice, bob)
    await alice.ok(SetPresence(status=Status.DND))
    newest = await bob.expect(PresenceUpdate, user_id=alice.me)
    assert newest.status is SeenStatus.DND

    # Older than what bob was sent: dropped. Newer: delivered.
    observed = (await server.hub.registry.seen([alice.me]))[alice.me]
    await inject(server, bob, alice.me, Status.AWAY, observed.version - 1)
    await inject(server, bob, alice.me, Status.ONLINE, observed.version + 1)
    later = await bob.expect(PresenceUpdate, user_id=alice.me)
    assert later.status is SeenStatus.ONLINE
    await bob.barrier()
    assert bob.take(PresenceUpdate) == []
    await alice.close()
    await bob.close()


async def test_presence_about_a_non_friend_is_never_sent(server: RunningServer) -> None:
    alice = await login_dev(server.url, "alice")
    bob = await login_dev(server.url, "bob")
    stranger = await login_dev(server.url, "mallory")
    await befriend(alice, bob)
    await inject(server, bob, stranger.me, Status.ONLINE, FUTURE)
    # Redis delivers to one subscriber in publish order: once this one is here,
    # the stranger's would have been too.
    await inject(server, bob, alice.me, Status.AWAY, FUTURE)
    assert (await bob.expect(PresenceUpdate)).user_id == alice.me
    await bob.barrier()
    assert bob.take(PresenceUpdate) == []
    for client in (alice, bob, stranger):
        await client.close()
