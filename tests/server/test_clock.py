"""The server reads time from one injected clock (``ServerConfig.clock_ns``), so
a test sets the time instead of waiting for it or patching the hub."""

from __future__ import annotations

from presence_protocol import (
    Message,
    MessageSent,
    PresenceUpdate,
    SeenStatus,
    SendMessage,
    SetPresence,
    Status,
)
from tests.support.clock import FakeClock
from tests.support.servers import StartServer

from .client import befriend, login_dev

THEN = 1_600_000_000  # 2020: long past by the wall clock


async def test_times_and_timed_statuses_follow_the_injected_clock(start: StartServer) -> None:
    clock = FakeClock(start=THEN)
    server = await start(clock_ns=lambda: int(clock() * 1_000_000_000))
    alice = await login_dev(server.url, "alice")
    bob = await login_dev(server.url, "bob")
    await befriend(alice, bob)

    sent = await alice.request(SendMessage(to=bob.me, text="hi", client_msg_id="m1"))
    assert isinstance(sent, MessageSent) and sent.sent_at == THEN
    assert (await bob.expect(Message)).sent_at == THEN

    # In the future by the server's clock, though long past by the wall clock.
    await alice.ok(SetPresence(status=Status.DND, until=THEN + 3600))
    dnd = await bob.expect(PresenceUpdate, status=SeenStatus.DND)
    assert dnd.until == THEN + 3600

    # A new device starts with the chosen status while it lasts by the
    # server's clock, and online once that clock has passed its end.
    clock.now = THEN + 60
    desk = await login_dev(server.url, "alice", "desk")
    assert desk.snapshot is not None and desk.snapshot.status is Status.DND
    clock.now = THEN + 7200
    laptop = await login_dev(server.url, "alice", "laptop")
    assert laptop.snapshot is not None and laptop.snapshot.status is Status.ONLINE
    for client in (alice, bob, desk, laptop):
        await client.close()
