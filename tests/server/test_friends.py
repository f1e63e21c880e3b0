"""Friends with mutual consent: every path, every error, and blocking that never shows."""

from __future__ import annotations

from presence_protocol import (
    Block,
    ErrorCode,
    FriendAccept,
    FriendCancel,
    FriendDecline,
    FriendRemove,
    FriendRequest,
    Relation,
    RelationUpdate,
    SeenStatus,
    Unblock,
)
from presence_server import ServerLimits
from tests.support.servers import StartServer

from .client import Client, befriend, login_dev
from .conftest import Login


def relations(client: Client) -> list[tuple[str, Relation]]:
    return [(u.user.login, u.relation) for u in client.take(RelationUpdate)]


async def test_request_and_accept(login: Login) -> None:
    alice = await login("alice")
    bob = await login("bob")
    await alice.ok(FriendRequest(login="BOB"))  # logins are case-insensitive
    incoming = await bob.expect(RelationUpdate)
    assert (incoming.user.id, incoming.relation, incoming.presence) == (
        alice.me,
        Relation.INCOMING,
        None,
    )
    outgoing = await alice.expect(RelationUpdate)
    assert (outgoing.user.login, outgoing.relation) == ("bob", Relation.OUTGOING)

    await bob.ok(FriendAccept(user_id=alice.me))
    for me, other in ((alice, bob), (bob, alice)):
        update = await me.expect(RelationUpdate)
        assert update.user.id == other.me and update.relation is Relation.FRIEND
        # The new friend's current presence comes with the relation.
        assert update.presence is not None and update.presence.status is SeenStatus.ONLINE


async def test_snapshot_lists_every_relation(login: Login) -> None:
    alice = await login("alice")
    bob = await login("bob")
    carol = await login("carol")
    dave = await login("dave")
    erin = await login("erin")
    await befriend(alice, bob)
    await carol.ok(FriendRequest(login="alice"))
    await alice.ok(FriendRequest(login="dave"))
    await alice.ok(Block(user_id=erin.me))
    await dave.barrier()
    again = await login("alice", "desktop")
    snap = again.snapshot
    assert snap is not None
    assert [f.user.login for f in snap.friends] == ["bob"]
    assert snap.friends[0].presence.status is SeenStatus.ONLINE
    assert [u.login for u in snap.incoming] == ["carol"]
    assert [u.login for u in snap.outgoing] == ["dave"]
    assert [u.login for u in snap.blocked] == ["erin"]


async def test_every_device_of_both_sides_is_told(login: Login) -> None:
    alice = await login("alice", "laptop")
    alice2 = await login("alice", "desktop")
    bob = await login("bob")
    await alice.ok(FriendRequest(login="bob"))
    assert (await alice2.expect(RelationUpdate)).relation is Relation.OUTGOING
    assert (await bob.expect(RelationUpdate)).relation is Relation.INCOMING


async def test_decline(login: Login) -> None:
    alice = await login("alice")
    bob = await login("bob")
    await alice.ok(FriendRequest(login="bob"))
    await bob.ok(FriendDecline(user_id=alice.me))
    await alice.barrier()
    await bob.barrier()
    assert relations(alice) == [("bob", Relation.OUTGOING), ("bob", Relation.NONE)]
    assert relations(bob) == [("alice", Relation.INCOMING), ("alice", Relation.NONE)]
    assert (await bob.error(FriendAccept(user_id=alice.me))).code == ErrorCode.NO_REQUEST


async def test_cancel(login: Login) -> None:
    alice = await login("alice")
    bob = await login("bob")
    await alice.ok(FriendRequest(login="bob"))
    await alice.ok(FriendCancel(user_id=bob.me))
    await bob.barrier()
    assert relations(alice) == [("bob", Relation.OUTGOING), ("bob", Relation.NONE)]
    assert relations(bob) == [("alice", Relation.INCOMING), ("alice", Relation.NONE)]
    assert (await alice.error(FriendCancel(user_id=bob.me))).code == ErrorCode.NO_REQUEST


async def test_remove(login: Login) -> None:
    alice = await login("alice")
    bob = await login("bob")
    await befriend(alice, bob)
    await alice.ok(FriendRemove(user_id=bob.me))
    await bob.barrier()
    assert relations(alice) == [("bob", Relation.NONE)]
    assert relations(bob) == [("alice", Relation.NONE)]
    assert (await bob.error(FriendRemove(user_id=alice.me))).code == ErrorCode.NOT_FRIENDS
    again = await login("bob", "other")
    assert again.snapshot is not None and again.snapshot.friends == []


async def test_crossing_requests_become_a_friendship(login: Login) -> None:
    alice = await login("alice")
    bob = await login("bob")
    await alice.ok(FriendRequest(login="bob"))
    await bob.ok(FriendRequest(login="alice"))
    await alice.barrier()
    assert relations(bob) == [("alice", Relation.INCOMING), ("alice", Relation.FRIEND)]
    assert relations(alice) == [("bob", Relation.OUTGOING), ("bob", Relation.FRIEND)]


async def test_friend_errors(login: Login) -> None:
    alice = await login("alice")
    bob = await login("bob")
    cases = [
        (FriendRequest(login="nobody-here"), ErrorCode.UNKNOWN_USER),
        (FriendRequest(login="alice"), ErrorCode.SELF_REQUEST),
        (FriendAccept(user_id=bob.me), ErrorCode.NO_REQUEST),
        (FriendDecline(user_id=bob.me), ErrorCode.NO_REQUEST),
        (FriendCancel(user_id=bob.me), ErrorCode.NO_REQUEST),
        (FriendRemove(user_id=bob.me), ErrorCode.NOT_FRIENDS),
        (Block(user_id=alice.me), ErrorCode.SELF_REQUEST),
        (Block(user_id=123456), ErrorCode.UNKNOWN_USER),
        (FriendAccept(user_id=123456), ErrorCode.NO_REQUEST),
    ]
    for message, code in cases:
        reply = await alice.error(message)
        assert reply.code == code, (message, reply)
        assert reply.message
    await alice.ok(FriendRequest(login="bob"))
    assert (await alice.error(FriendRequest(login="bob"))).code == ErrorCode.REQUEST_EXISTS
    await bob.ok(FriendAccept(user_id=alice.me))
    assert (await alice.error(FriendRequest(login="bob"))).code == ErrorCode.ALREADY_FRIENDS
    assert (await bob.error(FriendRequest(login="alice"))).code == ErrorCode.ALREADY_FRIENDS


async def test_friend_limit_counts_friends_and_outgoing(start: StartServer) -> None:
    server = await start(limits=ServerLimits(max_friends=2))
    alice = await login_dev(server.url, "alice")
    others = [await login_dev(server.url, name) for name in ("bob", "carol", "dave")]
    await befriend(alice, others[0])
    await alice.ok(FriendRequest(login="carol"))
    reply = await alice.error(FriendRequest(login="dave"))
    assert reply.code == ErrorCode.FRIEND_LIMIT
    # Accepting a request also respects the limit of the one who accepts.
    await others[2].ok(FriendRequest(login="alice"))
    assert (await alice.error(FriendAccept(user_id=others[2].me))).code == ErrorCode.FRIEND_LIMIT
    for c in (alice, *others):
        await c.close()


async def test_block_ends_friendship_and_looks_like_a_removal(login: Login) -> None:
    alice = await login("alice")
    bob = await login("bob")
    await befriend(alice, bob)
    await alice.ok(Block(user_id=bob.me))
    await bob.barrier()
    assert relations(alice) == [("bob", Relation.BLOCKED)]
    assert relations(bob) == [("alice", Relation.NONE)]
    await alice.ok(Block(user_id=bob.me))  # blocking twice changes nothing
    await bob.barrier()
    assert relations(alice) == [] and relations(bob) == []


async def test_block_removes_requests_both_ways(login: Login) -> None:
    alice = await login("alice")
    bob = await login("bob")
    carol = await login("carol")
    await bob.ok(FriendRequest(login="alice"))
    await alice.ok(FriendRequest(login="carol"))
    await alice.ok(Block(user_id=bob.me))
    await alice.ok(Block(user_id=carol.me))
    await bob.barrier()
    await carol.barrier()
    assert relations(bob) == [("alice", Relation.OUTGOING), ("alice", Relation.NONE)]
    assert relations(carol) == [("alice", Relation.INCOMING), ("alice", Relation.NONE)]
    again = await login("alice", "desktop")
    assert again.snapshot is not None
    assert again.snapshot.incoming == [] and again.snapshot.outgoing == []


async def test_request_to_a_blocker_is_answered_ok_and_stays_invisible(login: Login) -> None:
    alice = await login("alice")
    bob = await login("bob")
    await alice.ok(Block(user_id=bob.me))
    await bob.ok(FriendRequest(login="alice"))  # ok, as for anyone else
    await alice.barrier()
    assert relations(bob) == [("alice", Relation.OUTGOING)]
    assert relations(alice) == [("bob", Relation.BLOCKED)]  # only her own block
    # Bob keeps seeing a pending request; Alice never sees it.
    assert (await bob.error(FriendRequest(login="alice"))).code == ErrorCode.REQUEST_EXISTS
    assert (await alice.error(FriendAccept(user_id=bob.me))).code == ErrorCode.NO_REQUEST
    assert (await alice.error(FriendDecline(user_id=bob.me))).code == ErrorCode.NO_REQUEST
    alice2 = await login("alice", "desktop")
    assert alice2.snapshot is not None and alice2.snapshot.incoming == []
    bob2 = await login("bob", "desktop")
    assert bob2.snapshot is not None
    assert [u.login for u in bob2.snapshot.outgoing] == ["alice"]
    assert bob2.snapshot.blocked == []  # being blocked is never listed
    # Unblocking surfaces the request as an ordinary incoming one.
    await alice.ok(Unblock(user_id=bob.me))
    for device in (alice, alice2):
        update = await device.expect(RelationUpdate, relation=Relation.INCOMING)
        assert update.user.id == bob.me
    await alice.ok(FriendAccept(user_id=bob.me))
    assert (await bob.expect(RelationUpdate, relation=Relation.FRIEND)).user.id == alice.me


async def test_unblock_and_request_to_a_blocked_user(login: Login) -> None:
    alice = await login("alice")
    bob = await login("bob")
    await alice.ok(Block(user_id=bob.me))
    await alice.ok(Unblock(user_id=bob.me))
    await alice.ok(Unblock(user_id=bob.me))  # not blocked: nothing to do
    await alice.barrier()
    assert relations(alice) == [("bob", Relation.BLOCKED), ("bob", Relation.NONE)]
    # A request to someone I blocked unblocks them and is delivered.
    await alice.ok(Block(user_id=bob.me))
    await alice.ok(FriendRequest(login="bob"))
    assert (await bob.expect(RelationUpdate)).relation is Relation.INCOMING
    await alice.barrier()
    assert relations(alice)[-1] == ("bob", Relation.OUTGOING)
    again = await login("alice", "desktop")
    assert again.snapshot is not None and again.snapshot.blocked == []
