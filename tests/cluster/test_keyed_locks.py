"""The per-user locks of the hub and the registry (``cluster.locks.KeyedLocks``).

What a user would notice if they were wrong: two changes of one user applied
at once (a lost update, deltas out of order), a change that never runs (a
lock never handed on after a cancelled waiter), or memory kept per user who
ever changed anything. Checked over random schedules of holders, each taking
a random set of keys, some cancelled while they wait or while they hold.
"""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from presence_server.cluster.locks import KeyedLocks

holder = st.tuples(
    st.lists(st.integers(min_value=1, max_value=4), min_size=1, max_size=3),  # keys
    st.integers(min_value=0, max_value=3),  # loop turns spent holding them
    st.sampled_from(["finish", "cancel waiting", "cancel holding"]),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(holder, min_size=1, max_size=12))
def test_each_key_has_one_holder_at_a_time_and_everything_is_let_go(
    schedule: list[tuple[list[int], int, str]],
) -> None:
    async def run() -> None:
        locks = KeyedLocks()
        holding: dict[int, int] = {}  # key -> holder index
        finished: list[int] = []

        async def hold(index: int, keys: list[int], turns: int) -> None:
            async with locks.hold(*keys):
                for key in set(keys):
                    assert key not in holding, f"key {key} held by {holding.get(key)} and {index}"
                    holding[key] = index
                try:
                    for _ in range(turns):
                        await asyncio.sleep(0)
                finally:
                    for key in set(keys):
                        del holding[key]
            finished.append(index)

        tasks = [
            asyncio.get_running_loop().create_task(hold(i, keys, turns))
            for i, (keys, turns, _) in enumerate(schedule)
        ]
        await asyncio.sleep(0)  # every task has started: some hold, some wait
        for task, (_, _, fate) in zip(tasks, schedule, strict=True):
            if fate == "cancel waiting":
                task.cancel()
        await asyncio.sleep(0)
        for task, (_, _, fate) in zip(tasks, schedule, strict=True):
            if fate == "cancel holding":
                task.cancel()
        async with asyncio.timeout(30):  # a deadlock would hang here
            await asyncio.gather(*tasks, return_exceptions=True)
        assert holding == {}
        assert len(locks) == 0, "a key is still held after every holder is gone"
        for i, (_, _, fate) in enumerate(schedule):
            if fate == "finish":
                assert i in finished, f"holder {i} was never given its keys"

    asyncio.run(run())


def test_waiters_get_a_key_in_the_order_they_asked() -> None:
    async def run() -> list[int]:
        locks = KeyedLocks()
        order: list[int] = []
        await locks.acquire(7)

        async def wait(index: int) -> None:
            async with locks.hold(7):
                order.append(index)

        tasks = [asyncio.get_running_loop().create_task(wait(i)) for i in range(5)]
        await asyncio.sleep(0)
        assert locks.locked(7) and order == []
        locks.release(7)
        await asyncio.gather(*tasks)
        assert not locks.locked(7)
        return order

    assert asyncio.run(run()) == [0, 1, 2, 3, 4]


def test_a_waiter_cancelled_right_after_it_was_handed_the_key_passes_it_on() -> None:
    async def run() -> None:
        locks = KeyedLocks()
        await locks.acquire(1)
        first = asyncio.get_running_loop().create_task(locks.acquire(1))
        second = asyncio.get_running_loop().create_task(locks.acquire(1))
        await asyncio.sleep(0)  # both wait
        locks.release(1)  # handed to the first ...
        first.cancel()  # ... which is cancelled before it runs
        async with asyncio.timeout(30):
            await second  # the second gets it
        assert first.cancelled()
        locks.release(1)
        assert len(locks) == 0

    asyncio.run(run())
