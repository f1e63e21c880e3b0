"""Hostile input gets an error reply or a close code; everyone else keeps being served."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from presence_protocol import (
    CloseCode,
    Error,
    ErrorCode,
    ListSessions,
    Message,
    MessageSent,
    PresenceUpdate,
    SeenStatus,
    SendMessage,
    Sessions,
    decode_server,
    limits,
)
from presence_server import RunningServer, ServerLimits
from tests.support.servers import StartServer

from .client import Client, befriend, login_dev
from .conftest import Login

Probe = Callable[[], Awaitable[None]]


@pytest.fixture
async def bystanders(login: Login) -> Probe:
    """Two friends; ``probe()`` checks that a message still goes from one to the other."""
    carol = await login("carol")
    dave = await login("dave")
    await befriend(carol, dave)
    counter = iter(range(1000))

    async def probe() -> None:
        n = next(counter)
        reply = await carol.request(
            SendMessage(to=dave.me, text=f"still here {n}", client_msg_id=f"p{n}")
        )
        assert isinstance(reply, MessageSent)
        assert (await dave.expect(Message)).text == f"still here {n}"

    return probe


async def test_garbage_gets_errors_and_the_connection_keeps_working(
    login: Login, bystanders: Probe
) -> None:
    mallory = await login("mallory")
    cases: list[tuple[str | bytes, ErrorCode, Any]] = [
        ("not json at all", ErrorCode.BAD_FRAME, None),
        (b"\x00\x01binary", ErrorCode.BAD_FRAME, None),
        ("[1, 2, 3]", ErrorCode.BAD_FRAME, None),
        ('"just a string"', ErrorCode.BAD_FRAME, None),
        ("{}", ErrorCode.INVALID_MESSAGE, None),
        ('{"id": 3}', ErrorCode.INVALID_MESSAGE, 3),
        ('{"type": "teleport", "id": 7}', ErrorCode.UNKNOWN_TYPE, 7),
        ('{"type": 12, "id": "x"}', ErrorCode.UNKNOWN_TYPE, "x"),
        ('{"type": "friend_request", "login": 42, "id": "r1"}', ErrorCode.INVALID_MESSAGE, "r1"),
        ('{"type": "set_presence", "status": "sleepy", "id": 9}', ErrorCode.INVALID_MESSAGE, 9),
        ('{"type": "ack", "seq": -1, "id": 10}', ErrorCode.INVALID_MESSAGE, 10),
        ('{"type": "send_message", "to": 1, "id": 11}', ErrorCode.INVALID_MESSAGE, 11),
        ('{"type":"ack","seq":' + "[" * 6000 + "]" * 6000 + "}", None, None),
        ('{"type": "list_sessions", "id": 1e400}', None, None),
    ]
    for frame, code, rid in cases:
        await mallory.send(frame)
        error = await mallory.expect(Error)
        if code is not None:
            assert error.code == code, (frame[:40], error)
        else:
            assert error.code in (ErrorCode.BAD_FRAME, ErrorCode.INVALID_MESSAGE)
        assert error.id == rid
        await bystanders()
    # Still the same working connection.
    assert isinstance(await mallory.request(ListSessions()), Sessions)


async def test_unknown_fields_are_ignored(login: Login) -> None:
    alice = await login("alice")
    await alice.send('{"type": "list_sessions", "id": "u", "future_field": {"x": [1]}}')
    reply = await alice.expect(Sessions)
    assert reply.id == "u"


async def test_many_bad_frames_in_a_row_close_with_4002(login: Login, bystanders: Probe) -> None:
    mallory = await login("mallory")
    bad = limits_max_bad = ServerLimits().max_bad_frames
    # A valid frame in between resets the count.
    for _ in range(bad - 1):
        await mallory.send("junk")
    assert isinstance(await mallory.request(ListSessions()), Sessions)
    for _ in range(limits_max_bad):
        await mallory.send("junk")
    assert await mallory.closed() == CloseCode.TOO_MANY_ERRORS
    assert len(mallory.take(Error)) == 2 * bad - 1  # every bad frame was answered
    await bystanders()


async def test_frame_bigger_than_the_limit_closes_with_1009(
    server: RunningServer, login: Login, bystanders: Probe
) -> None:
    alice = await login("alice")
    # Exactly at the limit is fine (unknown padding fields are ignored)...
    head = '{"type":"list_sessions","id":"big","pad":"'
    frame = head + "x" * (limits.MAX_FRAME_BYTES - len(head) - 2) + '"}'
    assert len(frame.encode()) == limits.MAX_FRAME_BYTES
    await alice.send(frame)
    assert (await alice.expect(Sessions)).id == "big"
    # ...one byte more closes the connection with 1009 (message too big).
    mallory = await login("mallory")
    await mallory.send(frame[:-2] + 'x"}')
    assert await mallory.closed() == 1009
    await bystanders()


async def test_invalid_utf8_in_a_text_frame_closes_with_1007(
    login: Login, bystanders: Probe
) -> None:
    mallory = await login("mallory")
    await mallory.ws.send(b'{"type":"\xff"}', text=True)
    assert await mallory.closed() == 1007
    await bystanders()


async def test_handler_failure_is_an_internal_error_not_a_crash(
    server: RunningServer, login: Login, monkeypatch: pytest.MonkeyPatch, bystanders: Probe
) -> None:
    alice = await login("alice")
    store = server.hub.store
    real = store.list_sessions_page
    failures = iter([True])

    async def flaky(user_id: int, after: Any, limit: int) -> Any:
        if next(failures, False):
            raise RuntimeError("disk on fire")
        return await real(user_id, after, limit)

    monkeypatch.setattr(store, "list_sessions_page", flaky)
    error = await alice.error(ListSessions())
    assert error.code == ErrorCode.INTERNAL_ERROR
    assert "disk" not in error.message  # internals are logged, not sent
    assert isinstance(await alice.request(ListSessions()), Sessions)
    await bystanders()


async def test_a_client_that_does_not_read_is_closed_with_4003(start: StartServer) -> None:
    server = await start(
        limits=ServerLimits(send_buffer_bytes=64 * 1024, commands_per_minute=10**6)
    )
    # Sixty sessions make every `sessions` reply about 5 KB.
    for i in range(59):
        await (await login_dev(server.url, "mallory", f"device-{i:02}")).close()
    carol = await login_dev(server.url, "carol")
    mallory = await login_dev(server.url, "mallory", "device-59")
    await befriend(carol, mallory)
    token = mallory.session
    await mallory.close()
    assert (await carol.expect(PresenceUpdate)).status is SeenStatus.OFFLINE

    # A socket with a tiny receive buffer, and a client that reads nothing.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", server.port))
        async with connect(
            server.url,
            sock=sock,
            subprotocols=[limits.SUBPROTOCOL],  # type: ignore[list-item]
            max_queue=1,
        ) as ws:
            await ws.send(f'{{"type":"auth","session":"{token}"}}')
            assert (await carol.expect(PresenceUpdate)).status is SeenStatus.ONLINE
            requests = 3000  # about 15 MB of replies, far more than socket buffers hold
            for _ in range(requests):
                await ws.send('{"type":"list_sessions"}')
            # The server gives up on mallory (friends see her leave at once) while
            # carol is served as usual.
            assert (await carol.expect(PresenceUpdate)).status is SeenStatus.OFFLINE
            assert isinstance(await carol.request(ListSessions()), Sessions)

            replies = 0
            try:
                async for data in ws:
                    if isinstance(decode_server(data), Sessions):
                        replies += 1
            except ConnectionClosed:
                pass
    assert ws.close_code == CloseCode.SLOW_CONSUMER
    assert replies < requests  # dropped rather than queued without bound
    await carol.close()


async def test_nothing_a_stranger_sends_before_login_reaches_anyone(
    server: RunningServer, bystanders: Probe
) -> None:
    client = await Client.open(server.url)
    for frame in ("junk", '{"type":"set_presence","status":"dnd"}', '{"type":"ack","seq":5}'):
        await client.send(frame)
        error = await client.expect(Error)
        assert error.code in (ErrorCode.BAD_FRAME, ErrorCode.NOT_AUTHENTICATED)
    await bystanders()
    await client.close()
