"""The frame-size contract of docs/protocol.md §1 is what the server does.

Clients send frames of at most ``MAX_FRAME_BYTES``; the server sends frames of
at most ``MAX_SERVER_FRAME_BYTES``, announces that number in ``hello`` and
never sends more (issue 14, point 3: an export page was 60 KB while §1 said
16 KB both ways, so a client sized as the doc said was disconnected).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import msgspec
import pytest

from presence_protocol import (
    AccountExport,
    AuthOk,
    Error,
    ErrorCode,
    ExportAccount,
    Hello,
    ListSessions,
    LoginDev,
    MessageSent,
    SendMessage,
    SessionInfo,
    Sessions,
    limits,
)
from presence_server import ServerLimits
from tests.support.clock import FakeClock
from tests.support.servers import StartServer
from tests.support.sessions import Device, logged_in, session_hub
from tests.support.sessions import befriend as befriend_devices

from .client import Client, befriend, login_dev

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
NO_RATE_LIMIT = ServerLimits(commands_per_minute=100_000)
WORST_TEXT = "\x01" * limits.MAX_MESSAGE_CHARS
"""The longest message whose every code point JSON-escapes to six bytes."""


def spaced(n: int) -> str:
    return f"{n:,}".replace(",", " ")


def test_section_1_states_both_limits() -> None:
    transport = DOC.read_text(encoding="utf-8").split("## 2.", 1)[0]
    size = next(line for line in transport.splitlines() if line.startswith("| Size |"))
    assert f"**{spaced(limits.MAX_FRAME_BYTES)} bytes**" in size
    assert f"**{spaced(limits.MAX_SERVER_FRAME_BYTES)} bytes**" in size
    assert "max_server_frame_bytes" in size
    assert not re.search(r"both ways", size)


async def send_many(sender: Client, to: int, count: int) -> None:
    for n in range(count):
        reply = await sender.request(SendMessage(to=to, text=WORST_TEXT, client_msg_id=f"w{n}"))
        assert isinstance(reply, MessageSent), reply


async def test_a_client_sized_as_documented_exports_a_full_account(start: StartServer) -> None:
    server = await start(limits=NO_RATE_LIMIT)
    alice = await login_dev(server.url, "alice", max_size=limits.MAX_SERVER_FRAME_BYTES)
    bob = await login_dev(server.url, "bob")
    await befriend(alice, bob)
    await send_many(bob, alice.me, 130)
    pages: list[AccountExport] = []
    after: str | None = None
    while True:
        page = await alice.request(ExportAccount(after=after))
        assert isinstance(page, AccountExport), page
        pages.append(page)
        if page.next is None:
            break
        after = page.next
    assert sum(len(p.messages) for p in pages) == 130
    sizes = [len(frame) for frame in alice.raw]
    assert max(sizes) > limits.MAX_FRAME_BYTES  # the asymmetry the doc now states is real
    assert max(sizes) <= limits.MAX_SERVER_FRAME_BYTES
    assert alice.ws.close_code is None
    await alice.close()
    await bob.close()


async def test_hello_announces_the_server_frame_limit(start: StartServer) -> None:
    server = await start()
    client = await Client.open(server.url)
    hello = await client.expect(Hello)
    assert hello.limits.max_frame_bytes == limits.MAX_FRAME_BYTES
    assert hello.limits.max_server_frame_bytes == limits.MAX_SERVER_FRAME_BYTES
    await client.close()


async def test_a_reply_that_would_not_fit_is_an_error_and_nothing_bigger_is_sent(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The last line of defence: no reply outgrows the limit by design (§8; a
    ``sessions`` list is paged), but one that did is refused with
    ``internal_error`` and logged, not sent, and the connection carries on."""
    shrunk = ServerLimits(commands_per_minute=100_000, max_server_frame_bytes=4000)
    async with session_hub(tmp_path / "presence.sqlite3", FakeClock(), limits=shrunk) as hub:
        alice, _ = await logged_in(hub, "alice")
        entry = SessionInfo(id="f" * 16, device="d" * 64, created_at=1, last_used_at=1)
        alice.session.send(Sessions(id=7, sessions=[entry] * 40))  # an unpaged list
        (reply,) = alice.wire.take()
        assert isinstance(reply, Error) and (reply.code, reply.id) == (ErrorCode.INTERNAL_ERROR, 7)
        assert all(len(frame) <= 4000 for frame in alice.wire.frames)
        assert "exceeds the 4000-byte frame limit" in caplog.text
        assert alice.wire.closed is None  # still connected: only that reply was refused
        (page,) = await alice.send(ListSessions(id=8))  # the real reply fits
        assert isinstance(page, Sessions) and len(page.sessions) == 1


async def test_a_snapshot_entry_that_fits_no_frame_closes_with_1011(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A snapshot longer than the limit comes in parts (tests/server/test_big_accounts.py);
    only an entry that alone exceeds a frame leaves nothing to send: 1011, so the
    client reconnects. The configuration check refuses any limit that small
    (test_frame_limit_config.py, test_frame_bounds.py), so this defence is
    reached only by a hub built without it, as here."""
    path = tmp_path / "presence.sqlite3"
    async with session_hub(path, FakeClock()) as hub:
        alice, _ = await logged_in(hub, "alice")
        bob, _ = await logged_in(hub, "bob")
        await befriend_devices(alice, bob)
        await bob.leave()
        await alice.leave()
        again, _ = await logged_in(hub, "alice")
        (snapshot,) = [f for f in again.wire.frames if b'"type":"snapshot"' in f]
        whole = msgspec.json.decode(snapshot)
        entry = len(msgspec.json.encode(whole["friends"][0]))
        envelope = len(snapshot) - entry
        await again.leave()
    limit = max(envelope, entry) + 20  # the envelope fits, envelope plus the entry does not
    assert envelope + entry > limit
    caplog.set_level(logging.ERROR)
    shrunk = ServerLimits(max_server_frame_bytes=limit)
    async with session_hub(path, FakeClock(), limits=shrunk) as hub:
        dev = Device(hub)
        (hello,) = dev.wire.take()
        assert isinstance(hello, Hello) and hello.limits.max_server_frame_bytes == limit
        frames = await dev.send(LoginDev(id=1, login="alice"))
        assert dev.wire.closed is not None and dev.wire.closed[0] == 1011
        assert any(isinstance(f, AuthOk) for f in frames)
        assert all(len(frame) <= limit for frame in dev.wire.frames[1:])  # after hello
        assert "Snapshot frame" in caplog.text


async def test_an_error_quoting_a_long_value_is_cut_to_the_documented_length(
    tmp_path: Path,
) -> None:
    """msgspec quotes an invalid enum value whole; the server cuts the text to
    ``MAX_ERROR_MESSAGE_CHARS`` so that an ``error`` stays a bounded frame (§8)."""
    async with session_hub(tmp_path / "presence.sqlite3", FakeClock()) as hub:
        alice, _ = await logged_in(hub, "alice")
        long_value = "\\\\" * 8000  # each backslash doubles in the quote, and again in JSON
        frame = '{"type":"set_presence","id":3,"status":"' + long_value + '"}'
        assert len(frame) <= limits.MAX_FRAME_BYTES
        (error,) = await alice.send(frame)
        assert isinstance(error, Error)
        assert (error.code, error.id) == (ErrorCode.INVALID_MESSAGE, 3)
        assert error.message.startswith("set_presence: Invalid enum value")
        assert len(error.message) == limits.MAX_ERROR_MESSAGE_CHARS
        assert len(alice.wire.frames[-1]) <= limits.MIN_SERVER_FRAME_BYTES
        (page,) = await alice.send(ListSessions(id=4))  # the connection carries on
        assert isinstance(page, Sessions)
