"""The GC policy around a reconnect storm and a drain (issue 16, target 1).

* A freeze after a collection costs nothing that grows with the frozen set:
  ``gc.get_freeze_count()`` walks every frozen object, so the policy counts
  only at start, at its hourly check and after its own full collection.
* A draining server holds the collector off (every connection turns into
  garbage at once; collecting it is work for a process about to end) and
  turns it back on when the stop ends, also when two servers share a process.

The collector is process-wide: every test leaves it enabled, unfrozen, with
no policy callback installed.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from presence_protocol import CloseCode
from presence_server.edge import gc_policy
from presence_server.edge.gc_policy import GcPolicy
from presence_server.metrics import create as create_metrics
from tests.server.client import login_dev
from tests.support.servers import running_servers, sqlite_url


class Cycle:
    """Garbage only the collector can free."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture(autouse=True)
def collector_on(gc_restored: None) -> Iterator[None]:
    gc.enable()
    yield
    assert gc.isenabled(), "a test left the collector off"


@pytest.fixture
def collections() -> Iterator[list[int]]:
    """Generations of the collections that run while the test does."""
    seen: list[int] = []

    def note(phase: str, info: dict[str, Any]) -> None:
        if phase == "stop":
            seen.append(int(info["generation"]))

    gc.callbacks.append(note)
    yield seen
    gc.callbacks.remove(note)


async def test_a_freeze_after_a_collection_does_not_walk_the_frozen_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    counted: list[int] = []
    real = gc.get_freeze_count

    def counting() -> int:
        counted.append(1)
        return real()

    monkeypatch.setattr(gc, "get_freeze_count", counting)
    metrics = create_metrics()
    policy = GcPolicy(metrics, lambda: 0).start()
    try:
        assert len(counted) == 1  # the start counts once (the growth rule's baseline)
        for _ in range(5):
            policy.froze.clear()
            gc.collect()  # as the interpreter's own full collections do in a storm
            await asyncio.wait_for(policy.froze.wait(), 30)
        assert policy.freezes >= 6
        assert len(counted) == 1, "a follow-up freeze counted the frozen objects"
        # The gauge shows the policy's last count; reading it walks nothing either.
        text = metrics.render()[0].decode()
        frozen = [
            line for line in text.splitlines() if line.startswith("presence_gc_frozen_objects ")
        ]
        assert float(frozen[0].split()[1]) > 0
        assert len(counted) == 1
        policy.collect_now()  # the maintenance pause counts again: it needs the figure
        assert len(counted) == 2
    finally:
        policy.stop()


async def test_a_held_policy_runs_no_collection_until_it_stops(collections: list[int]) -> None:
    first = GcPolicy(create_metrics(), lambda: 0).start()
    second = GcPolicy(create_metrics(), lambda: 0).start()
    try:
        first.hold()
        second.hold()
        assert not gc.isenabled()
        collections.clear()
        garbage = [Cycle() for _ in range(50_000)]  # far past the gen-0 threshold
        del garbage
        assert collections == [], "a collection ran during the drain"
        first.stop()
        assert not gc.isenabled(), "the other server still drains"
        second.stop()
        assert gc.isenabled()
        assert gc.get_freeze_count() == 0
        collections.clear()
        garbage = [Cycle() for _ in range(50_000)]
        del garbage
        assert collections, "collections did not come back"
    finally:
        first.stop()
        second.stop()


@pytest.mark.slow  # a real server with the process-wide policy
async def test_a_stopping_server_closes_everyone_with_4000_without_collecting(
    tmp_path: Path, collections: list[int]
) -> None:
    async with running_servers(sqlite_url(tmp_path / "presence.sqlite3")) as start:
        server = await start(gc_freeze=True, max_connections_per_user=0)
        clients = await asyncio.gather(*(login_dev(server.url, f"user{i}") for i in range(40)))
        original = server.hub.close
        seen_in_drain: list[tuple[bool, int]] = []

        async def close_hub() -> None:
            # The drain's last step (last seen, friends elsewhere, the database).
            garbage = [Cycle() for _ in range(50_000)]
            del garbage
            await original()
            seen_in_drain.append((gc.isenabled(), len(collections)))

        server.hub.close = close_hub  # type: ignore[method-assign]
        collections.clear()
        await server.stop()
        assert seen_in_drain == [(False, 0)], "collections ran while the server drained"
        assert gc.isenabled()
        assert gc.get_freeze_count() == 0
        codes = await asyncio.gather(*(c.closed() for c in clients))
        assert set(codes) == {CloseCode.SERVER_RESTART}
    assert len(gc_policy._holding) == 0
