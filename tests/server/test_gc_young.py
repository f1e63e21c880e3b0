"""The GC policy's young collections: replaced state is walked in small batches.

CPython starts a generation-0 collection when allocations minus deallocations
of tracked objects pass its threshold, and freeing an old object counts too;
so state replaced in place (what a server does on every update) never
triggers one, and the young generation fills with every replacement until a
single collection walks them all. The policy collects generations 0 and 1 on
a timer instead (``GcPolicy._young``). The collector is process-wide: each
test leaves it unfrozen with the policy's callback gone.
"""

from __future__ import annotations

import asyncio
import gc

import pytest

from presence_server.edge.gc_policy import GcPolicy
from presence_server.metrics import NullMetrics

pytestmark = pytest.mark.usefixtures("gc_restored")

HANG_GUARD = 30.0
ENTRIES = 20_000


def _young() -> int:
    return len(gc.get_objects(0)) + len(gc.get_objects(1))


def _replace_all(state: dict[int, list[int]], start: int) -> None:
    for key in state:
        state[key] = [start + key]  # a new tracked object in, an old one freed


async def test_state_replaced_in_place_is_collected_young_on_the_timer() -> None:
    policy = GcPolicy(NullMetrics(), lambda: 1, young_every=0.01).start()
    try:
        state = {i: [i] for i in range(ENTRIES)}
        gc.freeze()  # long-lived, as the policy leaves established state
        policy.young_collected.clear()
        _replace_all(state, ENTRIES)  # one callback: no timer can run inside it
        # What the interpreter alone leaves: every replacement is young.
        assert _young() >= ENTRIES
        async with asyncio.timeout(HANG_GUARD):
            await policy.young_collected.wait()
        assert _young() < ENTRIES // 10, "the young generations still hold the replacements"
    finally:
        policy.stop()


async def test_zero_turns_the_young_collections_off() -> None:
    policy = GcPolicy(NullMetrics(), lambda: 0, young_every=0).start()
    try:
        state = {i: [i] for i in range(ENTRIES)}
        gc.freeze()
        _replace_all(state, ENTRIES)
        await asyncio.sleep(0)  # a turn of the loop: nothing armed runs
        assert _young() >= ENTRIES
        assert not policy.young_collected.is_set()
    finally:
        policy.stop()


async def test_a_server_nobody_is_connected_to_does_not_wake_for_young_collections() -> None:
    """No busy timer on an idle server: with nobody connected the young
    collection is next due a ``freeze_every`` away, and it comes back to
    ``young_every`` once someone connects."""
    connected = 0
    policy = GcPolicy(
        NullMetrics(), lambda: connected, young_every=0.01, freeze_every=3600.0
    ).start()
    try:
        loop = asyncio.get_running_loop()
        due = policy._timers["young"].when() - loop.time()
        assert due > 3000.0, f"an idle server's young collection is due in {due:.3f} s"
        connected = 1
        policy._young()  # what the timer runs when it comes due
        due = policy._timers["young"].when() - loop.time()
        assert due <= 0.01
    finally:
        policy.stop()
