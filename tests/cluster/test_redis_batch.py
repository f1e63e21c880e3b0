"""The link's command batch on a real Redis: one write per burst, in order, exactly once.

``RedisBatch`` carries every registry write and every fan-out publish of an
instance, so what it promises is what cross-instance presence relies on:

* every queued command runs in Redis exactly once, in the order it was
  queued, including those of callers cancelled while waiting;
* each caller gets its own replies, in order; an error reply belongs to its
  command only;
* a burst queued together costs one write (the point of the batch);
* writes are pipelined: one does not wait for the replies of the one before;
* a broken connection fails every write that was on it, and the next write
  works on a fresh connection;
* the registry's scripts survive a Redis that lost them (a restart).
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import os
import secrets
from collections.abc import AsyncIterator, Mapping

import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.exceptions import ResponseError

from presence_protocol import Status
from presence_server.cluster.redis_batch import BATCH_COMMANDS, RedisBatch, replies_of
from presence_server.cluster.redis_link import REDIS_ERRORS, RedisLink
from presence_server.cluster.redis_registry import RedisRegistry
from presence_server.cluster.registry import Change
from presence_server.domain.presence import DeviceState
from tests.support.services import RedisProcess, require

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.timeout(600)]

HANG_GUARD = 30.0
"""Seconds any one step may take (a loopback round trip takes well under a millisecond)."""

caller = st.tuples(
    st.lists(st.booleans(), min_size=1, max_size=5),  # per command: valid (True) or an error
    st.booleans(),  # cancelled right after queuing
    st.booleans(),  # waits for its replies (``execute``), or not (``send``, an error callback)
)


def _redis_url() -> str:
    url = os.environ.get("TEST_REDIS_URL", "")
    require(bool(url), "needs Redis: set $TEST_REDIS_URL (scripts/start_services.sh)")
    return url


@dataclasses.dataclass
class Linked:
    link: RedisLink
    other: aioredis.Redis
    """A client of its own, to look at Redis (and kill the batch's connection)."""
    prefix: str


@pytest.fixture
async def linked() -> AsyncIterator[Linked]:
    """A link under a key prefix of its own; its keys are deleted afterwards."""
    url = _redis_url()
    prefix = f"b{secrets.token_hex(4)}:"
    link = RedisLink(url, ttl=60.0, prefix=prefix)
    other = aioredis.Redis.from_url(url)
    try:
        yield Linked(link, other, prefix)
    finally:
        keys = await other.keys(f"{prefix}*")
        if keys:
            await other.delete(*keys)
        await other.aclose()
        await link.close()


@settings(
    max_examples=int(os.environ.get("PRESENCE_BATCH_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(callers=st.lists(caller, min_size=1, max_size=40), waves=st.integers(1, 4))
def test_commands_run_once_in_queue_order_and_each_caller_gets_its_own_replies(
    callers: list[tuple[list[bool], bool, bool]], waves: int
) -> None:
    url = _redis_url()

    async def run() -> None:
        prefix = f"b{secrets.token_hex(4)}:"
        link = RedisLink(url, ttl=60.0, prefix=prefix)
        batch = link.batch
        # A wave is queued in one turn; on a busy machine the process may
        # lose its core in the middle of it, and the budget would then (rightly)
        # write what was queued so far: this test counts writes per wave.
        batch.budget = math.inf
        key = f"{prefix}log"
        bad = f"{prefix}notanumber"
        await link.client.set(bad, "x")
        expected: list[bytes] = []
        tasks: list[tuple[asyncio.Task[list[object]], list[bool], bool, list[bytes]]] = []
        heard: dict[int, list[BaseException]] = {}  # callers that do not wait: their errors
        try:
            # Callers arrive in ``waves`` bursts; a burst is queued within one
            # tick of the loop, as concurrent connections' changes are.
            per_wave = -(-len(callers) // waves)
            for start in range(0, len(callers), per_wave):
                wave: list[tuple[asyncio.Task[list[object]], list[bool], bool, list[bytes]]] = []
                for n, (valid, cancel, waits) in enumerate(
                    callers[start : start + per_wave], start
                ):
                    commands: list[tuple[str, ...]] = []
                    values: list[bytes] = []
                    for i, ok in enumerate(valid):
                        value = f"{n}.{i}".encode()
                        if ok:
                            commands.append(("RPUSH", key, value.decode()))
                            values.append(value)
                        else:
                            commands.append(("INCR", bad))  # an error reply, nothing written
                    expected += values
                    if not waits:
                        heard[n] = []

                        async def queue(
                            commands: list[tuple[str, ...]] = commands,
                            values: list[bytes] = values,
                            errors: list[BaseException] = heard[n],
                        ) -> list[bytes]:
                            # In a task like the waiting callers, so that all
                            # queue in the order they were created.
                            batch.send(commands, errors.append)
                            return values

                        tasks.append((asyncio.ensure_future(queue()), valid, False, values))  # type: ignore[arg-type]
                        continue
                    task = asyncio.ensure_future(batch.execute(commands))
                    tasks.append((task, valid, cancel, values))
                    wave.append((task, valid, cancel, values))
                await asyncio.sleep(0)  # the flusher starts: this wave is in one write
                for task, _, cancel, _ in wave:
                    if cancel:
                        task.cancel()
            async with asyncio.timeout(HANG_GUARD):
                await asyncio.gather(*(t for t, *_ in tasks), return_exceptions=True)
                await batch.call("PING")  # answered: every write before it was read
            # Exactly once, in queue order, cancelled callers' commands included.
            assert await link.client.lrange(key, 0, -1) == expected
            # A caller that did not wait heard of its first error reply, once,
            # and of nothing when all its commands went well.
            for n, errors in heard.items():
                valid = callers[n][0]
                assert len(errors) == (0 if all(valid) else 1), (n, valid, errors)
                assert all(isinstance(e, ResponseError) for e in errors)
            position = 0
            for task, valid, _cancel, values in tasks:
                if task.cancelled() or task.result() is values:
                    # Cancelled, or did not wait: its place in the list only.
                    position += len(values)
                    continue
                replies = task.result()
                assert len(replies) == len(valid)
                for ok, reply in zip(valid, replies, strict=True):
                    if ok:
                        position += 1
                        assert reply == position  # RPUSH answers the list's new length
                    else:
                        assert isinstance(reply, ResponseError)
            commands_sent = sum(len(v) for _, v, _, _ in tasks)
            assert batch.commands == commands_sent + 1  # and the PING
            # One write per wave (more only where a wave exceeds one write's size).
            assert batch.writes <= waves + 1 + commands_sent // BATCH_COMMANDS
        finally:
            await link.client.delete(key, bad)
            await link.close()

    asyncio.run(run())


async def test_a_broken_connection_fails_its_write_and_the_next_one_works(linked: Linked) -> None:
    link, other, prefix = linked.link, linked.other, linked.prefix
    async with asyncio.timeout(HANG_GUARD):
        client_id = await link.batch.call("CLIENT", "ID")
        await other.client_kill_filter(_id=client_id)
        with pytest.raises(REDIS_ERRORS):
            await link.batch.call("SET", f"{prefix}k", "lost")
        assert await link.batch.call("SET", f"{prefix}k", "kept") == b"OK"
        assert await other.get(f"{prefix}k") == b"kept"
        assert await link.batch.call("CLIENT", "ID") != client_id


async def test_a_write_does_not_wait_for_the_replies_of_the_one_before(linked: Linked) -> None:
    """Pipelined: a command queued while an earlier write is unanswered goes
    out at the end of its own turn (with one write in flight at a time it
    waited out the earlier round trip first). Replies still come in order."""
    batch, prefix = linked.link.batch, linked.prefix
    async with asyncio.timeout(HANG_GUARD):
        await batch.call("PING")  # connected
        # Redis answers BLPOP only once the list gets an element.
        popped = batch.submit([("BLPOP", f"{prefix}list", HANG_GUARD)])
        await asyncio.sleep(0)  # one turn: the write goes out
        writes = batch.writes
        later = batch.submit([("SET", f"{prefix}k", "v")])
        await asyncio.sleep(0)
        assert batch.writes == writes + 1  # written, the BLPOP still unanswered
        assert not popped.done() and not later.done()
        await linked.other.rpush(f"{prefix}list", "x")
        assert replies_of(await popped) == [[f"{prefix}list".encode(), b"x"]]
        assert replies_of(await later) == [b"OK"]


async def test_a_turn_that_keeps_queueing_writes_once_its_budget_is_spent() -> None:
    """A long turn (a backlog) does not hold its first commands to its end:
    once the oldest queued command has waited the budget, what is queued is
    written inside the turn. Budget 0: every command after the first."""
    link = RedisLink(_redis_url(), ttl=60.0)
    batch = link.batch
    try:
        async with asyncio.timeout(HANG_GUARD):
            await batch.call("PING")  # connected
            batch.budget = 0.0
            writes = batch.writes
            pings = [batch.submit([("PING",)]) for _ in range(4)]
            assert batch.writes == writes + 3  # inside this turn, no await yet
            assert [replies_of(await p) for p in pings] == [[b"PONG"]] * 4
    finally:
        await link.close()


async def test_a_write_left_unanswered_past_the_timeout_fails_and_the_next_one_works(
    linked: Linked,
) -> None:
    """Redis not answering (here: a BLPOP that blocks the connection) fails
    the write once the timeout has passed, and every write behind it on that
    connection; the next write goes out on a fresh connection."""
    prefix = linked.prefix
    batch = RedisBatch(linked.other.connection_pool, 0.2)
    try:
        async with asyncio.timeout(HANG_GUARD):
            client_id = await batch.call("CLIENT", "ID")
            stuck = batch.submit([("BLPOP", f"{prefix}list", HANG_GUARD)])
            await asyncio.sleep(0)
            behind = batch.submit([("SET", f"{prefix}k", "maybe")])
            for written in (stuck, behind):
                with pytest.raises(TimeoutError):
                    replies_of(await written)
            assert await batch.call("SET", f"{prefix}k", "kept") == b"OK"
            assert await batch.call("CLIENT", "ID") != client_id
    finally:
        await batch.close()


async def test_a_broken_connection_fails_every_write_in_flight_on_it(linked: Linked) -> None:
    batch, other, prefix = linked.link.batch, linked.other, linked.prefix
    async with asyncio.timeout(HANG_GUARD):
        client_id = await batch.call("CLIENT", "ID")
        first = batch.submit([("BLPOP", f"{prefix}list", HANG_GUARD)])
        await asyncio.sleep(0)
        second = batch.submit([("SET", f"{prefix}k", "maybe")])
        await asyncio.sleep(0)
        await other.client_kill_filter(_id=client_id)
        for written in (first, second):
            with pytest.raises(REDIS_ERRORS):
                replies_of(await written)
        assert await batch.call("SET", f"{prefix}k", "kept") == b"OK"
        assert await batch.call("CLIENT", "ID") != client_id
        assert await other.get(f"{prefix}k") == b"kept"


async def test_a_closed_batch_refuses_commands_with_a_redis_error() -> None:
    link = RedisLink(_redis_url(), ttl=60.0)
    await link.close()
    with pytest.raises(REDIS_ERRORS):
        await link.batch.call("PING")


async def test_the_registry_writes_after_redis_lost_its_scripts(
    redis_server: RedisProcess,
) -> None:
    """A Redis restarted without its script cache (or ``SCRIPT FLUSH``): the
    first change sends the script's text, the link stays up, nothing is lost.
    The change did not wait for Redis (``RedisRegistry.put``), so what Redis
    answered is published again: friends end with the version Redis holds."""
    link = RedisLink(redis_server.url, ttl=60.0, instance="i")
    registry = RedisRegistry(link)
    published: list[Change] = []

    async def record(changes: Mapping[int, Change]) -> None:
        published.extend(changes.values())

    registry.on_changes = record
    state = DeviceState(Status.ONLINE, None, None, 1, 1)
    try:
        async with asyncio.timeout(HANG_GUARD):
            assert await link._connect()
            assert await registry.reserve(7, "c1", 0)
            await link.client.script_flush()
            change = await registry.put(7, "c1", state)
            assert change.before.offline and not change.after.offline
            await registry.settled()
            assert link.up
            seen = await registry.seen([7])
            assert seen[7].seen == change.after
            told = max([change, *published], key=lambda c: c.version)
            assert told.after == change.after and told.version == seen[7].version
            await link.client.script_flush()
            gone = await registry.remove(7, "c1")
            assert link.up and gone.after.offline
            assert (await registry.seen([7]))[7].version == 0
    finally:
        await registry.close()
        await link.close()


async def test_a_presence_change_does_not_wait_for_redis_once_every_device_is_known(
    redis_server: RedisProcess,
) -> None:
    """A login's slot waits for Redis's answer; it says every device of the
    user is this process's, so the presence changes that follow are computed
    here and returned before their write is answered, under the version
    Redis then stores (``RedisRegistry.put``)."""
    link = RedisLink(redis_server.url, ttl=60.0, instance="i")
    registry = RedisRegistry(link)
    states = [DeviceState(status, None, None, n, n) for n, status in enumerate(Status, 1)]
    try:
        async with asyncio.timeout(HANG_GUARD):
            assert await link._connect()
            writes = link.batch.writes
            assert await registry.reserve(7, "c1", 0)
            assert link.batch.writes > writes  # the login's slot waited for its reply
            versions = []
            for state in states:
                writes = link.batch.writes
                change = await registry.put(7, "c1", state)
                assert link.batch.writes == writes  # returned before any reply
                versions.append(change.version)
                await registry.settled()
                seen = (await registry.seen([7]))[7]
                assert (seen.seen, seen.version) == (change.after, change.version)
            assert versions == sorted(set(versions))
            assert registry.corrections == 0
    finally:
        await registry.close()
        await link.close()
