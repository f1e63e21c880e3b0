"""The fan-out on sharded pub/sub (``--redis-pubsub``) over a real Redis Cluster.

The registry stays on the shared test Redis; the instances' channels live on
a three-node Redis Cluster of the test's own. Checked: events cross through
the cluster exactly once per device and in publish order; each process
subscribes on the node that owns its channel; a node that dies and comes
back costs no durable event; and two real server processes with
``--redis-pubsub`` show friends each other's presence and messages.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from presence_protocol import (
    Message,
    MessageSent,
    PresenceUpdate,
    SeenStatus,
    SendMessage,
    SetPresence,
    Status,
)
from presence_server.cluster.fanout import Event
from presence_server.cluster.redis_fanout import RedisFanout
from presence_server.cluster.redis_link import RedisLink
from presence_server.cluster.redis_registry import RedisRegistry
from presence_server.cluster.redis_shards import ShardedPubSub
from tests.server.client import befriend, login_dev
from tests.support.processes import redis_cluster
from tests.support.services import RedisShards

from .test_instance_fanout import HANG_GUARD, Sink

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.timeout(600)]


class Instance:
    def __init__(self, url: str, prefix: str, name: str, shards_url: str) -> None:
        self.link = RedisLink(url, ttl=60.0, prefix=prefix, instance=name)
        self.fanout = RedisFanout(self.link, shards=ShardedPubSub(shards_url))
        self.registry = RedisRegistry(self.link)

    async def start(self) -> None:
        assert await self.link._connect()

    async def login(self, user: int, sink: Sink) -> None:
        assert await self.registry.reserve(user, sink.name, 0)
        await self.fanout.subscribe(user, sink)

    async def stop(self) -> None:
        await self.fanout.close()
        await self.registry.close()
        await self.link.close()


@pytest.fixture
async def instances(
    redis_url: str, redis_prefix: str, redis_shards: RedisShards
) -> AsyncIterator[list[Instance]]:
    made = [Instance(redis_url, redis_prefix, f"n{k}", redis_shards.url) for k in range(3)]
    for instance in made:
        await instance.start()
    yield made
    for instance in made:
        await instance.stop()


async def shard_subscribers(shards: RedisShards, channel: bytes) -> dict[int, int]:
    """Port of each node -> its subscribers of ``channel`` (PUBSUB SHARDNUMSUB)."""
    found = {}
    for node in shards.nodes:
        client: Any = aioredis.Redis.from_url(node.url)
        try:
            reply = await client.execute_command("PUBSUB SHARDNUMSUB", channel)
        finally:
            await client.aclose()
        # redis-py parses the reply into [(channel, count)]
        found[node.port] = sum(int(count) for name, count in reply if name == channel)
    return found


async def test_events_cross_the_cluster_once_per_device_in_order(
    instances: list[Instance], redis_shards: RedisShards
) -> None:
    a, b, c = instances
    on_b, also_on_b, on_c = Sink("b1"), Sink("b2"), Sink("c1")
    await b.login(1, on_b)
    await b.login(1, also_on_b)
    await c.login(2, on_c)
    await asyncio.gather(
        *(a.fanout.publish([1, 2, 3], Event(frame=b"{}", seq=n)) for n in range(200))
    )
    for sink in (on_b, also_on_b, on_c):
        await sink.wait_for(200)
        assert sink.tags() == list(range(200))
    # Each process listens on exactly the node that owns its channel.
    ports = {node.port for node in redis_shards.nodes}
    for instance in instances:
        counts = await shard_subscribers(redis_shards, instance.fanout.channel)
        assert instance.fanout.shards is not None
        owner = instance.fanout.shards.node_of(instance.fanout.channel)
        assert owner[1] in ports
        assert counts == {port: (1 if port == owner[1] else 0) for port in ports}


async def test_a_node_that_dies_and_returns_loses_no_durable_event(
    instances: list[Instance], redis_shards: RedisShards
) -> None:
    a, b, _ = instances
    sink = Sink("s")
    await b.login(7, sink)
    assert b.fanout.shards is not None
    owner = b.fanout.shards.node_of(b.fanout.channel)
    node = next(n for n in redis_shards.nodes if n.port == owner[1])
    await a.fanout.publish([7], Event(frame=b"{}", seq=1))
    await sink.wait_for(1)

    await node.stop()
    # A message (durable) while b's shard is gone: a's publish fails, a keeps it.
    await a.fanout.publish([7], Event(frame=b"{}", seq=2))
    assert not a.link.up
    b.link.mark_down("its shard died")  # as its listener does when the connection drops
    await node.start()
    await redis_shards.wait_ok()

    async def recover(instance: Instance) -> None:
        link = instance.link
        link._task = asyncio.get_running_loop().create_task(link._supervise())
        async with asyncio.timeout(HANG_GUARD):
            await link.recovered.wait()

    # b listens again before a re-publishes what it kept (otherwise b would
    # catch up from the database, which is the hub's part, not the fan-out's).
    await recover(b)
    await recover(a)
    await sink.wait_for(2)
    assert sink.tags() == [1, 2]
    await a.fanout.publish([7], Event(frame=b"{}", seq=3))
    await sink.wait_for(3)
    assert sink.tags() == [1, 2, 3]


async def test_two_servers_on_sharded_pubsub_show_friends_presence_and_messages(
    tmp_path: Path,
    postgres_url: str,
    redis_url: str,
    redis_prefix: str,
    redis_shards: RedisShards,
) -> None:
    extra = ("--dev-login", "--redis-pubsub", redis_shards.url)
    async with redis_cluster(tmp_path, 2, postgres_url, redis_url, redis_prefix, *extra) as (
        one,
        two,
    ):
        # Both processes listen on the cluster, not on the registry's Redis.
        channels = []
        for node in redis_shards.nodes:
            client: Any = aioredis.Redis.from_url(node.url)
            try:
                channels += await client.execute_command(
                    "PUBSUB SHARDCHANNELS", f"{redis_prefix}i:*"
                )
            finally:
                await client.aclose()
        assert len(channels) == 2
        alice = await login_dev(one.url, "alice")
        bob = await login_dev(two.url, "bob")
        await befriend(alice, bob)
        await alice.ok(SetPresence(status=Status.DND))
        await bob.expect(PresenceUpdate, user_id=alice.me, status=SeenStatus.DND)
        reply = await bob.request(
            SendMessage(to=alice.me, text="over the shards", client_msg_id="m-1")
        )
        assert isinstance(reply, MessageSent), reply
        message = await alice.expect(Message)
        assert message.text == "over the shards"
        await alice.close()
        await bob.close()
