"""Instances sharing one PostgreSQL database take turns at the retention sweep.

Each instance sweeps on its own schedule. Two sweeps at the same moment used
to cross: each first records its own connected sessions as used, then deletes
the idle ones, among them the other's (still locked by the other's update),
and PostgreSQL aborted one of them as a deadlock. Now the first to take the
advisory lock sweeps and the other skips that round, and every expired
message is reported to its sender exactly once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import time

import asyncpg
import pytest

from presence_protocol import MessageExpired, MessageSent, SendMessage
from presence_server import RetentionPolicy, RunningServer, ServerLimits
from presence_server.storage.database import RETENTION_LOCK
from tests.server.client import Client, befriend, login_dev
from tests.support.servers import StartServer

pytestmark = [pytest.mark.postgres]

POLICY = RetentionPolicy(
    delivered_messages=100, undelivered_messages=1000, idle_sessions=500, sweep_interval=3600
)
"""Sessions go idle before messages expire, so at the sweep every connected
session is idle too: the case where two sweeps cross."""
NO_RATE_LIMIT = ServerLimits(commands_per_minute=100_000)
MESSAGES = 150
ROUNDS = 3


def at(servers: list[RunningServer], monkeypatch: pytest.MonkeyPatch, offset: int) -> None:
    """From now on every instance believes ``offset`` seconds have passed."""
    base = int(time.time())
    for server in servers:
        monkeypatch.setattr(server.hub, "now", lambda: base + offset)


class StampedEvent(asyncio.Event):
    """A sweeper's ``swept`` that notes the loop's time at each ``set``.

    The spacing of rounds is read from when each round ended, not from when
    the test got to run again after it: on a busy machine the test can wake
    a round late once and on time the next, and the gap it saw would be
    shorter than the one the sweeper kept.
    """

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def set(self) -> None:
        self.times.append(asyncio.get_running_loop().time())
        super().set()


async def send_many(sender: Client, to: Client, prefix: str, count: int) -> set[str]:
    ids: set[str] = set()
    for n in range(count):
        reply = await sender.request(
            SendMessage(to=to.me, text=f"message {n}", client_msg_id=f"{prefix}-{n}")
        )
        assert isinstance(reply, MessageSent), reply
        ids.add(reply.message_id)
    return ids


async def fetch(url: str, sql: str, *args: object) -> list[asyncpg.Record]:
    """Read the shared database directly, outside every instance."""
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def message_rows(url: str) -> list[asyncpg.Record]:
    return await fetch(url, "SELECT id, text, expired_at FROM messages")


async def test_two_instances_sweeping_at_once_expire_each_message_once(
    postgres_url: str,  # first: the database outlives the servers
    start: StartServer,
    redis_url: str,
    redis_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    shared = {
        "database_url": postgres_url,
        "redis_url": redis_url,
        "redis_prefix": redis_prefix,
        "retention": POLICY,
        "limits": NO_RATE_LIMIT,
    }
    one = await start(instance_id="one", **shared)
    two = await start(instance_id="two", **shared)
    alice = await login_dev(one.url, "alice")  # the sender, connected to one
    bob = await login_dev(two.url, "bob")  # receives but never acknowledges, on two
    await befriend(alice, bob)
    assert one.sweeper is not None and two.sweeper is not None

    expired: set[str] = set()
    for round_ in range(1, ROUNDS + 1):
        sent = await send_many(alice, bob, f"r{round_}", MESSAGES)
        at([one, two], monkeypatch, round_ * 1001)
        results = await asyncio.gather(one.sweeper.run_once(), two.sweeper.run_once())
        swept = [r for r in results if r is not None]
        assert swept, "somebody sweeps"
        reported = [str(e.message_id) for r in swept for e in r.expired]
        assert sorted(reported) == sorted(sent), "each message expired by exactly one sweep"
        expired |= sent

        for message_id in sorted(sent, key=int):
            notice = await alice.expect(MessageExpired, message_id=message_id)
            assert notice.to == bob.me
        await alice.barrier()
        assert alice.take(MessageExpired) == [], "no message reported twice"

    rows = await message_rows(postgres_url)  # tombstones (earlier rounds' have gone)
    assert sent <= {str(r["id"]) for r in rows} <= expired
    assert all(r["text"] == "" and r["expired_at"] is not None for r in rows)
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not [r for r in problems if "deadlock" in r.getMessage().lower()]
    retention_loggers = ("presence_server.domain.retention", "presence_server.session.sweeper")
    assert not [r for r in problems if r.name in retention_loggers], problems
    await alice.close()
    await bob.close()


async def test_a_sweep_that_finds_the_turn_taken_skips_it_and_waits_an_interval(
    postgres_url: str, start: StartServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    interval = 0.3
    server = await start(
        database_url=postgres_url,
        retention=dataclasses.replace(POLICY, idle_sessions=5000, sweep_interval=interval),
    )
    sweeper = server.sweeper
    assert sweeper is not None
    alice = await login_dev(server.url, "alice")
    bob = await login_dev(server.url, "bob")
    await befriend(alice, bob)
    await bob.close()
    (sent,) = await send_many(alice, bob, "m", 1)

    other = await asyncpg.connect(postgres_url)  # another instance in the middle of its sweep
    turn = other.transaction()
    await turn.start()
    await other.execute("SELECT pg_advisory_xact_lock($1)", RETENTION_LOCK)
    at([server], monkeypatch, 1001)
    rounds = sweeper.swept = StampedEvent()
    for _ in range(3):
        rounds.clear()
        await asyncio.wait_for(rounds.wait(), 10)
        assert sweeper.last is None  # skipped: the turn was taken
    # Skipping still records alice's connected session as used, without waiting.
    used = await fetch(
        postgres_url, "SELECT last_used_at FROM sessions WHERE id = $1", alice.session_id
    )
    assert [r["last_used_at"] for r in used] == [server.hub.now()]
    # One timer per interval, also while skipping: no retrying in a loop.
    gaps = [b - a for a, b in itertools.pairwise(rounds.times)]
    assert len(gaps) >= 2 and all(gap >= interval * 0.9 for gap in gaps), gaps
    assert [(str(r["id"]), r["text"]) for r in await message_rows(postgres_url)] == [
        (sent, "message 0")
    ]
    await alice.barrier()
    assert alice.take(MessageExpired) == []

    await turn.rollback()  # that sweep is over; the next round is ours
    await other.close()
    sweeper.swept.clear()
    await asyncio.wait_for(sweeper.swept.wait(), 10)
    assert sweeper.last is not None
    assert [str(e.message_id) for e in sweeper.last.expired] == [sent]
    assert (await alice.expect(MessageExpired)).message_id == sent
    await alice.close()
