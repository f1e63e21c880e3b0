"""The GC policy: short full collections, and no memory kept by closed connections.

Real server on SQLite, real websockets clients. The garbage collector is
process-wide, so every test leaves it unfrozen with the policy's callback gone.
"""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from presence_server import RunningServer
from presence_server.edge.gc_policy import GcPolicy, _on_gc
from presence_server.edge.transport import WebSocketOutput
from tests.server.client import Client, login_dev
from tests.support.servers import StartServer, running_servers, sqlite_url

pytestmark = [
    pytest.mark.slow,  # thousands of connections and full collections
    pytest.mark.usefixtures("gc_restored"),
]

ROUNDS = 4
PER_ROUND = 250
BATCH = 50
RELEASED_PER_CONNECTION = 50
"""Tracked objects a closed connection gives back at least (it holds a few hundred)."""


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[StartServer]:
    async with running_servers(sqlite_url(tmp_path / "presence.sqlite3")) as start:
        yield start


def connection_objects(server: RunningServer) -> list[object]:
    """Each open connection's session and its websockets connection (which,
    unlike the session, is full of reference cycles)."""
    found: list[object] = []
    for session in server.hub.connections:
        found.append(session)
        out = getattr(session, "out", None)
        assert isinstance(out, WebSocketOutput)
        found.append(out.ws)
    return found


async def metrics_text(server: RunningServer) -> str:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"http://127.0.0.1:{server.port}/metrics")
    response.raise_for_status()
    return response.text


def sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


async def open_round(server: RunningServer, round_no: int) -> list[Client]:
    clients: list[Client] = []
    for first in range(0, PER_ROUND, BATCH):
        clients += await asyncio.gather(
            *(
                login_dev(server.url, f"user{i}", f"r{round_no}")
                for i in range(first, first + BATCH)
            )
        )
    return clients


async def close_round(server: RunningServer, clients: list[Client]) -> None:
    live = list(server.hub.connections)
    await asyncio.gather(*(c.close() for c in clients))
    async with asyncio.timeout(60):
        await asyncio.gather(*(c.wait_finished() for c in live))


async def churn(server: RunningServer, policy: GcPolicy, tracked: weakref.WeakSet[object]) -> int:
    """Open and close ``ROUNDS * PER_ROUND`` connections, each round frozen while open.

    Returns the size of the frozen set while the last round was open.
    """
    frozen_while_open = 0
    for round_no in range(ROUNDS):
        clients = await open_round(server, round_no)
        tracked.update(connection_objects(server))
        assert len(server.hub.connections) == PER_ROUND
        policy.froze.clear()
        await asyncio.wait_for(policy.froze.wait(), 30)  # their objects are frozen now
        frozen_while_open = gc.get_freeze_count()
        await close_round(server, clients)
    return frozen_while_open


async def test_closed_connections_are_reclaimed_by_the_periodic_full_collection(
    start: StartServer,
) -> None:
    server = await start(max_connections_per_user=0)
    connections = server.hub.connections
    # Full collections only when nobody is connected: never in the middle of a round.
    policy = GcPolicy(
        server.metrics,
        lambda: len(connections),
        freeze_every=0.05,
        full_every=0.2,
        growth=1000.0,
        quiet_fraction=0.0,
    ).start()
    try:
        tracked: weakref.WeakSet[object] = weakref.WeakSet()
        frozen_while_open = await churn(server, policy, tracked)
        policy.full_collected.clear()
        await asyncio.wait_for(policy.full_collected.wait(), 30)
        assert len(tracked) == 0, f"{len(tracked)} closed connections still in memory"
        frozen = gc.get_freeze_count()
        released = frozen_while_open - frozen
        assert released > PER_ROUND * RELEASED_PER_CONNECTION, (frozen_while_open, frozen)
        text = await metrics_text(server)
        assert sample(text, "presence_gc_full_collections_total") >= 1
        assert sample(text, "presence_gc_freezes_total") >= ROUNDS
    finally:
        policy.stop()


async def test_without_the_full_collection_frozen_closed_connections_stay(
    start: StartServer,
) -> None:
    """Why the periodic unfreeze exists: a plain collection skips frozen cycles."""
    server = await start(max_connections_per_user=0)
    connections = server.hub.connections
    policy = GcPolicy(
        server.metrics, lambda: len(connections), freeze_every=0.05, full_every=3600.0
    ).start()
    try:
        tracked: weakref.WeakSet[object] = weakref.WeakSet()
        clients = await open_round(server, 0)
        tracked.update(connection_objects(server))
        policy.froze.clear()
        await asyncio.wait_for(policy.froze.wait(), 30)
        await close_round(server, clients)
        gc.collect()
        assert len(tracked) > 0, "connections are freed without the collector: no risk to test"
        policy.collect_now()
        assert len(tracked) == 0
    finally:
        policy.stop()


async def test_the_server_runs_the_policy_when_configured_and_undoes_it_on_stop(
    start: StartServer,
) -> None:
    plain = await start()
    assert gc.get_freeze_count() == 0, "embedded servers leave the collector alone"
    assert "presence_gc_freezes_total 0.0" in await metrics_text(plain)

    server = await start(gc_freeze=True)
    assert gc.get_freeze_count() > 0
    assert _on_gc in gc.callbacks
    client = await login_dev(server.url, "alice")
    gc.collect()  # a full collection: timed, and followed by a freeze
    await client.barrier()  # the loop has run the policy's follow-up
    text = await metrics_text(server)
    assert sample(text, 'presence_gc_pause_seconds_count{generation="2"}') >= 1
    assert sample(text, "presence_gc_freezes_total") >= 2
    assert sample(text, "presence_gc_frozen_objects") > 0

    # A second one in the same process: each freezes once after a collection,
    # neither answers the other's own collections with another freeze.
    other = await start(gc_freeze=True)
    before = [sample(await metrics_text(s), "presence_gc_freezes_total") for s in (server, other)]
    gc.collect()
    for _ in range(5):
        await client.barrier()
    after = [sample(await metrics_text(s), "presence_gc_freezes_total") for s in (server, other)]
    # (2: a collection of the interpreter's own may fall in between)
    assert all(1 <= a - b <= 2 for a, b in zip(after, before, strict=True)), (before, after)
    await client.close()

    await other.stop()
    assert gc.get_freeze_count() > 0, "the first server's policy still runs"
    await server.stop()
    assert gc.get_freeze_count() == 0
    assert _on_gc not in gc.callbacks
