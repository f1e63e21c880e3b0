"""Before login a connection is good for one thing: logging in.

A stranger used to be able to send well-formed frames that are not a login
(``ack`` above all: free after login, and a valid frame reset the invalid
count) for the whole auth window. Now every such frame counts as invalid
and only ``max_login_frames`` frames are read before login at all; each
test checks the close code the stranger sees and that a well-behaved user
on the same server is served throughout.
"""

from __future__ import annotations

import asyncio

from websockets.exceptions import ConnectionClosed

from presence_desktop.core.api import Link
from presence_desktop.core.state import InboxMessage
from presence_protocol import (
    AuthOk,
    CloseCode,
    Error,
    ErrorCode,
    FriendAccept,
    FriendRequest,
    Hello,
    LoginDev,
    LoginGitHubToken,
    Message,
    MessageSent,
    SendMessage,
)
from presence_server import RunningServer, ServerLimits
from tests.desktop.net.helpers import Peer, until
from tests.server.client import Client, befriend, login_dev
from tests.support.servers import StartServer

DEFAULT = ServerLimits()


async def stranger(server: RunningServer) -> Client:
    client = await Client.open(server.url)
    await client.expect(Hello)
    return client


async def pair(server: RunningServer) -> tuple[Client, Client]:
    alice = await login_dev(server.url, "alice")
    bob = await login_dev(server.url, "bob")
    await befriend(alice, bob)
    return alice, bob


async def still_served(alice: Client, bob: Client, text: str) -> None:
    reply = await alice.request(SendMessage(to=bob.me, text=text, client_msg_id=text))
    assert isinstance(reply, MessageSent), reply
    assert (await bob.expect(Message)).text == text


def closes(server: RunningServer, code: int) -> float:
    metrics = server.metrics.render()[0].decode()
    line = f'presence_closes_total{{code="{code}"}} '
    values = [float(row[len(line) :]) for row in metrics.splitlines() if row.startswith(line)]
    return sum(values)


async def test_acks_before_login_are_cut_off_at_the_documented_count(
    start: StartServer,
) -> None:
    server = await start()
    alice, bob = await pair(server)
    mallory = await stranger(server)
    sent = 0
    for n in range(DEFAULT.max_login_frames * 5):
        try:
            await mallory.send(f'{{"type":"ack","seq":{n + 1},"id":{n}}}')
        except ConnectionClosed:
            break  # the server closed while we were still sending
        sent += 1
    # Closed as too many errors, long before the 10 s auth deadline (that would be 4001).
    assert await mallory.closed() == CloseCode.TOO_MANY_ERRORS
    refusals = mallory.take(Error)
    assert len(refusals) == DEFAULT.max_login_frames  # every frame read was answered...
    assert {e.code for e in refusals} == {ErrorCode.NOT_AUTHENTICATED}
    assert [e.id for e in refusals] == list(range(DEFAULT.max_login_frames))  # ...in order
    assert sent >= DEFAULT.max_login_frames
    assert closes(server, CloseCode.TOO_MANY_ERRORS) == 1
    await still_served(alice, bob, "fine-here")
    for client in (alice, bob):
        await client.close()


async def test_valid_frames_before_login_do_not_reset_the_invalid_count(
    start: StartServer,
) -> None:
    server = await start(limits=ServerLimits(max_bad_frames=3))
    mallory = await stranger(server)
    # Junk, then well-formed commands: after login a valid frame would reset
    # the count; before login nothing does, so the third frame closes.
    await mallory.send("junk")
    await mallory.send('{"type":"ack","seq":1}')
    await mallory.send('{"type":"set_presence","status":"dnd","id":"p"}')
    assert await mallory.closed() == CloseCode.TOO_MANY_ERRORS
    codes = [e.code for e in mallory.take(Error)]
    assert codes == [
        ErrorCode.BAD_FRAME,
        ErrorCode.NOT_AUTHENTICATED,
        ErrorCode.NOT_AUTHENTICATED,
    ]
    # After login the same sequence is answered and the connection stays open.
    alice = await login_dev(server.url, "alice")
    await alice.send("junk")
    await alice.send('{"type":"ack","seq":0}')
    await alice.send("junk")
    await alice.send("junk")
    await alice.barrier()
    assert [e.code for e in alice.take(Error)] == [ErrorCode.BAD_FRAME] * 3
    await alice.close()


async def test_a_retried_login_still_works_on_the_last_frame_read(start: StartServer) -> None:
    """Failed logins are not invalid frames, but they count toward the cap: the
    last frame read may still log in; one that does not closes the connection."""
    server = await start()  # no GitHub sign-in configured: a GitHub login fails politely
    attempts = DEFAULT.max_login_frames
    patient = await stranger(server)
    for n in range(attempts - 1):
        reply = await patient.request(LoginGitHubToken(access_token=f"t{n}", device="d"))
        assert isinstance(reply, Error) and reply.code == ErrorCode.LOGIN_UNAVAILABLE, reply
    ok = await patient.request(LoginDev(login="patient", device="d"))
    assert isinstance(ok, AuthOk), ok
    await patient.barrier()  # logged in and working

    stubborn = await stranger(server)
    for n in range(attempts):
        reply = await stubborn.request(LoginGitHubToken(access_token=f"t{n}", device="d"))
        assert isinstance(reply, Error) and reply.code == ErrorCode.LOGIN_UNAVAILABLE, reply
    assert await stubborn.closed() == CloseCode.TOO_MANY_ERRORS
    await patient.close()


async def test_a_crowd_of_pre_login_floods_is_closed_while_friends_keep_talking(
    start: StartServer,
) -> None:
    server = await start()
    alice, bob = await pair(server)
    strangers = await asyncio.gather(*(stranger(server) for _ in range(20)))

    async def flood(client: Client, n: int) -> int | None:
        frames = [
            '{"type":"ack","seq":1}',
            '{"type":"list_sessions","id":1}',
            f'{{"type":"send_message","to":{bob.me},"text":"spam","client_msg_id":"{n}"}}',
            '{"type":"friend_request","login":"alice"}',
        ]
        for i in range(200):
            try:
                await client.send(frames[i % len(frames)])
            except ConnectionClosed:
                break
        return await client.closed()

    flooding = asyncio.gather(*(flood(c, n) for n, c in enumerate(strangers)))
    for n in range(5):
        await still_served(alice, bob, f"during-{n}")
    codes = await flooding
    assert codes == [CloseCode.TOO_MANY_ERRORS] * len(strangers)
    # Nothing the strangers sent reached anyone: bob has only alice's messages.
    await bob.barrier()
    assert bob.take(Message) == []
    assert all(e.code == ErrorCode.NOT_AUTHENTICATED for c in strangers for e in c.take(Error))
    for client in (alice, bob):
        await client.close()


async def test_the_desktop_client_sends_nothing_but_its_login_before_auth(
    start: StartServer,
) -> None:
    """Against a server that closes on the first frame that is not a login, the
    real desktop client signs in, acknowledges a message, and after a server-side
    drop resumes with its session (an ack is due then too) without a single 4002."""
    server = await start(limits=ServerLimits(max_login_frames=1, max_bad_frames=1))
    alice = await login_dev(server.url, "alice")
    bob = Peer(server.url, "bob")
    await bob.online()
    try:
        await alice.ok(FriendRequest(login="bob"))
        await until(lambda: alice.me in bob.state.incoming, bob.state.requests_changed)
        bob.client.send(FriendAccept(user_id=alice.me))
        await until(lambda: alice.me in bob.state.friends, bob.state.friend_added)
        got: list[InboxMessage] = []
        bob.state.message_received.connect(got.append)
        reply = await alice.request(SendMessage(to=bob.me, text="one", client_msg_id="1"))
        assert isinstance(reply, MessageSent)
        await until(lambda: len(got) == 1, bob.state.message_received)

        def onlines() -> int:
            return sum(1 for info in bob.links if info.link is Link.ONLINE)

        before = onlines()
        reply = await alice.request(SendMessage(to=bob.me, text="two", client_msg_id="2"))
        assert isinstance(reply, MessageSent)
        for conn in list(server.hub.connections):
            if conn.user is not None and conn.user.id == bob.me:
                conn.close(CloseCode.SERVER_RESTART, "test restart")
        await until(lambda: onlines() > before, bob.connection.changed)
        await until(lambda: len(got) == 2, bob.state.message_received)
        assert [m.text for m in got] == ["one", "two"]
        assert closes(server, CloseCode.TOO_MANY_ERRORS) == 0
        assert bob.errors == []
    finally:
        await bob.client.stop()
        await alice.close()
