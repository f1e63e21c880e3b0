"""The chaos run on three instances sharing PostgreSQL and Redis.

The proxy spreads connections over the instances like a load balancer (a
reconnect may land on any instance that answers); kill -9 and SIGTERM hit
one instance at a time. Presence of devices on a killed instance expires
through the presence TTL (3 s here), so the final presence check converges.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from tests.support.processes import ServerProcess, redis_cluster

from .test_chaos import exchange_through_chaos

pytestmark = [
    pytest.mark.slow,
    pytest.mark.usefixtures("app_log"),
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.timeout(1200),
]

INSTANCES = 3
PER_SENDER = 500


@pytest.fixture
async def cluster(
    tmp_path: Path, postgres_url: str, redis_url: str, redis_prefix: str
) -> AsyncIterator[list[ServerProcess]]:
    async with redis_cluster(
        tmp_path,
        INSTANCES,
        postgres_url,
        redis_url,
        redis_prefix,
        *("--presence-ttl", "3", "--commands-per-minute", "1000000"),
        instance_prefix="chaos",
    ) as servers:
        yield servers


async def test_messages_through_chaos_across_instances_arrive_exactly_once_in_order(
    cluster: list[ServerProcess],
    postgres_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    async def stored() -> tuple[int, int, int]:
        conn = await asyncpg.connect(postgres_url)
        try:
            count, texts = await conn.fetchrow(
                "SELECT count(*), count(DISTINCT text) FROM messages"
            )
            friendships = await conn.fetchval("SELECT count(*) FROM friendships")
        finally:
            await conn.close()
        return int(count), int(texts), int(friendships)

    line = await exchange_through_chaos(cluster, tmp_path, PER_SENDER, stored)
    with capsys.disabled():
        print(f"\nchaos ({INSTANCES} instances, PostgreSQL + Redis): {line}")
