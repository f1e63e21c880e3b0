"""Cross-instance fan-out on a real Redis: one message per event per destination instance.

Processes here are ``RedisLink`` + ``RedisRegistry`` + ``RedisFanout`` triples
in this test's loop (as ``start_server`` wires them), connected without their
supervisor. Devices are registered as a login does it: a slot in the
registry first (``reserve``), then the fan-out subscription. A spy on every
instance channel of the test's prefix counts what crosses Redis.

The rules, checked over random sequences of logins, logouts and publishes:

* every connection of every recipient gets each event exactly once, and no
  one else gets it;
* an instance's events reach every other instance in the order it published
  them, also when published concurrently;
* Redis carries one message per event per instance that holds a recipient,
  none to the publishing instance and none for offline recipients.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from presence_server.cluster.fanout import Event
from presence_server.cluster.redis_fanout import RedisFanout
from presence_server.cluster.redis_link import RedisLink
from presence_server.cluster.redis_registry import RedisRegistry
from tests.support.services import require

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.timeout(900)]

HANG_GUARD = 30.0
"""Seconds to wait for an event that must arrive (a loopback hop takes milliseconds)."""


class Sink:
    """A connection as the fan-out sees it: records what it is handed."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.events: list[Event] = []
        self.changed = asyncio.Event()

    def deliver(self, event: Event) -> None:
        self.events.append(event)
        self.changed.set()

    def tags(self) -> list[int]:
        return [e.seq for e in self.events if e.seq is not None]

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(HANG_GUARD):
            while len(self.events) < count:
                self.changed.clear()
                await self.changed.wait()


@dataclasses.dataclass
class Instance:
    link: RedisLink
    registry: RedisRegistry
    fanout: RedisFanout

    @classmethod
    async def start(cls, url: str, prefix: str, name: str) -> Instance:
        link = RedisLink(url, ttl=60.0, prefix=prefix, instance=name)
        fanout = RedisFanout(link)  # first, as in start_server: its channel before re-sync
        registry = RedisRegistry(link)
        assert await link._connect()
        return cls(link, registry, fanout)

    async def login(self, user: int, sink: Sink) -> None:
        assert await self.registry.reserve(user, sink.name, 0)
        await self.fanout.subscribe(user, sink)

    async def logout(self, user: int, sink: Sink) -> None:
        await self.fanout.unsubscribe(user, sink)
        await self.registry.remove(user, sink.name)

    async def stop(self) -> None:
        await self.fanout.close()
        await self.registry.close()
        await self.link.close()


class Spy:
    """Every message published on the test's instance channels, by channel."""

    def __init__(self, url: str, prefix: str) -> None:
        self.client = aioredis.Redis.from_url(url)
        self.pubsub: Any = self.client.pubsub()
        self.pattern = f"{prefix}i:*"
        self.seen: list[bytes] = []
        self.arrived = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.pubsub.psubscribe(self.pattern)
        async with asyncio.timeout(HANG_GUARD):
            while (await self.pubsub.get_message(timeout=1.0)) is None:
                pass  # the psubscribe confirmation
        self.task = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        while True:
            message = await self.pubsub.get_message(timeout=None)
            if message is not None and message["type"] == "pmessage":
                self.seen.append(message["channel"])
                self.arrived.set()

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
        await self.pubsub.aclose()
        await self.client.aclose()


@pytest.fixture
async def world(redis_url: str, redis_prefix: str) -> AsyncIterator[tuple[list[Instance], Spy]]:
    instances = [await Instance.start(redis_url, redis_prefix, f"n{k}") for k in range(3)]
    spy = Spy(redis_url, redis_prefix)
    await spy.start()
    try:
        yield instances, spy
    finally:
        await spy.stop()
        for instance in instances:
            await instance.stop()


async def drained(spy: Spy, instances: list[Instance], expected: int) -> None:
    """Wait until the spy saw ``expected`` messages, then one more round trip:
    a marker published after them arrives after them (one publisher connection)."""
    marker = f"{instances[0].link.prefix}i:marker".encode()
    await instances[0].link.client.publish(marker, b"")
    async with asyncio.timeout(HANG_GUARD):
        while marker not in spy.seen:
            spy.arrived.clear()
            await spy.arrived.wait()
    spy.seen.remove(marker)
    assert len(spy.seen) == expected


async def test_one_message_per_destination_instance_and_each_device_gets_one_copy(
    world: tuple[list[Instance], Spy],
) -> None:
    (a, b, c), spy = world
    # 50 friends: 20 on b (one of them with two devices), 20 on c, 10 offline.
    sinks: dict[int, list[Sink]] = {}
    for uid in range(1, 41):
        where = b if uid <= 20 else c
        sink = Sink(f"d{uid}")
        await where.login(uid, sink)
        sinks[uid] = [sink]
    second = Sink("d1b")
    await b.login(1, second)
    sinks[1].append(second)
    bystander = Sink("d99")
    await b.login(99, bystander)

    await a.fanout.publish(range(1, 51), Event(frame=b"{}", seq=7))

    for uid, devices in sinks.items():
        for sink in devices:
            await sink.wait_for(1)
            assert sink.tags() == [7], (uid, sink.name)
    await drained(spy, [a, b, c], 2)
    assert sorted(spy.seen) == sorted([b.fanout.channel, c.fanout.channel])
    assert bystander.events == []


async def test_the_publisher_delivers_locally_and_publishes_nothing_for_its_own_users(
    world: tuple[list[Instance], Spy],
) -> None:
    (a, b, _), spy = world
    mine = Sink("m")
    await a.login(5, mine)
    await a.fanout.publish([5, 6], Event(frame=b"{}", seq=1))  # 6 is offline
    assert mine.tags() == [1]  # handed over before publish returned
    await drained(spy, [a, b], 0)


async def test_concurrent_publishes_arrive_in_publish_order(
    world: tuple[list[Instance], Spy],
) -> None:
    (a, b, c), _ = world
    on_b, on_c = Sink("b"), Sink("c")
    await b.login(1, on_b)
    await c.login(2, on_c)
    # Started together: they share pipelines, and still leave in this order.
    await asyncio.gather(*(a.fanout.publish([1, 2], Event(frame=b"{}", seq=n)) for n in range(300)))
    await on_b.wait_for(300)
    await on_c.wait_for(300)
    assert on_b.tags() == list(range(300))
    assert on_c.tags() == list(range(300))


async def test_an_undecodable_message_is_ignored_and_the_next_one_arrives(
    world: tuple[list[Instance], Spy],
) -> None:
    (a, b, _), _ = world
    sink = Sink("s")
    await b.login(3, sink)
    client = a.link.client
    for junk in (b"", b"x\n{}\n", b"3\nnot json\n", b"3"):
        await client.publish(b.fanout.channel, junk)
    await a.fanout.publish([3], Event(frame=b"{}", seq=9))
    await sink.wait_for(1)
    assert sink.tags() == [9]


async def test_a_user_who_logged_out_everywhere_costs_no_message(
    world: tuple[list[Instance], Spy],
) -> None:
    (a, b, _), spy = world
    sink = Sink("s")
    await b.login(4, sink)
    await b.logout(4, sink)
    await a.fanout.publish([4], Event(frame=b"{}", seq=1))
    await drained(spy, [a, b], 0)
    assert sink.events == []


# ------------------------------------------------------------ the rules, over random sequences

USERS = 4
step = st.one_of(
    st.tuples(st.just("login"), st.integers(0, 2), st.integers(1, USERS)),
    st.tuples(st.just("logout"), st.integers(0, 2), st.integers(0, 20)),
    st.tuples(
        st.just("publish"), st.integers(0, 2), st.frozensets(st.integers(1, USERS), min_size=1)
    ),
    st.tuples(
        st.just("burst"), st.integers(0, 2), st.frozensets(st.integers(1, USERS), min_size=1)
    ),
)


@settings(
    max_examples=int(os.environ.get("FANOUT_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(steps=st.lists(step, min_size=1, max_size=30))
@example(  # two devices of one user on one instance: each gets one copy, not two
    steps=[("login", 0, 1), ("login", 0, 1), ("publish", 1, frozenset([1]))]
)
def test_every_device_of_every_recipient_gets_each_event_once_in_order(
    steps: list[tuple[str, int, object]],
) -> None:
    url = os.environ.get("TEST_REDIS_URL", "")
    require(bool(url), "needs Redis: set $TEST_REDIS_URL (scripts/start_services.sh)")

    async def run() -> None:
        prefix = f"f{secrets.token_hex(4)}:"
        instances = [await Instance.start(url, prefix, f"n{k}") for k in range(3)]
        spy = Spy(url, prefix)
        await spy.start()
        devices: list[tuple[int, int, Sink]] = []  # (instance, user, sink), logged in
        expected: dict[str, list[int]] = {}  # sink name -> tags, in publish order per publisher
        published = 0
        messages = 0
        tag = 0
        try:
            for op, k, arg in steps:
                if op == "login":
                    assert isinstance(arg, int)
                    sink = Sink(f"c{len(expected)}")
                    expected[sink.name] = []
                    await instances[k].login(arg, sink)
                    devices.append((k, arg, sink))
                elif op == "logout" and devices:
                    assert isinstance(arg, int)
                    # Left: what it received so far was checked when it arrived.
                    where, uid, sink = devices.pop(arg % len(devices))
                    await instances[where].logout(uid, sink)
                elif op in ("publish", "burst"):
                    assert isinstance(arg, frozenset)
                    count = 1 if op == "publish" else 5
                    tags = list(range(tag, tag + count))
                    tag += count
                    await asyncio.gather(
                        *(instances[k].fanout.publish(arg, Event(frame=b"{}", seq=t)) for t in tags)
                    )
                    for _, uid, sink in devices:
                        if uid in arg:
                            expected[sink.name] += tags
                    holders = {w for w, uid, _ in devices if uid in arg and w != k}
                    messages += len(holders) * count
                    published += count
                    for _, _, sink in devices:
                        await sink.wait_for(len(expected[sink.name]))
            await drained(spy, instances, messages)
            for _, _, sink in devices:
                assert sink.tags() == expected[sink.name], sink.name
        finally:
            await spy.stop()
            for instance in instances:
                await instance.stop()

    asyncio.run(run())
