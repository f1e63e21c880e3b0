"""Each documented limit answers with its documented error, and only for the one who hit it."""

from __future__ import annotations

from presence_protocol import (
    Ack,
    Activity,
    ErrorCode,
    FriendRequest,
    ListSessions,
    PresenceUpdate,
    Sessions,
    SetPresence,
    Status,
)
from presence_server import ServerLimits
from tests.support.clock import FakeClock
from tests.support.servers import StartServer, hand_clock

from .client import befriend, login_dev


async def test_commands_per_minute_per_connection(start: StartServer) -> None:
    server = await start(limits=ServerLimits(commands_per_minute=5))
    alice = await login_dev(server.url, "alice")  # the login was command 1
    other_device = await login_dev(server.url, "alice", "desktop")
    for _ in range(3):
        assert isinstance(await alice.request(ListSessions()), Sessions)
    for _ in range(20):
        await alice.send(Ack(seq=0))  # acks are not counted
    assert isinstance(await alice.request(ListSessions()), Sessions)  # command 5
    reply = await alice.error(ListSessions())
    assert reply.code == ErrorCode.RATE_LIMITED
    assert reply.retry_after is not None and 0 < reply.retry_after <= 60
    # The limit is per connection: the same user's other device is unaffected.
    assert isinstance(await other_device.request(ListSessions()), Sessions)
    await alice.close()
    await other_device.close()


async def test_presence_updates_coalesce_and_the_latest_lands(start: StartServer) -> None:
    server = await start(
        limits=ServerLimits(presence_updates_per_window=2, presence_window_seconds=0.5)
    )
    # The window ends when the test says so, not after half a second of a
    # machine that may be too busy to send five updates in that time.
    clock = hand_clock(server, FakeClock())
    alice = await login_dev(server.url, "alice")
    bob = await login_dev(server.url, "bob")
    await befriend(alice, bob)
    for i in range(1, 6):
        # Every update is accepted (ok), none is refused.
        await alice.ok(SetPresence(status=Status.ONLINE, activity=Activity(project=f"p{i}")))
    seen = [await bob.expect(PresenceUpdate) for _ in range(2)]
    # Two apply at once; the rest wait for the end of the window.
    assert [p.activity.project if p.activity else None for p in seen] == ["p1", "p2"]
    clock.advance(0.375)  # binary fractions: the two steps add up exactly
    await bob.barrier()
    assert bob.take(PresenceUpdate) == []
    clock.advance(0.125)
    # At the end of the window the last of the rest lands, and only it.
    latest = await bob.expect(PresenceUpdate)
    assert latest.activity is not None and latest.activity.project == "p5"
    await bob.barrier()
    assert bob.take(PresenceUpdate) == []
    await alice.close()
    await bob.close()


async def test_friend_requests_per_hour_per_user(start: StartServer) -> None:
    server = await start(limits=ServerLimits(friend_requests_per_hour=2))
    alice = await login_dev(server.url, "alice")
    desktop = await login_dev(server.url, "alice", "desktop")
    await login_dev(server.url, "bob")
    await alice.ok(FriendRequest(login="bob"))
    assert (await alice.error(FriendRequest(login="nobody"))).code == ErrorCode.UNKNOWN_USER
    limited = await alice.error(FriendRequest(login="carol"))
    assert limited.code == ErrorCode.RATE_LIMITED
    assert limited.retry_after is not None and 3500 < limited.retry_after <= 3600
    # Per user, across devices.
    assert (await desktop.error(FriendRequest(login="carol"))).code == ErrorCode.RATE_LIMITED
    # Other commands still work.
    assert isinstance(await alice.request(ListSessions()), Sessions)
    other = await login_dev(server.url, "dave")
    await other.ok(FriendRequest(login="bob"))  # another user is not limited
    await alice.close()
    await desktop.close()
    await other.close()
