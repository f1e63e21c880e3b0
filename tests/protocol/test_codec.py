"""Round trips and every error path of the presence.v1 codec."""

from __future__ import annotations

import json

import msgspec
import pytest

import presence_protocol as p
from presence_protocol import ErrorCode, ProtocolError, limits


def client_samples() -> list[p.ClientMessage]:
    act = p.Activity(kind=p.ActivityKind.CODING, language="Python", project="demo", since=5)
    return [
        p.Auth(id=1, session="tok"),
        p.LoginDev(id="a", login="alice", device="laptop"),
        p.LoginGitHubCode(code="c", code_verifier="v", redirect_uri="http://127.0.0.1:1/callback"),
        p.LoginGitHubToken(access_token="gho_x"),
        p.LoginGitHubEditor(access_token="gho_y", editor="Visual Studio Code", device="d"),
        p.SetPresence(id=2, status=p.Status.AWAY, activity=act, until=100),
        p.FriendRequest(id=3, login="bob-smith"),
        p.FriendAccept(user_id=7),
        p.FriendDecline(user_id=7),
        p.FriendCancel(user_id=7),
        p.FriendRemove(user_id=7),
        p.Block(user_id=7),
        p.Unblock(user_id=7),
        p.SendMessage(id=4, to=7, text="héllo ✓", client_msg_id="m-1"),
        p.Ack(seq=12),
        p.ListSessions(id=5),
        p.RevokeSession(session_id="s1"),
        p.SignOut(everywhere=True),
        p.AckExpired(id=6, message_ids=["17", "18"]),
        p.MarkRead(id=9, peer=2, message_id="17", sent_at=9, receipt=True),
        p.Typing(to=2),
        p.ExportAccount(id=7, after="1187"),
        p.DeleteAccount(id=8, confirm_login="alice"),
    ]


def server_samples() -> list[p.ServerMessage]:
    me = p.User(id=1, login="me")
    bob = p.User(id=2, login="bob", name="Bob", avatar_url="https://example.invalid/a.png")
    pres = p.Presence(status=p.SeenStatus.DND, activity=p.Activity(language="Rust"))
    return [
        p.Hello(
            login_methods=[p.LoginMethod.DEV, p.LoginMethod.SESSION],
            retention=p.Retention(
                delivered_messages=604800, undelivered_messages=2592000, idle_sessions=7776000
            ),
        ),
        p.AuthOk(id=1, user=me, session_id="s", session="t", suggestions=[bob]),
        p.Snapshot(me=me, friends=[p.Friend(user=bob, presence=pres)], incoming=[bob]),
        p.Snapshot(me=me, incoming=[bob], more=True),
        p.SnapshotPart(friends=[p.Friend(user=bob, presence=pres)], blocked=[bob]),
        p.PresenceUpdate(user_id=2, status=p.SeenStatus.ONLINE),
        p.RelationUpdate(user=bob, relation=p.Relation.FRIEND, presence=pres),
        p.Message(seq=3, message_id="m", sender=2, text="hi", sent_at=9),
        p.Ok(id=9),
        p.MessageSent(id=4, message_id="m", client_msg_id="c", sent_at=9),
        p.Sessions(sessions=[p.SessionInfo(id="s", device="d", created_at=1, last_used_at=2)]),
        p.Error(id=3, code=ErrorCode.RATE_LIMITED, message="slow down", retry_after=1.5),
        p.MessageExpired(message_id="17", client_msg_id="c", to=2, sent_at=9, expired_at=99),
        p.MessageCopy(message_id="17", client_msg_id="c", to=2, text="hi", sent_at=9),
        p.MessageDelivered(to=2, message_ids=["17", "18"]),
        p.ReadMarker(peer=2, message_id="17", sent_at=9),
        p.ReadReceipt(reader=2, message_id="17", sent_at=9),
        p.TypingHint(user_id=2),
        p.AccountExport(
            id=7,
            account=p.AccountData(
                user=me,
                kind="dev",
                created_at=1,
                status=p.Status.DND,
                friends=[p.ExportedRelation(user=bob, since=5)],
                sessions=[p.SessionInfo(id="s", device="d", created_at=1, last_used_at=2)],
            ),
            messages=[
                p.ExportedMessage(
                    message_id="17",
                    direction=p.Direction.SENT,
                    peer=2,
                    text="hi",
                    sent_at=9,
                    seq=3,
                    delivered=True,
                )
            ],
            next="17",
        ),
        p.AccountExport(
            id=8,
            account_more=p.AccountLists(incoming=[p.ExportedRelation(user=bob, since=5)]),
            next="i2",
        ),
    ]


def test_every_message_type_has_a_sample() -> None:
    assert {msgspec.inspect.type_info(type(m)).tag for m in client_samples()} == p.CLIENT_TYPES
    assert {msgspec.inspect.type_info(type(m)).tag for m in server_samples()} == p.SERVER_TYPES


@pytest.mark.parametrize("msg", client_samples(), ids=lambda m: type(m).__name__)
def test_client_round_trip(msg: p.ClientMessage) -> None:
    assert p.decode_client(p.encode_text(msg)) == msg


@pytest.mark.parametrize("msg", server_samples(), ids=lambda m: type(m).__name__)
def test_server_round_trip(msg: p.ServerMessage) -> None:
    assert p.decode_server(p.encode_text(msg)) == msg


def test_wire_format_is_plain_json_with_type_field() -> None:
    raw = json.loads(p.encode(p.FriendRequest(id=3, login="bob")))
    assert raw == {"type": "friend_request", "id": 3, "login": "bob"}


def test_defaults_are_omitted_from_deltas() -> None:
    assert p.encode(p.PresenceUpdate(user_id=5)) == b'{"type":"presence","user_id":5}'


def test_typical_presence_delta_fits_the_byte_budget() -> None:
    delta = p.PresenceUpdate(
        user_id=123456789,
        status=p.SeenStatus.ONLINE,
        activity=p.Activity(
            kind=p.ActivityKind.CODING,
            language="TypeScript",
            project="presence-desktop",
            since=1_764_000_000,
        ),
    )
    assert len(p.encode(delta)) <= 150


def test_unknown_fields_are_ignored() -> None:
    msg = p.decode_client('{"type":"ack","seq":4,"future":{"x":[1,2]}}')
    assert msg == p.Ack(seq=4)


def _error(data: str | bytes) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        p.decode_client(data)
    return info.value


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", ErrorCode.BAD_FRAME),
        ("", ErrorCode.BAD_FRAME),
        ("[1, 2]", ErrorCode.BAD_FRAME),
        ('"text"', ErrorCode.BAD_FRAME),
        ("{", ErrorCode.BAD_FRAME),
        ('{"seq": 1}', ErrorCode.INVALID_MESSAGE),
        ('{"type": 5}', ErrorCode.UNKNOWN_TYPE),
        ('{"type": "launch_rockets"}', ErrorCode.UNKNOWN_TYPE),
        ('{"type": "hello"}', ErrorCode.UNKNOWN_TYPE),  # a server message from a client
        ('{"type": "ack"}', ErrorCode.INVALID_MESSAGE),
        ('{"type": "ack", "seq": "1"}', ErrorCode.INVALID_MESSAGE),
        ('{"type": "ack", "seq": -1}', ErrorCode.INVALID_MESSAGE),
        ('{"type": "set_presence", "status": "sleeping"}', ErrorCode.INVALID_MESSAGE),
        ('{"type": "friend_request", "login": "no spaces"}', ErrorCode.INVALID_MESSAGE),
        ('{"type": "friend_request", "login": "-dash"}', ErrorCode.INVALID_MESSAGE),
        ('{"type": "friend_accept", "user_id": 0}', ErrorCode.INVALID_MESSAGE),
        ('{"type": "auth", "session": ""}', ErrorCode.INVALID_MESSAGE),
    ],
)
def test_bad_frames_raise_protocol_error_with_code(frame: str, code: ErrorCode) -> None:
    assert _error(frame).code is code


def test_binary_frames_are_refused() -> None:
    assert _error(b'{"type":"ack","seq":1}').code is ErrorCode.BAD_FRAME


def test_oversized_frame_is_refused_before_parsing() -> None:
    text = "x" * limits.MAX_FRAME_BYTES
    frame = json.dumps({"type": "send_message", "to": 2, "text": text, "client_msg_id": "a"})
    err = _error(frame)
    assert err.code is ErrorCode.BAD_FRAME
    assert "exceeds" in err.message


def test_size_limit_counts_utf8_bytes_not_characters() -> None:
    frame = json.dumps({"type": "ack", "seq": 1, "pad": "é" * 9000}, ensure_ascii=False)
    assert len(frame) < limits.MAX_FRAME_BYTES < len(frame.encode())
    assert _error(frame).code is ErrorCode.BAD_FRAME


def test_message_text_limit_is_in_characters() -> None:
    ok = p.SendMessage(to=2, text="✓" * limits.MAX_MESSAGE_CHARS, client_msg_id="a")
    assert p.decode_client(p.encode_text(ok)) == ok
    too_long = p.encode_text(ok).replace("✓", "✓✓", 1)
    assert _error(too_long).code is ErrorCode.INVALID_MESSAGE


def test_deep_nesting_is_a_bad_frame_not_a_crash() -> None:
    deep = '{"type":"ack","seq":1,"x":' + "[" * 5000 + "]" * 5000 + "}"
    assert _error(deep).code is ErrorCode.BAD_FRAME


@pytest.mark.parametrize(
    ("frame", "rid"),
    [
        ('{"type":"nope","id":17}', 17),
        ('{"type":"ack","id":"req-1"}', "req-1"),
        ('{"type":"ack","id":true}', None),
        ('{"type":"ack","id":[1]}', None),
        ('{"type":"ack","id":"' + "x" * 100 + '"}', None),
    ],
)
def test_errors_echo_a_usable_request_id(frame: str, rid: object) -> None:
    assert _error(frame).request_id == rid


def test_close_codes_split_into_retry_and_terminal() -> None:
    for code in p.CloseCode:
        assert p.close_code_is_terminal(code) is (code >= 4500)
    assert not p.close_code_is_terminal(1000)
    assert not p.close_code_is_terminal(1009)
    assert not p.close_code_is_terminal(None)


def test_hello_tells_clients_every_limit() -> None:
    hello = json.loads(p.encode(p.Hello()))
    assert hello["protocol"] == "presence.v1"
    assert hello["limits"]["max_frame_bytes"] == limits.MAX_FRAME_BYTES
    assert hello["limits"]["commands_per_minute"] == limits.COMMANDS_PER_MINUTE
