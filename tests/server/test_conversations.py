"""Conversations across devices (issue 17) against a real server on loopback:
carbons of sent messages, delivery notices, read markers and opt-in receipts."""

from __future__ import annotations

from presence_protocol import (
    Ack,
    Error,
    ErrorCode,
    MarkRead,
    Message,
    MessageCopy,
    MessageDelivered,
    MessageSent,
    ReadMarker,
    ReadReceipt,
    SendMessage,
    Typing,
    TypingHint,
)

from .client import Client, befriend
from .conftest import Login


async def send(client: Client, to: Client, text: str, cmid: str) -> MessageSent:
    reply = await client.request(SendMessage(to=to.me, text=text, client_msg_id=cmid))
    assert isinstance(reply, MessageSent), reply
    return reply


async def test_a_message_i_send_appears_on_my_other_devices(login: Login) -> None:
    laptop = await login("alice", "laptop")
    desktop = await login("alice", "desktop")
    bob = await login("bob")
    await befriend(laptop, bob)
    sent = await send(laptop, bob, "lunch?", "c-1")
    copy = await desktop.expect(MessageCopy)
    assert (copy.message_id, copy.client_msg_id, copy.to, copy.text, copy.sent_at) == (
        sent.message_id,
        "c-1",
        bob.me,
        "lunch?",
        sent.sent_at,
    )
    # The sending device gets the same copy and can match it to its outbox.
    assert (await laptop.expect(MessageCopy)).client_msg_id == "c-1"
    # The recipient never sees a carbon, only the message itself.
    await bob.expect(Message, message_id=sent.message_id)
    await bob.barrier()
    assert bob.take(MessageCopy) == []


async def test_a_repeated_send_copies_the_original(login: Login) -> None:
    laptop = await login("alice", "laptop")
    desktop = await login("alice", "desktop")
    bob = await login("bob")
    await befriend(laptop, bob)
    first = await send(laptop, bob, "once", "c-1")
    again = await send(laptop, bob, "once", "c-1")
    assert again.message_id == first.message_id
    await desktop.barrier()
    copies = desktop.take(MessageCopy)
    assert {c.message_id for c in copies} == {first.message_id}


async def test_the_sender_learns_when_the_recipient_acknowledged(login: Login) -> None:
    alice = await login("alice")
    bob = await login("bob")
    carol = await login("carol")
    await befriend(alice, bob)
    await befriend(carol, bob)
    one = await send(alice, bob, "one", "a-1")
    two = await send(alice, bob, "two", "a-2")
    other = await send(carol, bob, "from carol", "c-1")
    last = await bob.expect(Message, message_id=other.message_id)
    await alice.barrier()
    assert alice.take(MessageDelivered) == []  # not acknowledged yet: no notice
    await bob.send(Ack(seq=last.seq))
    delivered = await alice.expect(MessageDelivered)
    assert delivered.to == bob.me
    assert delivered.message_ids == [one.message_id, two.message_id]
    to_carol = await carol.expect(MessageDelivered)
    assert to_carol.message_ids == [other.message_id]


async def test_reading_on_one_device_clears_it_on_the_others(login: Login) -> None:
    alice = await login("alice")
    laptop = await login("bob", "laptop")
    desktop = await login("bob", "desktop")
    await befriend(alice, laptop)
    sent = await send(alice, laptop, "hi", "a-1")
    await laptop.ok(MarkRead(peer=alice.me, message_id=sent.message_id, sent_at=sent.sent_at))
    marker = await desktop.expect(ReadMarker)
    assert (marker.peer, marker.message_id, marker.sent_at) == (
        alice.me,
        sent.message_id,
        sent.sent_at,
    )
    # Without opting in, the friend learns nothing about it.
    await alice.barrier()
    assert alice.take(ReadReceipt) == []
    assert alice.take(ReadMarker) == []


async def test_a_read_receipt_reaches_the_friend_only_when_asked_for(login: Login) -> None:
    alice = await login("alice")
    bob = await login("bob")
    await befriend(alice, bob)
    sent = await send(alice, bob, "seen it?", "a-1")
    await bob.ok(
        MarkRead(peer=alice.me, message_id=sent.message_id, sent_at=sent.sent_at, receipt=True)
    )
    receipt = await alice.expect(ReadReceipt)
    assert (receipt.reader, receipt.message_id, receipt.sent_at) == (
        bob.me,
        sent.message_id,
        sent.sent_at,
    )


async def test_no_receipt_to_someone_who_is_not_a_friend(login: Login) -> None:
    alice = await login("alice")
    mallory = await login("mallory")
    await alice.ok(MarkRead(peer=mallory.me, message_id="1", sent_at=1, receipt=True))
    await mallory.barrier()
    assert mallory.take(ReadReceipt) == []
    # My own devices still get the marker (a removed friend's conversation can be read).
    assert (await alice.expect(ReadMarker)).peer == mallory.me


async def test_a_bad_mark_read_is_refused_and_changes_nothing(login: Login) -> None:
    alice = await login("alice")
    other = await login("alice", "other")
    for bad in (
        '{"type": "mark_read", "id": 9, "peer": 0, "message_id": "1", "sent_at": 1}',
        '{"type": "mark_read", "id": 9, "peer": 2, "message_id": "", "sent_at": 1}',
        '{"type": "mark_read", "id": 9, "peer": 2, "message_id": "' + "9" * 33 + '", "sent_at": 1}',
        '{"type": "mark_read", "id": 9, "peer": 2, "message_id": "1"}',
    ):
        await alice.send(bad)
        reply = await alice.expect(Error)
        assert reply.code == ErrorCode.INVALID_MESSAGE, bad
    await other.barrier()
    assert other.take(ReadMarker) == []


async def test_a_typing_hint_reaches_only_a_friend_and_gets_no_reply(login: Login) -> None:
    alice = await login("alice")
    bob = await login("bob")
    mallory = await login("mallory")
    await befriend(alice, bob)
    await alice.send(Typing(id=70, to=bob.me))
    hint = await bob.expect(TypingHint)
    assert hint.user_id == alice.me
    await alice.send(Typing(id=71, to=mallory.me))  # not a friend: dropped, no answer
    await alice.barrier()
    assert [m for m in alice.backlog if getattr(m, "id", None) in (70, 71)] == []
    await mallory.barrier()
    assert mallory.take(TypingHint) == []
