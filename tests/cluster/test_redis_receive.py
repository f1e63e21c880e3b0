"""The receiving side of cross-instance fan-out, on a real Redis.

The receiving instance reads its subscription's pushes in bulk, straight
from the socket into redis-py's hiredis reader (``redis_fanout._listen``),
instead of one ``get_message`` per message. What must hold, checked over
random bursts from two publishers at once, with frames larger than one
read so that messages straddle reads:

* every local connection of every recipient gets each event exactly once,
  with the frame bytes as published, and no one else gets it;
* each publisher's events arrive in the order it published them;
* an undecodable message, or one from this very process, changes nothing;
* a subscription connection that Redis closes takes the link down (the
  usual recovery follows), and the fresh subscription reads in bulk again.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from typing import Any

import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from presence_server.cluster.fanout import Event
from presence_server.cluster.redis_fanout import READ_BYTES, _pushes, encode_message
from tests.cluster.test_instance_fanout import HANG_GUARD, Instance, Sink
from tests.support.services import require

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.timeout(900)]

USERS = 4
OFFLINE = 9
"""A recipient no connection of the receiver holds: named, never delivered."""
MARKER = 99
"""Each publisher's last message goes to this user: when both arrived, all did."""
PUBLISHERS = 2
SEQ_BASE = 1_000_000
"""A published event's seq is publisher * SEQ_BASE + its number."""


def frame_of(seq: int, size: int) -> bytes:
    """Distinct bytes per event, ``size`` long, so a frame cut or swapped shows."""
    head = f"{seq}:".encode()
    return (head * (size // len(head) + 1))[:size] if size else b""


burst = st.tuples(
    st.integers(0, PUBLISHERS - 1),
    st.frozensets(st.sampled_from([*range(1, USERS + 1), OFFLINE]), min_size=1),
    st.integers(1, 40),  # messages in one pipeline
    st.sampled_from([0, 2, 150, READ_BYTES // 3, READ_BYTES + 777]),  # frame size
    st.sampled_from(["plain", "junk", "own"]),  # what else the pipeline carries
)


@settings(
    max_examples=int(os.environ.get("FANOUT_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    devices=st.lists(st.integers(1, USERS), min_size=1, max_size=6),
    bursts=st.lists(burst, min_size=1, max_size=12),
)
@example(  # one big frame per message: every message straddles two reads
    devices=[1, 1, 2],
    bursts=[(0, frozenset([1, 2]), 5, READ_BYTES + 777, "plain")],
)
def test_bursts_from_two_publishers_arrive_once_each_in_publish_order(
    devices: list[int], bursts: list[tuple[int, frozenset[int], int, int, str]]
) -> None:
    url = os.environ.get("TEST_REDIS_URL", "")
    require(bool(url), "needs Redis: set $TEST_REDIS_URL (scripts/start_services.sh)")

    async def run() -> None:
        prefix = f"r{secrets.token_hex(4)}:"
        receiver = await Instance.start(url, prefix, "rx")
        clients: list[Any] = [aioredis.Redis.from_url(url) for _ in range(PUBLISHERS)]
        try:
            assert _pushes(receiver.fanout._pubsub) is not None, "not reading in bulk"
            sinks: list[tuple[int, Sink]] = []
            for n, uid in enumerate(devices):
                sink = Sink(f"d{n}")
                await receiver.fanout.subscribe(uid, sink)
                sinks.append((uid, sink))
            marker = Sink("marker")
            await receiver.fanout.subscribe(MARKER, marker)
            expected: dict[str, list[tuple[int, bytes]]] = {s.name: [] for _, s in sinks}
            numbers = [0] * PUBLISHERS
            plans: list[list[list[bytes]]] = [[] for _ in range(PUBLISHERS)]
            for k, recipients, count, size, extra in bursts:
                payloads: list[bytes] = []
                for _ in range(count):
                    seq = k * SEQ_BASE + numbers[k]
                    numbers[k] += 1
                    event = Event(frame=frame_of(seq, size), seq=seq)
                    payloads.append(encode_message(sorted(recipients), event, f"p{k}", 0.0))
                    for uid, sink in sinks:
                        if uid in recipients:
                            expected[sink.name].append((seq, frame_of(seq, size)))
                if extra == "junk":
                    payloads.insert(count // 2, b"1,2\nnot json\n")
                elif extra == "own":  # from this very process: it delivered already
                    own = Event(frame=b"own", seq=-1)
                    payloads.insert(
                        count // 2,
                        encode_message(sorted(recipients), own, receiver.link.process, 0.0),
                    )
                plans[k].append(payloads)
            channel = receiver.fanout.channel

            async def publish(k: int) -> None:
                for payloads in plans[k]:
                    async with clients[k].pipeline(transaction=False) as pipe:
                        for payload in payloads:
                            pipe.publish(channel, payload)
                        await pipe.execute()
                done = Event(frame=b"", seq=-2)
                await clients[k].publish(channel, encode_message([MARKER], done, f"p{k}", 0.0))

            async with asyncio.timeout(HANG_GUARD):
                await asyncio.gather(*(publish(k) for k in range(PUBLISHERS)))
            await marker.wait_for(PUBLISHERS)
            for uid, sink in sinks:
                got = [(e.seq, e.frame) for e in sink.events]
                for k in range(PUBLISHERS):
                    mine = [g for g in got if (g[0] or 0) // SEQ_BASE == k]
                    want = [w for w in expected[sink.name] if w[0] // SEQ_BASE == k]
                    assert mine == want, (uid, sink.name, k)
                assert len(got) == len(expected[sink.name]), sink.name
            assert receiver.link.up
        finally:
            for client in clients:
                await client.aclose()
            await receiver.stop()

    asyncio.run(run())


async def test_a_subscription_that_redis_closes_takes_the_link_down_and_recovers(
    redis_url: str, redis_prefix: str
) -> None:
    receiver = await Instance.start(redis_url, redis_prefix, "rx")
    publisher = await Instance.start(redis_url, redis_prefix, "tx")
    went_down = asyncio.Event()
    receiver.link.on_down(went_down.set)
    try:
        sink = Sink("s")
        await receiver.login(1, sink)
        await publisher.fanout.publish([1], Event(frame=b"a", seq=1))
        await sink.wait_for(1)
        # Only this receiver's subscription (other tests share the Redis): by its address.
        host, port = receiver.fanout._pubsub.connection._writer.get_extra_info("sockname")[:2]
        admin: Any = aioredis.Redis.from_url(redis_url)
        try:
            assert await admin.client_kill_filter(addr=f"{host}:{port}") == 1
        finally:
            await admin.aclose()
        async with asyncio.timeout(HANG_GUARD):
            await went_down.wait()
        assert not receiver.link.up
        # The supervisor's next attempt, done here: a fresh subscription, read in bulk.
        assert await receiver.link._connect()
        assert _pushes(receiver.fanout._pubsub) is not None
        await receiver.registry.reserve(1, sink.name, 0)
        await publisher.fanout.publish([1], Event(frame=b"b", seq=2))
        await sink.wait_for(2)
        assert sink.tags() == [1, 2]
    finally:
        await publisher.stop()
        await receiver.stop()
