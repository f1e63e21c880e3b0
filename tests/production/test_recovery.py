"""An instance that stalled past the presence TTL heals itself.

If an instance's event loop stops for longer than the TTL (a long GC pause,
a frozen VM) while its Redis link stays up, the others sweep its devices as
if it had crashed. When it runs again, its next heartbeat finds its key gone:
it starts a new epoch and re-registers, and friends see its users again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from presence_protocol import PresenceUpdate, SeenStatus, SetPresence, Status
from presence_server import RunningServer, ServerConfig, start_server
from presence_server.cluster.redis_registry import RedisRegistry
from tests.server.client import befriend, login_dev

TTL = 30.0
"""Long, so nothing happens by itself during the test: it plays the clock."""


@pytest.fixture
async def pair(
    postgres_url: str, redis_url: str, redis_prefix: str
) -> AsyncIterator[tuple[RunningServer, RunningServer]]:
    config = ServerConfig(
        port=0,
        dev_login=True,
        database_url=postgres_url,
        redis_url=redis_url,
        redis_prefix=redis_prefix,
        presence_ttl=TTL,
    )
    one = await start_server(config)
    two = await start_server(config)
    yield one, two
    await one.stop()
    await two.stop()


async def test_a_swept_but_living_instance_registers_its_users_again(
    pair: tuple[RunningServer, RunningServer], caplog: pytest.LogCaptureFixture
) -> None:
    one, two = pair
    alice = await login_dev(one.url, "alice")
    bob = await login_dev(two.url, "bob")
    await befriend(alice, bob)
    await alice.barrier()

    # As if instance one had not refreshed its heartbeat in time: its key
    # expires and instance two's sweeper removes its devices.
    assert one.link is not None and two.link is not None
    stalled = one.link.epoch
    client = aioredis.Redis.from_url(one.config.redis_url)
    try:
        assert await client.delete(one.link.heartbeat_key(stalled)) == 1
        await client.delete(two.link.key("sweep-lock"))
    finally:
        await client.aclose()
    registry = two.hub.registry
    assert isinstance(registry, RedisRegistry)
    assert await registry.sweep_once() == 1
    gone = await bob.expect(PresenceUpdate, user_id=alice.me, status=SeenStatus.OFFLINE)
    assert gone.last_seen is not None

    # Instance one runs again: its next heartbeat finds the key gone.
    one.link._wake.set()  # the heartbeat would be due now
    back = await bob.expect(PresenceUpdate, user_id=alice.me, status=SeenStatus.ONLINE)
    assert back.last_seen is None
    assert one.link.epoch != stalled
    assert any("expired" in r.getMessage() for r in caplog.records)
    # And it works as before: a change on one reaches bob on two.
    await alice.ok(SetPresence(status=Status.DND))
    assert (await bob.expect(PresenceUpdate, user_id=alice.me)).status is SeenStatus.DND
    await alice.close()
    await bob.close()
