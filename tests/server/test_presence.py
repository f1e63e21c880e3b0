"""Presence: who receives it (only friends), merging devices, invisible, last seen."""

from __future__ import annotations

import time

from presence_protocol import (
    Activity,
    ActivityKind,
    Block,
    ErrorCode,
    FriendRemove,
    FriendRequest,
    PresenceUpdate,
    SeenStatus,
    SetPresence,
    Status,
)
from presence_server import RunningServer
from tests.support.clock import FakeClock
from tests.support.servers import StartServer

from .client import Client, befriend, login_dev
from .conftest import Login

CODING = Activity(editor="VS Code", language="Python", project="presence", since=1_700_000_000)
READING = Activity(kind=ActivityKind.READING, editor="Vim", language="Rust")


def about(client: Client, user_id: int) -> list[PresenceUpdate]:
    return [p for p in client.take(PresenceUpdate) if p.user_id == user_id]


async def test_presence_reaches_friends(login: Login) -> None:
    alice = await login("alice")
    bob = await login("bob")
    await befriend(alice, bob)
    await alice.ok(SetPresence(status=Status.DND, activity=CODING))
    update = await bob.expect(PresenceUpdate)
    assert update.user_id == alice.me
    assert (update.status, update.activity, update.last_seen) == (SeenStatus.DND, CODING, None)


async def test_presence_never_reaches_non_friends(login: Login) -> None:
    alice = await login("alice")
    stranger = await login("stranger")
    asked = await login("asked")  # alice asked them; not accepted
    asking = await login("asking")  # asked alice; not accepted
    blocked = await login("blocked")  # alice blocked them
    blocker = await login("blocker")  # blocked alice
    removed = await login("removed")  # was a friend
    friend = await login("friend")
    await alice.ok(FriendRequest(login="asked"))
    await asking.ok(FriendRequest(login="alice"))
    await befriend(alice, blocked)
    await alice.ok(Block(user_id=blocked.me))
    await befriend(alice, blocker)
    await blocker.ok(Block(user_id=alice.me))
    await befriend(alice, removed)
    await alice.ok(FriendRemove(user_id=removed.me))
    await befriend(alice, friend)
    observers = [stranger, asked, asking, blocked, blocker, removed, friend]
    for o in observers:
        await o.barrier()
        o.take(PresenceUpdate)

    await alice.ok(SetPresence(status=Status.AWAY, activity=CODING))
    await alice.close()  # going offline is presence too
    again = await login("alice", "desktop")
    await again.ok(SetPresence(status=Status.DND))
    for o in observers:
        await o.barrier()
    assert [p.status for p in about(friend, alice.me)] == [
        SeenStatus.AWAY,
        SeenStatus.OFFLINE,
        SeenStatus.ONLINE,
        SeenStatus.DND,
    ]
    for o in observers[:-1]:
        assert about(o, alice.me) == [], o.user
    # And the other way round: none of them leaks presence to alice.
    for o in observers[:-1]:
        await o.ok(SetPresence(status=Status.DND, activity=READING))
    await again.barrier()
    assert [p.user_id for p in again.take(PresenceUpdate)] == []


async def test_friend_snapshot_and_relation_carry_presence(login: Login) -> None:
    alice = await login("alice")
    bob = await login("bob")
    await alice.ok(SetPresence(status=Status.DND, activity=CODING))
    await befriend(alice, bob)
    bob2 = await login("bob", "desktop")
    assert bob2.snapshot is not None
    (friend,) = bob2.snapshot.friends
    assert (friend.presence.status, friend.presence.activity) == (SeenStatus.DND, CODING)


async def test_invisible_looks_offline(login: Login) -> None:
    alice = await login("alice")
    bob = await login("bob")
    await befriend(alice, bob)
    await alice.ok(SetPresence(status=Status.INVISIBLE, activity=CODING))
    update = await bob.expect(PresenceUpdate)
    assert update.status is SeenStatus.OFFLINE and update.activity is None
    assert update.last_seen is not None  # exactly as if alice had disconnected
    hidden_since = update.last_seen
    # A friend connecting now sees her offline too.
    bob2 = await login("bob", "desktop")
    assert bob2.snapshot is not None
    presence = bob2.snapshot.friends[0].presence
    assert (presence.status, presence.activity) == (SeenStatus.OFFLINE, None)
    assert presence.last_seen == hidden_since
    # Her own new device starts invisible (the chosen status carries over).
    alice2 = await login("alice", "desktop")
    assert alice2.snapshot is not None and alice2.snapshot.status is Status.INVISIBLE
    # Disconnecting while invisible changes nothing friends can see.
    await alice.close()
    await alice2.close()
    await bob.barrier()
    assert about(bob, alice.me) == []
    back = await login("alice", "third")
    await back.ok(SetPresence(status=Status.ONLINE))
    assert (await bob.expect(PresenceUpdate)).status is SeenStatus.ONLINE


async def test_devices_merge_into_one_presence(login: Login) -> None:
    bob = await login("bob")
    laptop = await login("alice", "laptop")
    await befriend(laptop, bob)
    desktop = await login("alice", "desktop")
    await desktop.barrier()  # its first command runs after the device counts as online
    await laptop.ok(SetPresence(status=Status.AWAY, activity=CODING))
    await desktop.ok(SetPresence(status=Status.ONLINE))
    await desktop.ok(SetPresence(status=Status.DND))
    await laptop.ok(SetPresence(status=Status.AWAY, activity=READING))
    await bob.barrier()
    seen = [(p.status, p.activity) for p in about(bob, laptop.me)]
    # online beats away, dnd beats away; the latest activity shows from any device.
    assert seen == [
        (SeenStatus.ONLINE, CODING),
        (SeenStatus.DND, CODING),
        (SeenStatus.DND, READING),
    ]
    # Invisible on one device hides all of them.
    await laptop.ok(SetPresence(status=Status.INVISIBLE))
    assert (await bob.expect(PresenceUpdate)).status is SeenStatus.OFFLINE
    await laptop.ok(SetPresence(status=Status.AWAY))
    assert (await bob.expect(PresenceUpdate)).status is SeenStatus.DND
    # The device that goes away first does not make her offline.
    await desktop.close()
    update = await bob.expect(PresenceUpdate)
    assert (update.status, update.last_seen) == (SeenStatus.AWAY, None)


async def test_last_seen_on_final_disconnect(
    start: StartServer, server: RunningServer, login: Login
) -> None:
    bob = await login("bob")
    laptop = await login("alice", "laptop")
    desktop = await login("alice", "desktop")
    await befriend(laptop, bob)
    await laptop.close()
    await bob.barrier()
    assert about(bob, laptop.me) == []  # still online on the desktop
    before = int(time.time())
    await desktop.close()
    update = await bob.expect(PresenceUpdate)
    assert update.status is SeenStatus.OFFLINE
    assert update.last_seen is not None and before <= update.last_seen <= time.time() + 1
    # Persisted: a friend logging in later, even after a restart, sees it.
    await server.stop()
    restarted = await start()
    bob2 = await login_dev(restarted.url, "bob")
    assert bob2.snapshot is not None
    assert bob2.snapshot.friends[0].presence.last_seen == update.last_seen
    await bob2.close()


async def test_timed_status_reverts_to_online(start: StartServer) -> None:
    """A timed status ends by the loop's own timer, through a real server.

    The server's wall clock is held at a whole second: ``until`` one second
    after it is in the future by construction. Read from the real clock, it
    was a second boundary away, and a machine too busy to deliver the command
    before that boundary got ``invalid_message`` instead of the status.
    """
    clock = FakeClock()
    server = await start(clock_ns=lambda: int(clock.now * 1_000_000_000))
    alice = await login_dev(server.url, "alice")
    bob = await login_dev(server.url, "bob")
    await befriend(alice, bob)
    until = int(clock.now) + 1
    await alice.ok(SetPresence(status=Status.DND, until=until))
    update = await bob.expect(PresenceUpdate)
    assert (update.status, update.until) == (SeenStatus.DND, until)
    reverted = await bob.expect(PresenceUpdate)  # a second later, on the loop's clock
    assert (reverted.status, reverted.until) == (SeenStatus.ONLINE, None)
    # The store agrees: the server's wall clock still reads the start, so a new
    # device starts online only because the revert was written.
    alice2 = await login_dev(server.url, "alice", "desktop")
    assert alice2.snapshot is not None and alice2.snapshot.status is Status.ONLINE
    for client in (alice, bob, alice2):
        await client.close()


async def test_until_in_the_past_is_invalid(login: Login) -> None:
    alice = await login("alice")
    reply = await alice.error(SetPresence(status=Status.AWAY, until=1_000))
    assert reply.code == ErrorCode.INVALID_MESSAGE


async def test_chosen_status_is_where_a_new_device_starts(login: Login) -> None:
    alice = await login("alice")
    await alice.ok(SetPresence(status=Status.DND))
    second = await login("alice", "desktop")
    assert second.snapshot is not None and second.snapshot.status is Status.DND
    # Away is per device (idle): a newly connected device starts online.
    await alice.ok(SetPresence(status=Status.AWAY))
    third = await login("alice", "third")
    assert third.snapshot is not None and third.snapshot.status is Status.ONLINE
