"""The per-user device cap holds when logins arrive at the same moment.

The cap used to be counted before the device was registered, with several
awaits in between (the user upsert, the new session), so ten logins sent at
once all passed. Now the count and the registration are one step.
"""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from presence_protocol import AuthOk, CloseCode, Error, ErrorCode, Hello, LoginDev, Snapshot
from presence_server import RunningServer
from presence_server.cluster.registry import InProcessRegistry
from presence_server.domain.presence import DeviceState
from tests.support.servers import Database, StartServer

from .client import Client, login_dev

CAP = 2
ATTEMPTS = 10


async def _handlers_left(server: RunningServer, count: int) -> None:
    """Wait until only ``count`` connection handlers still run: the others'
    clean-up (which gives their device slots back) is done."""
    async with asyncio.timeout(60):
        while True:
            running = [t for t in server._handlers if not t.done()]
            if len(running) <= count:
                return
            await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)


async def _attempt(url: str, device: str) -> tuple[Client, object]:
    client = await Client.open(url)
    await client.expect(Hello)
    return client, await client.request(LoginDev(login="alice", device=device))


async def test_ten_logins_at_once_with_a_cap_of_two_admit_exactly_two(
    start: StartServer, database: Database
) -> None:
    server = await start(max_connections_per_user=CAP)
    attempts = await asyncio.gather(*(_attempt(server.url, f"d{i}") for i in range(ATTEMPTS)))
    admitted = [c for c, reply in attempts if isinstance(reply, AuthOk)]
    refused = [(c, r) for c, r in attempts if not isinstance(r, AuthOk)]
    assert len(admitted) == CAP, [r for _, r in attempts]
    for client, reply in refused:
        assert isinstance(reply, Error) and reply.code == ErrorCode.RATE_LIMITED, reply
        assert await client.closed() == CloseCode.TRY_AGAIN_LATER
    # A refused login created no session: only the admitted devices have one.
    sessions = await database.column("SELECT count(*) FROM sessions")
    assert sessions == [CAP]
    for client in admitted:
        await client.expect(Snapshot)

    # A slot comes back when a device leaves (and a refused login took none).
    await admitted[0].close()
    await _handlers_left(server, 1)
    again = await login_dev(server.url, "alice", "again")
    for client in (admitted[1], again):
        await client.close()


async def test_a_login_that_leaves_before_it_finishes_gives_its_slot_back(
    start: StartServer,
) -> None:
    server = await start(max_connections_per_user=1)
    for i in range(3):
        client = await Client.open(server.url)
        await client.expect(Hello)
        await client.send(LoginDev(login="alice", device=f"gone-{i}", id=1))
        await client.close()  # at once: the login may still be half done
    # Once their handlers are done, every one of them has let go of its slot.
    await _handlers_left(server, 0)
    client, reply = await _attempt(server.url, "stays")
    assert isinstance(reply, AuthOk), reply
    await client.close()


# ---------------------------------------------------------------- the rule itself

operations = st.lists(
    st.tuples(st.sampled_from(["reserve", "put", "remove"]), st.integers(0, 5)),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(cap=st.integers(0, 4), ops=operations)
def test_reserved_and_registered_devices_never_exceed_the_cap(
    cap: int, ops: list[tuple[str, int]]
) -> None:
    """Over any sequence of reservations, presence writes and removals: a
    reservation succeeds iff a slot is free (or the device holds one), the
    count never exceeds the cap, and a refused reservation changes nothing."""

    async def run() -> None:
        registry = InProcessRegistry()
        held: set[str] = set()
        for op, n in ops:
            device = f"d{n}"
            if op == "reserve":
                before = await registry.device_count(1)
                ok = await registry.reserve(1, device, cap)
                expected = cap == 0 or device in held or len(held) < cap
                assert ok is expected
                if ok:
                    held.add(device)
                else:
                    assert await registry.device_count(1) == before
            elif op == "put" and device in held:
                await registry.put(1, device, DeviceState())
            elif op == "remove":
                await registry.remove(1, device)
                held.discard(device)
            assert await registry.device_count(1) == len(held)
            if cap:
                assert len(held) <= cap
            seen = (await registry.seen([1]))[1]
            assert seen.seen.offline is not bool(registry._devices.get(1))

    asyncio.run(run())
