"""Messages: stored before acknowledged, idempotent, replayed until acked, durable."""

from __future__ import annotations

import pytest

from presence_protocol import (
    Ack,
    ErrorCode,
    FriendRemove,
    Message,
    MessageSent,
    SendMessage,
    Snapshot,
)
from presence_server import RunningServer, ServerLimits
from tests.support.servers import Database, StartServer

from .client import Client, befriend, login_dev
from .conftest import Login


async def stored_texts(database: Database) -> list[str]:
    return await database.column("SELECT text FROM messages ORDER BY id")


async def send(client: Client, to: Client, text: str, cmid: str) -> MessageSent:
    reply = await client.request(SendMessage(to=to.me, text=text, client_msg_id=cmid))
    assert isinstance(reply, MessageSent), reply
    return reply


async def test_message_is_stored_before_it_is_acknowledged(
    login: Login, database: Database
) -> None:
    alice = await login("alice")
    bob = await login("bob")
    await befriend(alice, bob)
    sent = await send(alice, bob, "hi bob", "m-1")
    assert sent.client_msg_id == "m-1" and sent.message_id
    assert await stored_texts(database) == ["hi bob"]  # already on disk when message_sent arrives
    message = await bob.expect(Message)
    assert (message.seq, message.sender, message.text, message.message_id) == (
        1,
        alice.me,
        "hi bob",
        sent.message_id,
    )
    assert message.sent_at == sent.sent_at


async def test_every_device_of_the_recipient_gets_it(login: Login) -> None:
    alice = await login("alice")
    laptop = await login("bob", "laptop")
    desktop = await login("bob", "desktop")
    await befriend(alice, laptop)
    sent = await send(alice, laptop, "both of you", "m-1")
    for device in (laptop, desktop):
        assert (await device.expect(Message)).message_id == sent.message_id


async def test_only_friends_can_be_messaged(login: Login) -> None:
    alice = await login("alice")
    bob = await login("bob")
    for to in (bob.me, alice.me, 424242):
        reply = await alice.error(SendMessage(to=to, text="hello", client_msg_id="x"))
        assert reply.code == ErrorCode.NOT_FRIENDS
    await befriend(alice, bob)
    too_long = await alice.error(SendMessage(to=bob.me, text="x" * 501, client_msg_id="y"))
    assert too_long.code == ErrorCode.INVALID_MESSAGE
    await send(alice, bob, "x" * 500, "y")
    await alice.ok(FriendRemove(user_id=bob.me))
    reply = await alice.error(SendMessage(to=bob.me, text="still there?", client_msg_id="z"))
    assert reply.code == ErrorCode.NOT_FRIENDS


async def test_resend_returns_the_original_and_stores_nothing_new(
    login: Login, database: Database
) -> None:
    alice = await login("alice")
    bob = await login("bob")
    await befriend(alice, bob)
    first = await send(alice, bob, "once", "same-id")
    again = await send(alice, bob, "once (resent)", "same-id")
    assert again == MessageSent(
        id=again.id, message_id=first.message_id, client_msg_id="same-id", sent_at=first.sent_at
    )
    await bob.barrier()
    assert [m.text for m in bob.take(Message)] == ["once"]
    assert await stored_texts(database) == ["once"]
    # Client message ids are per sender: bob may use the same one.
    await send(bob, alice, "mine", "same-id")
    assert await stored_texts(database) == ["once", "mine"]


async def test_unacked_messages_replay_until_acked(server: RunningServer, login: Login) -> None:
    alice = await login("alice")
    bob = await login("bob")
    await befriend(alice, bob)
    await bob.close()
    for i in range(3):
        await send(alice, bob, f"while away {i}", f"m-{i}")

    bob = await login("bob", "back")
    got = [await bob.expect(Message) for _ in range(3)]
    assert [(m.seq, m.text) for m in got] == [(k + 1, f"while away {k}") for k in range(3)]
    # Nothing before the snapshot. (The replay may follow it in the same read
    # from the socket, so this is checked on the frames' order, not on what
    # had arrived when the snapshot was taken.)
    kinds = [frame.split('"type":"', 1)[1].split('"', 1)[0] for frame in map(str, bob.raw)]
    assert kinds.index("snapshot") < kinds.index("message")
    await bob.send(Ack(seq=2))
    await bob.barrier()  # acks get no reply; the barrier orders it
    await bob.close()

    bob = await login("bob", "again")
    assert bob.snapshot is not None and bob.snapshot.acked_seq == 2
    assert (await bob.expect(Message)).seq == 3
    await bob.send(Ack(seq=3))
    await bob.barrier()
    await bob.close()

    bob = await login("bob", "third")
    await bob.barrier()
    assert bob.take(Message) == []


async def test_raw_frame_order_is_auth_ok_snapshot_then_replay(
    server: RunningServer, login: Login
) -> None:
    alice = await login("alice")
    bob = await login("bob")
    await befriend(alice, bob)
    await bob.close()
    await send(alice, bob, "queued", "m-1")
    bob = await login("bob", "back")
    await bob.expect(Message)
    kinds = [frame.split('"type":"', 1)[1].split('"', 1)[0] for frame in map(str, bob.raw)]
    assert kinds[:4] == ["hello", "auth_ok", "snapshot", "message"]


async def test_messages_survive_a_server_restart(
    start: StartServer, server: RunningServer, login: Login
) -> None:
    alice = await login("alice")
    bob = await login("bob")
    await befriend(alice, bob)
    await bob.close()
    sent = await send(alice, bob, "across a restart", "m-1")
    await server.stop()

    restarted = await start()
    bob2 = await login_dev(restarted.url, "bob")
    message = await bob2.expect(Message)
    assert (message.message_id, message.text, message.seq) == (
        sent.message_id,
        "across a restart",
        1,
    )
    # Idempotency survives too: the resend after a restart is the same message.
    alice2 = await login_dev(restarted.url, "alice")
    again = await send(alice2, bob2, "across a restart", "m-1")
    assert again.message_id == sent.message_id
    await bob2.send(Ack(seq=1))
    await bob2.barrier()
    assert bob2.take(Message) == []
    await send(alice2, bob2, "after", "m-2")
    assert (await bob2.expect(Message)).seq == 2
    await bob2.close()
    await alice2.close()


async def test_replay_comes_in_batches_and_live_messages_wait_their_turn(
    start: StartServer,
) -> None:
    server = await start(limits=ServerLimits(max_replay_messages=3))
    alice = await login_dev(server.url, "alice")
    bob = await login_dev(server.url, "bob")
    await befriend(alice, bob)
    await bob.close()
    for i in range(1, 8):
        await send(alice, bob, f"m{i}", f"c{i}")

    bob = await login_dev(server.url, "bob")
    first = [await bob.expect(Message) for _ in range(3)]
    await send(alice, bob, "m8", "c8")  # live, while four stored ones wait
    await bob.barrier()
    assert bob.take(Message) == []  # no more until the batch is acked
    received = [m.seq for m in first]
    while len(received) < 8:
        await bob.send(Ack(seq=received[-1]))
        received.append((await bob.expect(Message)).seq)
        await bob.barrier()
        received.extend(m.seq for m in bob.take(Message))
    assert received == list(range(1, 9))
    await alice.close()
    await bob.close()


async def test_ack_is_cumulative_and_bounded(login: Login) -> None:
    alice = await login("alice")
    bob = await login("bob")
    await befriend(alice, bob)
    await send(alice, bob, "one", "1")
    await bob.expect(Message)
    await bob.send(Ack(seq=99))  # beyond the last seq: clamped, not an error
    await bob.send(Ack(seq=0))  # going back: ignored
    await bob.barrier()
    second = await login("bob", "second")
    assert second.snapshot is not None and second.snapshot.acked_seq == 1
    await send(alice, bob, "two", "2")
    assert (await second.expect(Message)).seq == 2
    assert isinstance(second.snapshot, Snapshot)


@pytest.fixture
async def lost_event(server: RunningServer, login: Login) -> tuple[Client, Client]:
    """Friends alice and bob, and alice's message "m-1" to bob as an instance
    leaves it when it dies between storing and publishing (kill -9): the row,
    and no event."""
    alice = await login("alice")
    bob = await login("bob")
    await befriend(alice, bob)
    hub = server.hub
    await hub.store.store_message(alice.me, bob.me, "m-1", "text of m-1", hub.now())
    return alice, bob


async def test_a_message_whose_event_was_lost_arrives_before_the_next_one(
    lost_event: tuple[Client, Client],
) -> None:
    alice, bob = lost_event
    await send(alice, bob, "text of m-2", "m-2")
    first = await bob.expect(Message)
    second = await bob.expect(Message, seq=2)
    assert [(m.seq, m.text) for m in (first, second)] == [(1, "text of m-1"), (2, "text of m-2")]
    await bob.barrier()
    assert bob.take(Message) == []  # each once


async def test_sending_again_delivers_a_stored_message_whose_event_was_lost(
    lost_event: tuple[Client, Client],
) -> None:
    alice, bob = lost_event
    # The sender never got message_sent (the instance died) and sends again.
    await send(alice, bob, "text of m-1", "m-1")
    message = await bob.expect(Message)
    assert (message.seq, message.text) == (1, "text of m-1")
    await send(alice, bob, "text of m-1", "m-1")  # and once more: still one copy
    await send(alice, bob, "text of m-2", "m-2")
    assert (await bob.expect(Message)).seq == 2
    await bob.barrier()
    assert bob.take(Message) == []  # each once
