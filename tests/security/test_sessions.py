"""Sessions: forged, revoked and expired tokens are refused; a revoked device goes at once.

What a token is worth is decided by the server's database alone: anything
that is not the exact token of a live session, used recently enough, gets
``auth_failed`` and close 4500, and leaves no trace (no session, no user).
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import time
from pathlib import Path

import pytest

from presence_protocol import (
    Auth,
    AuthOk,
    CloseCode,
    Error,
    ErrorCode,
    Hello,
    ListSessions,
    PresenceUpdate,
    RevokeSession,
    SeenStatus,
    Sessions,
    SignOut,
)
from presence_server import RetentionPolicy, RunningServer
from tests.server.client import Client, befriend, login_dev
from tests.support.servers import StartServer


async def try_token(server: RunningServer, token: str) -> tuple[Error | AuthOk, int | None]:
    client = await Client.open(server.url)
    await client.expect(Hello)
    reply = await client.request(Auth(session=token))
    assert isinstance(reply, Error | AuthOk), reply
    if isinstance(reply, AuthOk):
        await client.close()
        return reply, None
    return reply, await client.closed()


async def try_token_at(url: str, token: str) -> int | None:
    """The close code a sign-in with ``token`` gets (None: it was accepted)."""
    client = await Client.open(url)
    await client.expect(Hello)
    reply = await client.request(Auth(session=token))
    if isinstance(reply, AuthOk):
        await client.close()
        return None
    assert isinstance(reply, Error) and reply.code == ErrorCode.AUTH_FAILED, reply
    return await client.closed()


def counts(db: Path) -> tuple[int, int]:
    with sqlite3.connect(db) as conn:
        users = conn.execute("SELECT count(*) FROM users").fetchone()[0]
        sessions = conn.execute("SELECT count(*) FROM sessions").fetchone()[0]
    return users, sessions


async def test_forged_tokens_are_refused_and_leave_no_trace(
    start: StartServer, db_path: Path, tmp_path: Path
) -> None:
    server = await start()
    alice = await login_dev(server.url, "alice")
    real = alice.session
    assert real is not None
    with sqlite3.connect(db_path) as conn:
        (stored_hash,) = conn.execute("SELECT token_hash FROM sessions").fetchone()
    assert stored_hash == hashlib.sha256(real.encode()).hexdigest()  # only the hash is kept
    # A token from another server (another database) is worth nothing here either.
    elsewhere = await start(database_url=f"sqlite+aiosqlite:///{tmp_path / 'other.sqlite3'}")
    stranger = await login_dev(elsewhere.url, "alice")
    forged = {
        "random": secrets.token_urlsafe(32),
        "one character changed": real[:-1] + ("A" if real[-1] != "A" else "B"),
        "truncated": real[:-1],
        "extended": real + "A",
        "upper case": real.upper(),
        "the stored hash": stored_hash,
        "the session id": alice.session_id or "",
        "another server's token": stranger.session or "",
        "with whitespace": f" {real}",
        "sql": "' OR '1'='1",
        "longest allowed": "A" * 512,
    }
    before = counts(db_path)
    for what, token in forged.items():
        reply, code = await try_token(server, token)
        assert isinstance(reply, Error) and reply.code == ErrorCode.AUTH_FAILED, what
        assert code == CloseCode.AUTH_FAILED, what
    for token in ("", "A" * 513):  # not even a token: invalid, the connection stays
        client = await Client.open(server.url)
        await client.expect(Hello)
        error = await client.error(Auth(session=token))
        assert error.code == ErrorCode.INVALID_MESSAGE
        await client.close()
    assert counts(db_path) == before
    # The real one still works.
    reply, _ = await try_token(server, real)
    assert isinstance(reply, AuthOk) and reply.session is None  # no new token on resume
    await alice.close()
    await stranger.close()


async def test_a_revoked_device_is_disconnected_at_once_and_its_token_dies(
    start: StartServer,
) -> None:
    server = await start()
    laptop = await login_dev(server.url, "alice", "laptop")
    phone = await login_dev(server.url, "alice", "phone")
    bob = await login_dev(server.url, "bob")
    await befriend(laptop, bob)
    phone_token = phone.session or ""
    await laptop.ok(RevokeSession(session_id=phone.session_id or ""))
    assert await phone.closed() == CloseCode.SESSION_REVOKED
    reply, code = await try_token(server, phone_token)
    assert isinstance(reply, Error) and code == CloseCode.AUTH_FAILED
    sessions = await laptop.request(ListSessions())
    assert isinstance(sessions, Sessions)
    assert [s.device for s in sessions.sessions] == ["laptop"]
    # Someone else's session id is not mine to revoke.
    mine = await bob.error(RevokeSession(session_id=laptop.session_id or ""))
    assert mine.code == ErrorCode.UNKNOWN_SESSION
    assert not laptop.ws.close_code
    # Signing out everywhere closes every device, and friends see her leave.
    other = await login_dev(server.url, "alice", "desktop")
    await laptop.ok(SignOut(everywhere=True))
    assert await laptop.closed() == CloseCode.SESSION_REVOKED
    assert await other.closed() == CloseCode.SESSION_REVOKED
    while (update := await bob.expect(PresenceUpdate)).status is not SeenStatus.OFFLINE:
        pass
    assert update.last_seen is not None
    for token in (laptop.session or "", other.session or ""):
        reply, code = await try_token(server, token)
        assert isinstance(reply, Error) and code == CloseCode.AUTH_FAILED
    await bob.close()


async def test_an_expired_session_is_refused_even_before_any_sweep(
    start: StartServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await start(
        retention=RetentionPolicy(
            delivered_messages=60, undelivered_messages=60, idle_sessions=60, sweep_interval=3600
        )
    )
    alice = await login_dev(server.url, "alice")
    token = alice.session or ""
    await alice.close()
    reply, _ = await try_token(server, token)  # used now: fine, and that counts as use
    assert isinstance(reply, AuthOk)
    later = int(time.time()) + 61
    monkeypatch.setattr(server.hub, "now", lambda: later)
    reply, code = await try_token(server, token)
    assert isinstance(reply, Error) and reply.code == ErrorCode.AUTH_FAILED
    assert code == CloseCode.AUTH_FAILED
