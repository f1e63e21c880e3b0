"""The smaller findings of the outside client (issue 14, point 5), on a real server.

Each is either fixed or answered the way docs/protocol.md now states.
"""

from __future__ import annotations

import time

from presence_protocol import (
    Block,
    Error,
    ErrorCode,
    FriendAccept,
    FriendCancel,
    FriendDecline,
    FriendRemove,
    Message,
    MessageSent,
    SendMessage,
    SetPresence,
    Status,
    Unblock,
)
from tests.support.servers import Database

from .client import befriend
from .conftest import Login

NOBODY = 4_000_000_000_000_000


async def test_online_with_a_past_until_is_accepted_and_until_ignored(login: Login) -> None:
    alice = await login("alice")
    past = int(time.time()) - 60
    await alice.ok(SetPresence(status=Status.ONLINE, until=past))
    refused = await alice.error(SetPresence(status=Status.AWAY, until=past))
    assert refused.code == ErrorCode.INVALID_MESSAGE and "future" in refused.message


async def test_a_client_msg_id_reused_for_someone_else_is_refused(
    login: Login, database: Database
) -> None:
    alice = await login("alice")
    bob = await login("bob")
    carol = await login("carol")
    await befriend(alice, bob)
    await befriend(alice, carol)
    first = await alice.request(SendMessage(to=bob.me, text="for bob", client_msg_id="same"))
    assert isinstance(first, MessageSent)
    refused = await alice.error(SendMessage(to=carol.me, text="for carol", client_msg_id="same"))
    assert refused.code == ErrorCode.INVALID_MESSAGE
    assert "someone else" in refused.message
    # A resend to the original recipient is still the original message.
    again = await alice.request(SendMessage(to=bob.me, text="for bob", client_msg_id="same"))
    assert isinstance(again, MessageSent) and again.message_id == first.message_id
    assert await database.column("SELECT text FROM messages") == ["for bob"]
    await carol.barrier()
    assert carol.take(Message) == []


async def test_an_unknown_user_id_gets_the_documented_code_per_command(login: Login) -> None:
    alice = await login("alice")
    expected = {
        FriendAccept: ErrorCode.NO_REQUEST,
        FriendDecline: ErrorCode.NO_REQUEST,
        FriendCancel: ErrorCode.NO_REQUEST,
        FriendRemove: ErrorCode.NOT_FRIENDS,
        Block: ErrorCode.UNKNOWN_USER,
        Unblock: ErrorCode.UNKNOWN_USER,
    }
    for command, code in expected.items():
        reply = await alice.request(command(user_id=NOBODY))
        assert isinstance(reply, Error) and reply.code == code, (command, reply)


async def test_an_unparsable_frame_is_answered_with_its_readable_id(login: Login) -> None:
    alice = await login("alice")
    await alice.send('{"type":"send_message","id":77,"to":')
    reply = await alice.expect(Error, id=77)
    assert reply.code == ErrorCode.BAD_FRAME
    await alice.send(
        '{"type":"set_presence","id":"s-1","status":"online","activity":{"file":"\\ud800"}}'
    )
    surrogate = await alice.expect(Error, id="s-1")
    assert surrogate.code == ErrorCode.BAD_FRAME and "lone surrogate" in surrogate.message
    await alice.send('{"type":"list_sessions","id":9007199254740993}')
    too_big = await alice.expect(Error, code=ErrorCode.INVALID_MESSAGE)
    assert too_big.id is None
