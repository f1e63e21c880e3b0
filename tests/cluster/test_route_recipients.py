"""The fan-out's recipients for ``ROUTE``, kept per friend tuple (``RedisFanout._recipients_of``).

Whatever was published before, and however often the bounded cache started
over, the ids ``ROUTE`` gets are exactly the distinct recipients, and the
local delivery sees each of them once. No Redis needed: nothing is sent.
"""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from presence_server.cluster import redis_fanout
from presence_server.cluster.redis_fanout import RedisFanout
from presence_server.cluster.redis_link import RedisLink

friends = st.lists(st.integers(1, 40), max_size=12).map(tuple)


@given(published=st.lists(st.one_of(friends, friends.map(list)), min_size=1, max_size=30))
def test_route_gets_exactly_the_distinct_recipients_whatever_came_before(
    published: list[tuple[int, ...] | list[int]],
) -> None:
    async def run() -> None:
        link = RedisLink("redis://127.0.0.1:1/0", ttl=60.0, instance="i")
        fanout = RedisFanout(link)
        try:
            for user_ids in published:
                ids, encoded = fanout._recipients_of(user_ids)
                assert sorted(ids) == sorted(set(user_ids))
                got = [int(x) for x in encoded.split(b",")] if encoded else []
                assert sorted(got) == sorted(set(user_ids))
        finally:
            await fanout.close()
            await link.close()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(redis_fanout, "RECIPIENTS_KEPT", 3)  # the cache starts over often
        asyncio.run(run())


def test_the_cache_of_recipients_is_bounded() -> None:
    async def run() -> int:
        link = RedisLink("redis://127.0.0.1:1/0", ttl=60.0, instance="i")
        fanout = RedisFanout(link)
        try:
            for n in range(redis_fanout.RECIPIENTS_KEPT * 2 + 5):
                fanout._recipients_of((n, n + 1))
            return len(fanout._recipients)
        finally:
            await fanout.close()
            await link.close()

    assert asyncio.run(run()) <= redis_fanout.RECIPIENTS_KEPT
