"""PresenceClient against a real presence_server on a loopback port."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterator

import pytest

from presence_desktop.core.api import Link
from presence_desktop.core.credentials import MemoryCredentials
from presence_desktop.core.events import Signal
from presence_desktop.core.state import InboxMessage
from presence_protocol import (
    Activity,
    AuthOk,
    ClientMessage,
    Friend,
    FriendAccept,
    FriendRequest,
    Presence,
    SeenStatus,
    SendMessage,
    SetPresence,
    Snapshot,
    Status,
    User,
    encode_text,
    limits,
)
from tests.support.servers import ServerHandle

from .helpers import TIMEOUT, Peer, next_emit, until

MakePeer = Callable[..., Peer]


async def befriend(a: Peer, b: Peer) -> None:
    assert b.state.me is not None
    a.client.send(FriendRequest(login=b.state.me.login))
    await until(lambda: a.me in b.state.incoming, b.state.requests_changed)
    b.client.send(FriendAccept(user_id=a.me))
    await until(lambda: b.me in a.state.friends, a.state.friend_added)
    await until(lambda: a.me in b.state.friends, b.state.friend_added)


async def test_dev_login_stores_the_session_and_the_session_signs_in_next_time(
    make_peer: MakePeer,
) -> None:
    alice = make_peer("alice")
    await alice.online()
    assert alice.state.me is not None and alice.state.me.login == "alice"
    token = alice.credentials.get()
    assert token

    again = make_peer(None, credentials=MemoryCredentials(token))
    replies: list[AuthOk] = []
    again.client.authenticated.connect(replies.append)
    await again.online()
    [reply] = replies
    assert reply.session is None  # resumed, no new token
    assert again.me == alice.me
    assert again.credentials.get() == token
    assert [i.link for i in again.links] == [Link.CONNECTING, Link.ONLINE]


async def test_snapshot_fills_the_state_and_deltas_keep_it_current(make_peer: MakePeer) -> None:
    alice, bob = make_peer("alice"), make_peer("bob")
    await alice.online()
    await bob.online()
    await befriend(alice, bob)
    await alice.client.stop()

    # A fresh desktop for alice: everything comes from the snapshot.
    alice2 = make_peer("alice")
    await alice2.online()
    assert set(alice2.state.friends) == {bob.me}
    assert alice2.state.friends[bob.me].status is SeenStatus.ONLINE

    bob.client.set_presence(
        SetPresence(status=Status.ONLINE, activity=Activity(language="Rust", project="engine"))
    )
    await until(
        lambda: (a := alice2.state.friends[bob.me].activity) is not None and a.language == "Rust",
        alice2.state.friend_changed,
    )
    await bob.client.stop()
    await until(
        lambda: alice2.state.friends[bob.me].status is SeenStatus.OFFLINE,
        alice2.state.friend_changed,
    )
    assert alice2.state.friends[bob.me].last_seen is not None


async def test_commands_queue_while_offline_and_are_delivered_once_after_reconnect(
    server: ServerHandle, make_peer: MakePeer
) -> None:
    alice, bob, carol = make_peer("alice"), make_peer("bob"), make_peer("carol")
    for p in (alice, bob, carol):
        await p.online()
    await befriend(alice, bob)
    delivered: list[ClientMessage] = []
    alice.client.delivered.connect(delivered.append)

    await server.stop()
    info = await alice.wait_link(Link.RECONNECTING)
    assert info.retry_at is not None
    alice.client.send_message(bob.me, "sent while the server was down")
    alice.client.send(FriendRequest(login="carol"))
    assert len(alice.client.pending()) == 2

    await server.start()
    await until(lambda: not alice.client.pending(), alice.client.outbox_changed)
    assert [type(c) for c in delivered] == [SendMessage, FriendRequest]
    await until(lambda: bob.state.inbox, bob.state.inbox_changed)
    await until(lambda: alice.me in carol.state.incoming, carol.state.requests_changed)
    # A round trip through bob proves nothing else is on its way.
    await befriend(bob, carol)
    assert [m.text for m in bob.state.inbox] == ["sent while the server was down"]


async def test_a_resent_message_with_the_same_id_is_stored_once(make_peer: MakePeer) -> None:
    alice, bob = make_peer("alice"), make_peer("bob")
    await alice.online()
    await bob.online()
    await befriend(alice, bob)
    alice.client.send_message(bob.me, "hello", client_msg_id="same-id")
    await until(lambda: not alice.client.pending(), alice.client.outbox_changed)
    # The app restarts after sending but before it saw the reply, and sends again.
    token = alice.credentials.get()
    await alice.client.stop()
    again = make_peer(None, credentials=MemoryCredentials(token))
    await again.online()
    again.client.send_message(bob.me, "hello", client_msg_id="same-id")
    await until(lambda: not again.client.pending(), again.client.outbox_changed)
    again.client.send_message(bob.me, "second", client_msg_id="other-id")
    await until(lambda: len(bob.state.inbox) >= 2, bob.state.inbox_changed)
    assert [m.text for m in bob.state.inbox] == ["hello", "second"]


async def test_a_message_in_flight_during_a_server_stop_arrives_exactly_once(
    server: ServerHandle, make_peer: MakePeer
) -> None:
    alice, bob = make_peer("alice"), make_peer("bob")
    await alice.online()
    await bob.online()
    await befriend(alice, bob)
    for i in range(5):
        alice.client.send_message(bob.me, f"burst {i}")
    await server.stop()  # some were sent and stored, some not; replies are lost
    await server.start()
    await until(lambda: not alice.client.pending(), alice.client.outbox_changed)
    await until(lambda: len(bob.state.inbox) >= 5, bob.state.inbox_changed)
    alice.client.send_message(bob.me, "marker")
    await until(lambda: bob.state.inbox[-1].text == "marker", bob.state.inbox_changed)
    assert [m.text for m in bob.state.inbox] == [f"burst {i}" for i in range(5)] + ["marker"]


async def test_messages_are_acked_after_storing_and_not_replayed(
    server: ServerHandle, make_peer: MakePeer
) -> None:
    alice, bob = make_peer("alice"), make_peer("bob")
    await alice.online()
    await bob.online()
    await befriend(alice, bob)
    token = alice.credentials.get()
    await alice.client.stop()
    for text in ("one", "two"):
        bob.client.send_message(alice.me, text)
    await until(lambda: not bob.client.pending(), bob.client.outbox_changed)

    stored: list[tuple[int, list[str]]] = []
    storing = Signal[int]()

    def store(seq: int) -> None:
        stored.append((seq, [m.text for m in alice2.state.inbox]))
        storing.emit(seq)

    alice2 = make_peer(None, credentials=MemoryCredentials(token), before_ack=store)
    received: list[InboxMessage] = []
    alice2.state.message_received.connect(received.append)
    await alice2.online()
    await until(lambda: stored and stored[-1][0] == 2, storing)
    assert stored[-1] == (2, ["one", "two"])  # stored before the ack went out

    # After a server restart nothing acked comes back.
    await server.stop()
    await server.start()
    await alice2.wait_link(Link.ONLINE)
    bob.client.send_message(alice.me, "three")
    await until(lambda: len(received) >= 3, alice2.state.message_received)
    assert [m.text for m in received] == ["one", "two", "three"]


async def test_unacked_messages_are_replayed_and_deduplicated(
    server: ServerHandle, make_peer: MakePeer
) -> None:
    alice, bob = make_peer("alice"), make_peer("bob")
    await alice.online()
    await bob.online()
    await befriend(alice, bob)

    def refuse(seq: int) -> None:
        raise OSError("disk full")

    token = alice.credentials.get()
    await alice.client.stop()
    alice2 = make_peer(None, credentials=MemoryCredentials(token), before_ack=refuse)
    received: list[InboxMessage] = []
    alice2.state.message_received.connect(received.append)
    await alice2.online()
    bob.client.send_message(alice.me, "keep me")
    await until(lambda: received, alice2.state.message_received)
    # Storing failed, so no ack: the server replays it after a restart, and the
    # state recognises the id instead of showing it twice.
    await server.stop()
    await server.start()
    await alice2.wait_link(Link.ONLINE)
    bob.client.send_message(alice.me, "after")
    await until(lambda: len(received) >= 2, alice2.state.message_received)
    assert [m.text for m in alice2.state.inbox] == ["keep me", "after"]


@pytest.mark.parametrize(
    ("login", "code", "title"),
    [
        ("nobody-here", "unknown_user", "No such user"),
        ("bob", "already_friends", "Already friends"),
        ("alice", "self_request", "That is you"),
    ],
)
async def test_refused_commands_surface_as_user_errors_with_the_code(
    make_peer: MakePeer, login: str, code: str, title: str
) -> None:
    alice, bob = make_peer("alice"), make_peer("bob")
    await alice.online()
    await bob.online()
    await befriend(alice, bob)
    alice.client.send(FriendRequest(login=login))
    error = await next_emit(alice.client.errors)
    assert (error.code, error.title) == (code, title)
    assert login in error.message or code == "self_request"
    assert alice.client.pending() == []


async def test_a_bad_token_stops_retrying_and_says_sign_in_again(make_peer: MakePeer) -> None:
    creds = MemoryCredentials("not-a-real-session-token")
    peer = make_peer(None, credentials=creds)
    peer.client.start()
    info = await peer.wait_signed_out_by_server()
    assert info.title == "Signed out" and "Sign in again" in info.message
    assert creds.get() is None
    assert not peer.client.running


async def test_a_stale_token_falls_back_to_the_dev_login(make_peer: MakePeer) -> None:
    creds = MemoryCredentials("stale-token-from-an-old-database")
    peer = make_peer("alice", credentials=creds)
    await peer.online()
    assert peer.state.me is not None and peer.state.me.login == "alice"
    assert creds.get() not in (None, "stale-token-from-an-old-database")


async def test_signing_out_everywhere_ends_other_devices_with_a_message(
    make_peer: MakePeer,
) -> None:
    laptop = make_peer("alice")
    await laptop.online()
    desktop = make_peer(None, credentials=MemoryCredentials())
    desktop.client.dev_login = "alice"
    await desktop.online()
    await laptop.client.sign_out(everywhere=True)
    assert laptop.connection.current.link is Link.SIGNED_OUT
    assert laptop.credentials.get() is None and laptop.state.me is None
    info = await desktop.wait_signed_out_by_server()
    assert "signed out" in info.message.lower()
    assert desktop.credentials.get() is None
    assert not desktop.client.running


async def test_without_credentials_or_dev_login_nothing_connects(make_peer: MakePeer) -> None:
    peer = make_peer(None)
    peer.client.start()
    await until(lambda: peer.links, peer.connection.changed)
    info = peer.links[0]
    assert info.title == "Not signed in"
    assert [i.link for i in peer.links] == [Link.SIGNED_OUT]


async def test_an_invalid_address_is_terminal(make_peer: MakePeer) -> None:
    peer = make_peer("alice", url="not a url")
    peer.client.start()
    info = await peer.wait_link(Link.OFFLINE)
    assert info.title == "Invalid server address"


async def test_reconnect_now_skips_a_long_backoff(
    server: ServerHandle, make_peer: MakePeer
) -> None:
    peer = make_peer("alice", backoff=lambda: itertools.repeat(3600.0))
    await peer.online()
    await server.stop()
    info = await peer.wait_link(Link.RECONNECTING)
    assert info.retry_at is not None
    await server.start()
    peer.client.reconnect_now()
    # The usual hang guard: a quarter of a minute proves the hour was skipped.
    await peer.wait_link(Link.ONLINE)


@pytest.mark.parametrize(("stable_after", "fresh_generators"), [(0.0, 3), (3600.0, 1)])
async def test_a_stable_connection_resets_the_backoff(
    server: ServerHandle, make_peer: MakePeer, stable_after: float, fresh_generators: int
) -> None:
    made: list[int] = []

    def counting() -> Iterator[float]:
        made.append(1)
        return itertools.repeat(0.01)

    peer = make_peer("alice", backoff=counting, stable_after=stable_after)
    await peer.online()
    for _ in range(2):
        await server.stop()
        await server.start()
        await peer.wait_link(Link.ONLINE)
    assert len(made) == fresh_generators


async def test_my_presence_is_sent_again_after_every_reconnect(
    server: ServerHandle, make_peer: MakePeer
) -> None:
    alice, bob = make_peer("alice"), make_peer("bob")
    await alice.online()
    await bob.online()
    await befriend(alice, bob)
    alice.client.set_presence(SetPresence(status=Status.DND, activity=Activity(language="Go")))
    await until(
        lambda: bob.state.friends[alice.me].status is SeenStatus.DND, bob.state.friend_changed
    )
    await server.stop()
    await server.start()
    await bob.wait_link(Link.ONLINE)
    await alice.wait_link(Link.ONLINE)
    await until(
        lambda: (
            (f := bob.state.friends.get(alice.me)) is not None
            and f.status is SeenStatus.DND
            and f.activity is not None
            and f.activity.language == "Go"
        ),
        bob.state.friend_changed,
        bob.state.reset,
    )


async def test_unknown_frames_from_a_newer_server_are_skipped(make_peer: MakePeer) -> None:
    peer = make_peer("alice")
    await peer.online()
    peer.client._dispatch('{"type": "from_the_future", "x": 1}')
    peer.client._dispatch("not json")
    assert peer.connection.current.link is Link.ONLINE


async def test_invalid_commands_are_refused_before_queueing(make_peer: MakePeer) -> None:
    peer = make_peer("alice")
    with pytest.raises(ValueError, match="login"):
        peer.client.send(FriendRequest(login="not a login!"))
    with pytest.raises(ValueError):
        peer.client.send_message(5, "x" * 501)
    assert peer.client.pending() == []


async def test_stop_is_prompt_even_while_waiting_to_reconnect(
    server: ServerHandle, make_peer: MakePeer
) -> None:
    peer = make_peer("alice", backoff=lambda: itertools.repeat(3600.0))
    await peer.online()
    await server.stop()
    await peer.wait_link(Link.RECONNECTING)
    # Prompt means long before the hour's wait, not within a time this
    # machine may or may not manage while busy: the usual hang guard.
    await asyncio.wait_for(peer.client.stop(), TIMEOUT)
    assert not peer.client.running


async def test_a_snapshot_of_a_thousand_friends_is_accepted(make_peer: MakePeer) -> None:
    peer = make_peer("alice")
    await peer.online()
    friends = [
        Friend(
            user=User(id=100 + i, login=f"user-{i}", avatar_url=f"https://example.org/a/{i}"),
            presence=Presence(status=SeenStatus.ONLINE, activity=Activity(language="Python")),
        )
        for i in range(limits.MAX_FRIENDS)
    ]
    frame = encode_text(Snapshot(me=peer.state.me or User(id=1, login="a"), friends=friends))
    assert len(frame) > limits.MAX_FRAME_BYTES
    peer.client._dispatch(frame)
    assert len(peer.state.friends) == limits.MAX_FRIENDS
