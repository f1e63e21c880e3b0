"""The server keeps messages and sessions only as long as docs/protocol.md says.

Time is moved by giving the hub a clock that reads later, then running one
retention sweep, exactly what the periodic task does every interval.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from presence_protocol import (
    Ack,
    AckExpired,
    Auth,
    CloseCode,
    Error,
    ErrorCode,
    Hello,
    Message,
    MessageExpired,
    MessageSent,
    Retention,
    SendMessage,
    SignOut,
)
from presence_server import RetentionPolicy, RunningServer
from presence_server.__main__ import _retention as retention_from_args
from presence_server.__main__ import build_parser, main
from tests.server.client import Client, befriend, login_dev
from tests.support.clock import FakeClock
from tests.support.servers import StartServer

from .conftest import rows

POLICY = RetentionPolicy(
    delivered_messages=100, undelivered_messages=1000, idle_sessions=5000, sweep_interval=3600
)


def at(server: RunningServer, monkeypatch: pytest.MonkeyPatch, offset: int) -> None:
    """From now on the server believes ``offset`` seconds have passed."""
    base = int(time.time())
    monkeypatch.setattr(server.hub, "now", lambda: base + offset)


async def sweep(server: RunningServer) -> None:
    assert server.sweeper is not None
    await server.sweeper.run_once()


async def send(client: Client, to: Client, text: str, cmid: str) -> MessageSent:
    reply = await client.request(SendMessage(to=to.me, text=text, client_msg_id=cmid))
    assert isinstance(reply, MessageSent), reply
    return reply


async def test_hello_announces_the_retention_policy(start: StartServer) -> None:
    server = await start(retention=POLICY)
    client = await Client.open(server.url)
    hello = await client.expect(Hello)
    assert hello.retention == Retention(
        delivered_messages=100, undelivered_messages=1000, idle_sessions=5000
    )
    await client.close()


async def test_delivered_messages_go_after_their_period_undelivered_ones_wait_longer(
    start: StartServer, db_path: Path
) -> None:
    """Ages up to a second short of a period, so the server's clock is this
    test's: read from the real clock, a busy machine's second or two between
    sending and sweeping made 999 seconds a thousand and one."""
    clock = FakeClock()
    sent_at = clock.now
    server = await start(retention=POLICY, clock_ns=lambda: int(clock.now * 1_000_000_000))
    alice = await login_dev(server.url, "alice")
    bob = await login_dev(server.url, "bob")
    await befriend(alice, bob)
    delivered = await send(alice, bob, "read this", "m-1")
    assert (await bob.expect(Message)).seq == 1
    await bob.send(Ack(seq=1))
    pending = await send(alice, bob, "and this", "m-2")
    await bob.expect(Message)  # received but never acknowledged
    await bob.barrier()

    clock.now = sent_at + 50
    await sweep(server)
    assert len(rows(db_path, "SELECT id FROM messages")) == 2

    clock.now = sent_at + 101
    await sweep(server)
    assert rows(db_path, "SELECT id, text FROM messages") == [(int(pending.message_id), "and this")]
    assert delivered.message_id != pending.message_id

    clock.now = sent_at + 999
    await sweep(server)
    assert rows(db_path, "SELECT text, expired_at FROM messages") == [("and this", None)]
    await alice.barrier()
    assert alice.take(MessageExpired) == []
    await alice.close()
    await bob.close()


async def test_an_expired_message_is_emptied_and_its_sender_told_until_they_acknowledge(
    start: StartServer, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await start(retention=POLICY)
    alice = await login_dev(server.url, "alice")
    bob = await login_dev(server.url, "bob")
    await befriend(alice, bob)
    bob_token = bob.session
    await bob.close()  # bob is away for a long time
    sent = await send(alice, bob, "are you there?", "m-1")

    at(server, monkeypatch, 1001)
    await sweep(server)
    # The text is gone at once; only what the sender needs to be told remains.
    assert rows(db_path, "SELECT text, expired_at IS NOT NULL FROM messages") == [("", 1)]
    notice = await alice.expect(MessageExpired)  # live, to the connected sender
    assert (notice.message_id, notice.client_msg_id, notice.to) == (
        sent.message_id,
        "m-1",
        bob.me,
    )
    assert notice.sent_at == sent.sent_at and notice.expired_at > notice.sent_at

    # A resend of the same client_msg_id is still recognised, not stored again.
    again = await send(alice, bob, "are you there?", "m-1")
    assert again.message_id == sent.message_id
    assert len(rows(db_path, "SELECT id FROM messages")) == 1

    # Bob comes back: the expired message is not replayed to him.
    returning = await Client.open(server.url)
    await returning.expect(Hello)
    await returning.request(Auth(session=bob_token or ""))
    await returning.barrier()
    assert returning.take(Message) == []

    # Every new login of the sender hears it again until it is acknowledged.
    laptop = await login_dev(server.url, "alice", "laptop")
    assert (await laptop.expect(MessageExpired)).message_id == sent.message_id
    await laptop.ok(AckExpired(message_ids=[sent.message_id]))
    assert rows(db_path, "SELECT id FROM messages") == []
    later = await login_dev(server.url, "alice", "desktop")
    await later.barrier()
    assert later.take(MessageExpired) == []
    for client in (alice, returning, laptop, later):
        await client.close()


async def test_ack_expired_only_forgets_my_own_notices(
    start: StartServer, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await start(retention=POLICY)
    alice = await login_dev(server.url, "alice")
    bob = await login_dev(server.url, "bob")
    await befriend(alice, bob)
    sent = await send(alice, bob, "hello", "m-1")
    at(server, monkeypatch, 1001)
    await sweep(server)
    # Bob (or anyone) naming alice's message id, garbage, or huge numbers changes nothing.
    await bob.ok(AckExpired(message_ids=[sent.message_id, "x", "99999999999999999999"]))
    assert len(rows(db_path, "SELECT id FROM messages")) == 1
    # Tombstones of a sender who never returns go after another period.
    at(server, monkeypatch, 2002)
    await sweep(server)
    assert rows(db_path, "SELECT id FROM messages") == []
    await alice.close()
    await bob.close()


async def test_an_idle_session_stops_working_at_once_and_is_deleted_by_the_sweep(
    start: StartServer, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await start(retention=POLICY)
    idle = await login_dev(server.url, "alice", "old laptop")
    token = idle.session
    await idle.close()
    live = await login_dev(server.url, "alice", "desktop")
    signed_out = await login_dev(server.url, "alice", "phone")
    await signed_out.ok(SignOut())
    assert await signed_out.closed() == CloseCode.SESSION_REVOKED

    at(server, monkeypatch, 5001)
    # Refused before any sweep ran: the check is at sign-in.
    client = await Client.open(server.url)
    await client.expect(Hello)
    error = await client.request(Auth(session=token or ""))
    assert isinstance(error, Error) and error.code == ErrorCode.AUTH_FAILED
    assert await client.closed() == CloseCode.AUTH_FAILED

    await sweep(server)
    # The idle and the revoked session are gone; the connected one counts as used.
    assert rows(db_path, "SELECT device FROM sessions") == [("desktop",)]
    await live.barrier()
    await live.close()


async def test_last_seen_is_one_timestamp_and_reconnects_leave_no_history(
    start: StartServer, db_path: Path
) -> None:
    server = await start(retention=POLICY)
    alice = await login_dev(server.url, "alice")
    bob = await login_dev(server.url, "bob")
    await befriend(alice, bob)
    token = bob.session or ""
    await bob.close()

    def table_sizes() -> dict[str, int]:
        names = [r[0] for r in rows(db_path, "SELECT name FROM sqlite_master WHERE type='table'")]
        return {n: rows(db_path, f"SELECT count(*) FROM {n}")[0][0] for n in names}

    before = table_sizes()
    for _ in range(3):
        again = await Client.open(server.url)
        await again.expect(Hello)
        await again.request(Auth(session=token))
        await again.close()
        await alice.barrier()
    assert table_sizes() == before
    columns = [r[1] for r in rows(db_path, "PRAGMA table_info(users)")]
    assert [c for c in columns if "seen" in c] == ["last_seen"]
    await alice.close()


def test_retention_flags_and_environment() -> None:
    parser = build_parser({"PRESENCE_KEEP_UNDELIVERED_DAYS": "60"})
    args = parser.parse_args(["--keep-delivered-days", "0.5", "--session-idle-days", "14"])
    assert retention_from_args(args) == RetentionPolicy(
        delivered_messages=43200, undelivered_messages=60 * 86400, idle_sessions=14 * 86400
    )
    defaults = retention_from_args(build_parser({}).parse_args([]))
    assert defaults == RetentionPolicy()


def test_inconsistent_retention_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--keep-delivered-days", "30", "--keep-undelivered-days", "7"]) == 2
    assert "undelivered messages must be kept at least as long" in capsys.readouterr().err
    assert main(["--session-idle-days", "0"]) == 2
    assert "at least one second" in capsys.readouterr().err
