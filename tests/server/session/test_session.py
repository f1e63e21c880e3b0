"""One connection's protocol life, driven without a socket.

Each test feeds frames to ``Session`` objects on a real hub (SQLite file,
in-process fan-out and registry) and reads exactly what they wrote to their
``Wire``; time moves only when the test advances the ``FakeClock``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from presence_protocol import (
    Ack,
    Auth,
    AuthOk,
    ClientMessage,
    CloseCode,
    DeleteAccount,
    Error,
    ErrorCode,
    FriendRequest,
    Hello,
    ListSessions,
    LoginDev,
    Message,
    MessageCopy,
    MessageSent,
    Ok,
    PresenceUpdate,
    SeenStatus,
    SendMessage,
    Sessions,
    SetPresence,
    SignOut,
    Snapshot,
    Status,
)
from presence_server import ServerLimits
from presence_server.session.hub import Hub
from tests.support.clock import FakeClock
from tests.support.sessions import Device, befriend, logged_in, session_hub


def clock_of(hub: Hub) -> FakeClock:
    assert isinstance(hub.clock, FakeClock)
    return hub.clock


# ---------------------------------------------------------------- login phase


async def test_a_new_session_says_hello_and_nothing_else(hub: Hub) -> None:
    dev = Device(hub)
    (hello,) = dev.wire.take()
    assert isinstance(hello, Hello)
    assert dev.wire.closed is None
    assert clock_of(hub).pending() == [clock_of(hub).now + hub.limits.auth_deadline_seconds]


async def test_a_command_before_login_is_refused_and_login_still_works(hub: Hub) -> None:
    dev = Device(hub)
    dev.wire.take()
    (error,) = await dev.send(ListSessions(id="early"))
    assert isinstance(error, Error)
    assert (error.code, error.id) == (ErrorCode.NOT_AUTHENTICATED, "early")
    (ack_error,) = await dev.send(Ack(seq=1))  # not free before login
    assert isinstance(ack_error, Error) and ack_error.code == ErrorCode.NOT_AUTHENTICATED
    frames = await dev.send(LoginDev(id="in", login="alice"))
    assert [type(f) for f in frames] == [AuthOk, Snapshot]
    assert frames[0].id == "in"  # type: ignore[union-attr]
    (sessions,) = await dev.send(ListSessions(id="after"))
    assert isinstance(sessions, Sessions) and sessions.id == "after"
    assert [s.current for s in sessions.sessions] == [True]
    assert clock_of(hub).pending() == [], "the auth deadline is disarmed by the login"


async def test_too_many_frames_before_login_close_with_4002(hub: Hub) -> None:
    dev = Device(hub)
    for i in range(hub.limits.max_login_frames - 1):
        await dev.send(ListSessions(id=i))
        assert dev.wire.closed is None
    await dev.send(ListSessions(id="last"))
    assert dev.wire.closed is not None and dev.wire.closed[0] == CloseCode.TOO_MANY_ERRORS
    assert await dev.send(LoginDev(id=1, login="alice")) == [], "input after the close is ignored"


async def test_no_login_before_the_deadline_closes_with_4001(hub: Hub) -> None:
    clock = clock_of(hub)
    dev = Device(hub)
    clock.advance(hub.limits.auth_deadline_seconds - 0.01)
    assert dev.wire.closed is None
    clock.advance(0.01)
    assert dev.wire.closed is not None and dev.wire.closed[0] == CloseCode.AUTH_TIMEOUT


async def test_a_login_under_way_at_the_deadline_finishes(tmp_path: Path) -> None:
    """The deadline is about the client's first frame, not the server's work on it."""
    clock = FakeClock()
    async with session_hub(tmp_path / "p.sqlite3", clock) as hub:
        dev = Device(hub)
        real = hub.store.upsert_identity

        async def slow_upsert(*args: object) -> object:
            clock.advance(hub.limits.auth_deadline_seconds + 1)  # the deadline fires meanwhile
            return await real(*args)  # type: ignore[arg-type]

        hub.store.upsert_identity = slow_upsert  # type: ignore[method-assign,assignment]
        frames = await dev.send(LoginDev(id=1, login="alice"))
        assert isinstance(frames[1], AuthOk)
        assert dev.wire.closed is None


async def test_a_failed_login_at_the_deadline_closes_with_4001(tmp_path: Path) -> None:
    clock = FakeClock()
    async with session_hub(tmp_path / "p.sqlite3", clock) as hub:
        dev = Device(hub)
        dev.wire.take()

        async def failing_upsert(*args: object) -> object:
            clock.advance(hub.limits.auth_deadline_seconds + 1)  # the deadline fires meanwhile
            raise RuntimeError("the disk is gone")

        hub.store.upsert_identity = failing_upsert  # type: ignore[method-assign,assignment]
        (error,) = await dev.send(LoginDev(id=1, login="alice"))
        assert isinstance(error, Error) and error.code == ErrorCode.INTERNAL_ERROR
        assert dev.wire.closed is not None and dev.wire.closed[0] == CloseCode.AUTH_TIMEOUT


async def test_an_unknown_session_token_closes_with_4500(hub: Hub) -> None:
    dev = Device(hub)
    dev.wire.take()
    (error,) = await dev.send(Auth(id=7, session="not-a-token"))
    assert isinstance(error, Error) and (error.code, error.id) == (ErrorCode.AUTH_FAILED, 7)
    assert dev.wire.closed is not None and dev.wire.closed[0] == CloseCode.AUTH_FAILED


async def test_a_device_beyond_the_cap_closes_with_4004(tmp_path: Path) -> None:
    async with session_hub(tmp_path / "p.sqlite3", FakeClock(), max_connections_per_user=1) as hub:
        await logged_in(hub, "alice", "laptop")
        dev = Device(hub)
        dev.wire.take()
        (error,) = await dev.send(LoginDev(id=1, login="alice", device="phone"))
        assert isinstance(error, Error) and error.code == ErrorCode.RATE_LIMITED
        assert dev.wire.closed is not None and dev.wire.closed[0] == CloseCode.TRY_AGAIN_LATER


# ---------------------------------------------------------------- dispatch


async def test_replies_come_in_request_order_with_their_ids(hub: Hub) -> None:
    alice, _ = await logged_in(hub, "alice")
    bob, _ = await logged_in(hub, "bob")
    await befriend(alice, bob)
    replies = []
    messages: list[ClientMessage | str] = [
        ListSessions(id=1),
        SendMessage(id=2, to=bob.me, text="hi", client_msg_id="m1"),
        FriendRequest(id=3, login="nobody"),
        SetPresence(id=4, status=Status.DND),
        "{not json",
        ListSessions(id=6),
    ]
    for message in messages:
        replies += [r for r in await alice.send(message) if not isinstance(r, MessageCopy)]
    assert [(type(r).__name__, r.id) for r in replies] == [  # type: ignore[union-attr]
        ("Sessions", 1),
        ("MessageSent", 2),
        ("Error", 3),
        ("Ok", 4),
        ("Error", None),
        ("Sessions", 6),
    ]


async def test_logging_in_twice_is_an_error_not_a_second_login(hub: Hub) -> None:
    alice, _ = await logged_in(hub, "alice")
    (error,) = await alice.send(LoginDev(id=9, login="mallory"))
    assert isinstance(error, Error) and error.code == ErrorCode.ALREADY_AUTHENTICATED
    assert alice.session.user is not None and alice.session.user.login == "alice"


async def test_too_many_invalid_frames_in_a_row_close_with_4002(hub: Hub) -> None:
    alice, _ = await logged_in(hub, "alice")
    for _ in range(hub.limits.max_bad_frames - 1):
        await alice.send("garbage")
    await alice.send(ListSessions(id=1))  # a valid frame resets the count
    for _ in range(hub.limits.max_bad_frames - 1):
        await alice.send("garbage")
    assert alice.wire.closed is None
    await alice.send("garbage")
    assert alice.wire.closed is not None and alice.wire.closed[0] == CloseCode.TOO_MANY_ERRORS


# ---------------------------------------------------------------- seq, ack, replay


async def test_messages_are_replayed_from_the_last_ack_in_seq_order(hub: Hub) -> None:
    alice, _ = await logged_in(hub, "alice")
    bob, ok = await logged_in(hub, "bob")
    await befriend(alice, bob)
    await bob.leave()
    alice.wire.take()  # bob went offline
    for i in range(3):
        frames = await alice.send(SendMessage(id=i, to=bob.me, text=f"m{i}", client_msg_id=f"{i}"))
        assert [type(f) for f in frames] == [MessageSent, MessageCopy]
    bob = Device(hub)
    replayed = [f for f in await bob.send(LoginDev(id=1, login="bob")) if isinstance(f, Message)]
    assert [m.seq for m in replayed] == [1, 2, 3]
    assert [m.text for m in replayed] == ["m0", "m1", "m2"]
    assert await bob.send(Ack(seq=2)) == []
    await bob.leave()
    again = Device(hub)
    frames = await again.send(Auth(id=1, session=ok.session or ""))
    assert [type(f) for f in frames[:3]] == [Hello, AuthOk, Snapshot]
    assert [(m.seq, m.text) for m in frames if isinstance(m, Message)] == [(3, "m2")]


async def test_a_live_message_follows_the_replay_and_an_ack_never_goes_past_what_was_sent(
    hub: Hub,
) -> None:
    alice, _ = await logged_in(hub, "alice")
    bob, _ = await logged_in(hub, "bob")
    await befriend(alice, bob)
    await alice.send(SendMessage(id=1, to=bob.me, text="live", client_msg_id="a"))
    (live,) = bob.wire.take()
    assert isinstance(live, Message) and live.seq == 1
    await bob.send(Ack(seq=99))  # only seq 1 was sent: the ack records 1
    assert bob.session.acked_seq == 1
    await alice.send(SendMessage(id=2, to=bob.me, text="next", client_msg_id="b"))
    (nxt,) = bob.wire.take()
    assert isinstance(nxt, Message) and nxt.seq == 2


async def test_a_long_backlog_comes_in_batches_each_after_an_ack(tmp_path: Path) -> None:
    limits = ServerLimits(max_replay_messages=2)
    async with session_hub(tmp_path / "p.sqlite3", FakeClock(), limits=limits) as hub:
        alice, _ = await logged_in(hub, "alice")
        bob, _ = await logged_in(hub, "bob")
        await befriend(alice, bob)
        await bob.leave()
        for i in range(5):
            await alice.send(SendMessage(id=i, to=bob.me, text=f"m{i}", client_msg_id=f"{i}"))
        bob = Device(hub)
        frames = await bob.send(LoginDev(id=1, login="bob"))
        seqs = [[f.seq for f in frames if isinstance(f, Message)]]
        while seqs[-1]:
            frames = await bob.send(Ack(seq=seqs[-1][-1]))
            seqs.append([f.seq for f in frames if isinstance(f, Message)])
        assert seqs == [[1, 2], [3, 4], [5], []]


async def test_a_message_published_during_the_replay_is_sent_once_after_it(hub: Hub) -> None:
    alice, _ = await logged_in(hub, "alice")
    bob, _ = await logged_in(hub, "bob")
    await befriend(alice, bob)
    await bob.leave()
    await alice.send(SendMessage(id=1, to=bob.me, text="stored", client_msg_id="1"))
    bob = Device(hub)
    real = hub.store.unacked
    calls = 0

    async def unacked_then_a_live_send(*args: object) -> object:
        nonlocal calls
        calls += 1
        rows = await real(*args)  # type: ignore[arg-type]
        if calls == 1:  # alice sends while bob's replay is reading
            await alice.send(SendMessage(id=2, to=bob.me, text="live", client_msg_id="2"))
        return rows

    hub.store.unacked = unacked_then_a_live_send  # type: ignore[method-assign,assignment]
    frames = await bob.send(LoginDev(id=1, login="bob"))
    assert [(f.seq, f.text) for f in frames if isinstance(f, Message)] == [
        (1, "stored"),
        (2, "live"),
    ]


# ---------------------------------------------------------------- presence


async def test_presence_beyond_the_window_waits_and_only_the_latest_applies(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    limits = ServerLimits(presence_updates_per_window=2, presence_window_seconds=10.0)
    async with session_hub(tmp_path / "p.sqlite3", clock, limits=limits) as hub:
        alice, _ = await logged_in(hub, "alice")
        bob, _ = await logged_in(hub, "bob")
        await befriend(alice, bob)
        bob.wire.take()
        statuses = [Status.DND, Status.AWAY, Status.DND, Status.ONLINE]
        for i, status in enumerate(statuses):
            (ok,) = await alice.send(SetPresence(id=i, status=status))
            assert isinstance(ok, Ok) and ok.id == i  # every update is answered at once
        seen = [f.status for f in bob.wire.take() if isinstance(f, PresenceUpdate)]
        assert seen == [SeenStatus.DND, SeenStatus.AWAY]
        assert clock.pending() == [clock.now + 10.0]  # one timer, no polling
        clock.advance(9.99)
        await alice.session.settle()
        assert bob.wire.take() == []
        clock.advance(0.01)
        await alice.session.settle()
        (latest,) = bob.wire.take()
        assert isinstance(latest, PresenceUpdate) and latest.status is SeenStatus.ONLINE
        assert clock.pending() == []


async def test_a_timed_status_reverts_to_online_when_it_expires(hub: Hub) -> None:
    clock = clock_of(hub)
    alice, _ = await logged_in(hub, "alice")
    bob, _ = await logged_in(hub, "bob")
    await befriend(alice, bob)
    bob.wire.take()
    until = int(clock.now) + 60
    await alice.send(SetPresence(id=1, status=Status.DND, until=until))
    (dnd,) = bob.wire.take()
    assert isinstance(dnd, PresenceUpdate) and dnd.status is SeenStatus.DND
    clock.advance(until - clock.now - 0.5)
    await alice.session.settle()
    assert bob.wire.take() == []
    clock.advance(0.5)
    await alice.session.settle()
    (online,) = bob.wire.take()
    assert isinstance(online, PresenceUpdate) and online.status is SeenStatus.ONLINE
    # The store agrees: a new device of alice starts online, not dnd.
    phone, _ = await logged_in(hub, "alice", "phone")
    assert phone.session.device.status is Status.ONLINE


async def test_a_past_until_is_refused_and_changes_nothing(hub: Hub) -> None:
    clock = clock_of(hub)
    alice, _ = await logged_in(hub, "alice")
    (error,) = await alice.send(SetPresence(id=1, status=Status.DND, until=int(clock.now) - 1))
    assert isinstance(error, Error) and error.code == ErrorCode.INVALID_MESSAGE
    assert alice.session.device.status is Status.ONLINE
    assert clock.pending() == []


# ---------------------------------------------------------------- slow readers, closes


async def test_a_reader_that_stops_is_closed_with_4003_and_the_sender_is_not_held_up(
    tmp_path: Path,
) -> None:
    limits = ServerLimits(send_buffer_bytes=4096, commands_per_minute=10**6)
    async with session_hub(tmp_path / "p.sqlite3", FakeClock(), limits=limits) as hub:
        alice, _ = await logged_in(hub, "alice")
        bob, _ = await logged_in(hub, "bob")
        await befriend(alice, bob)
        bob.wire.reading = False
        sent = 0
        to_alice: list[object] = []
        while bob.wire.closed is None:
            frames = await alice.send(
                SendMessage(id=sent, to=bob.me, text="x" * 400, client_msg_id=str(sent))
            )
            to_alice += frames
            assert sum(isinstance(f, MessageSent) and f.id == sent for f in frames) == 1
            sent += 1
            assert sent < 100, "never closed"
        assert bob.wire.closed[0] == CloseCode.SLOW_CONSUMER
        await bob.session.settle()
        assert 4096 < bob.wire.unread < 4096 + 1024  # bounded: closed at the first frame over
        written = len(bob.wire.frames)
        to_alice += await alice.send(
            SendMessage(id="after", to=bob.me, text="y", client_msg_id="after")
        )
        assert len(bob.wire.frames) == written, "nothing is written after the close"
        offline = [f for f in to_alice if isinstance(f, PresenceUpdate)]
        assert offline[-1].status is SeenStatus.OFFLINE  # friends see bob leave at once
        # What bob missed is stored: his next device gets it.
        again, _ = await logged_in(hub, "bob", "again")
        assert again.session.last_sent_seq == sent + 1  # and the one sent after the close


async def test_sign_out_replies_then_closes_with_4502(hub: Hub) -> None:
    alice, _ = await logged_in(hub, "alice")
    phone, _ = await logged_in(hub, "alice", "phone")
    (ok,) = await alice.send(SignOut(id="bye", everywhere=True))
    assert isinstance(ok, Ok) and ok.id == "bye"
    for dev in (alice, phone):
        assert dev.wire.closed is not None and dev.wire.closed[0] == CloseCode.SESSION_REVOKED


async def test_a_deleted_account_closes_every_device_with_4503(hub: Hub) -> None:
    alice, _ = await logged_in(hub, "alice")
    phone, _ = await logged_in(hub, "alice", "phone")
    (ok,) = await alice.send(DeleteAccount(id=1, confirm_login="alice"))
    assert isinstance(ok, Ok)
    for dev in (alice, phone):
        assert dev.wire.closed is not None and dev.wire.closed[0] == CloseCode.ACCOUNT_DELETED


async def test_a_server_close_leaves_the_registry_at_once(hub: Hub) -> None:
    alice, _ = await logged_in(hub, "alice")
    bob, _ = await logged_in(hub, "bob")
    await befriend(alice, bob)
    bob.wire.take()
    alice.session.close(CloseCode.SERVER_RESTART, "restarting")
    await alice.session.settle()
    assert alice.wire.closed == (CloseCode.SERVER_RESTART, "restarting")
    (gone,) = bob.wire.take()
    assert isinstance(gone, PresenceUpdate) and gone.status is SeenStatus.OFFLINE
    assert alice.session not in hub.connections


@pytest.mark.parametrize("frames", [1, 3])
async def test_a_drain_waits_for_the_end_of_the_session(hub: Hub, frames: int) -> None:
    alice, _ = await logged_in(hub, "alice")
    for i in range(frames):
        await alice.send(ListSessions(id=i))
    assert not alice.session.finished
    await alice.leave()
    await alice.session.wait_finished()  # returns at once once ended
    assert alice.session.finished
