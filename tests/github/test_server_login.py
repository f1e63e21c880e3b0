"""GitHub logins through a real presence_server (websockets on loopback, SQLite file).

The wire is spoken by hand here so every frame is visible; the desktop's own
client is exercised in ``test_desktop_e2e.py``.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from presence_protocol import (
    Auth,
    AuthOk,
    ClientMessage,
    CloseCode,
    Error,
    ErrorCode,
    Hello,
    LoginGitHubCode,
    LoginGitHubToken,
    LoginMethod,
    ServerMessage,
    SignOut,
    Snapshot,
    decode_server,
    encode_text,
    limits,
)
from presence_server.config import ServerConfig
from presence_server.edge.github import GitHubAuth
from presence_server.edge.server import RunningServer, start_server
from tests.fakes.github import FakeGitHub, s256


@pytest.fixture
async def server(tmp_path: Path, github_auth: GitHubAuth) -> AsyncIterator[RunningServer]:
    config = ServerConfig(
        host="127.0.0.1",
        port=0,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'presence.db'}",
        github=github_auth,
    )
    running = await start_server(config)
    yield running
    await running.stop()


async def _open(server: RunningServer) -> tuple[ClientConnection, Hello]:
    ws = await connect(server.url, subprotocols=[Subprotocol(limits.SUBPROTOCOL)], max_size=2**22)
    hello = decode_server(await ws.recv(), max_bytes=2**22)
    assert isinstance(hello, Hello)
    return ws, hello


async def _recv(ws: ClientConnection) -> ServerMessage:
    return decode_server(await ws.recv(), max_bytes=2**22)


async def _login(
    server: RunningServer, message: ClientMessage
) -> tuple[ClientConnection, ServerMessage]:
    ws, _ = await _open(server)
    await ws.send(encode_text(message))
    return ws, await _recv(ws)


def _read_all(directory: Path, pattern: str) -> bytes:
    """The bytes of the database and its journal/WAL files, whatever SQLite left."""
    return b"".join(p.read_bytes() for p in directory.glob(pattern))


def _code_login(fake: FakeGitHub, device: str = "laptop") -> LoginGitHubCode:
    verifier = secrets.token_urlsafe(48)
    redirect = "http://127.0.0.1:49999/callback"
    code = fake.issue_code(redirect, s256(verifier))
    return LoginGitHubCode(
        id=1, code=code, code_verifier=verifier, redirect_uri=redirect, device=device
    )


async def test_hello_advertises_github(server: RunningServer, fake_github: FakeGitHub) -> None:
    ws, hello = await _open(server)
    await ws.close()
    assert hello.github is not None
    assert hello.github.client_id == fake_github.client_id
    assert hello.github.web_url == fake_github.web_url
    assert hello.github.device_flow is True
    assert LoginMethod.GITHUB_CODE in hello.login_methods
    assert fake_github.client_secret not in encode_text(hello)


async def test_code_login_gives_a_session_and_reconnects_never_call_github(
    server: RunningServer, fake_github: FakeGitHub
) -> None:
    # hubot already uses this server; octocat follows hubot (and others who do not).
    ws, _ = await _login(
        server,
        LoginGitHubToken(id=1, access_token=fake_github.issue_token(fake_github.users[1001])),
    )
    await ws.close()

    ws, reply = await _login(server, _code_login(fake_github))
    assert isinstance(reply, AuthOk), reply
    assert (reply.user.id, reply.user.login, reply.user.name) == (583231, "octocat", "The Octocat")
    assert reply.session is not None and reply.session_id
    assert [u.login for u in reply.suggestions] == ["hubot"]
    assert isinstance(await _recv(ws), Snapshot)
    await ws.close()

    calls = list(fake_github.requests)
    for _ in range(3):
        ws, again = await _login(server, Auth(id=2, session=reply.session))
        assert isinstance(again, AuthOk) and again.session is None
        assert again.user.id == 583231 and again.session_id == reply.session_id
        await ws.close()
    assert fake_github.requests == calls, "a reconnect must not call GitHub"


async def test_login_updates_a_renamed_account(
    server: RunningServer, fake_github: FakeGitHub
) -> None:
    ws, first = await _login(server, _code_login(fake_github))
    await ws.close()
    fake_github.users[583231].login = "octo-renamed"
    ws, second = await _login(server, _code_login(fake_github, device="desktop"))
    await ws.close()
    assert isinstance(first, AuthOk) and isinstance(second, AuthOk)
    assert second.user.id == first.user.id and second.user.login == "octo-renamed"
    assert second.session_id != first.session_id


@pytest.mark.parametrize(
    ("spoil", "code"),
    [
        ("reuse", ErrorCode.BAD_CODE),
        ("verifier", ErrorCode.BAD_CODE),
        ("expired", ErrorCode.BAD_CODE),
        ("redirect", ErrorCode.BAD_CODE),
        ("other_loopback_redirect", ErrorCode.BAD_CODE),
        ("down", ErrorCode.UPSTREAM_UNAVAILABLE),
    ],
)
async def test_refused_code_logins_are_specific_errors(
    server: RunningServer,
    fake_github: FakeGitHub,
    spoil: str,
    code: ErrorCode,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each is the client's problem (or GitHub's), never an operator alarm: no ERROR
    in the log, which any unauthenticated client could otherwise fill (issue 14)."""
    caplog.set_level(logging.WARNING)
    login = _code_login(fake_github)
    if spoil == "reuse":
        ws, ok = await _login(server, login)
        assert isinstance(ok, AuthOk)
        await ws.close()
    elif spoil == "verifier":
        login = LoginGitHubCode(
            id=1,
            code=login.code,
            code_verifier=secrets.token_urlsafe(48),
            redirect_uri=login.redirect_uri,
        )
    elif spoil == "expired":
        fake_github.advance(11 * 60)
    elif spoil == "redirect":
        login = LoginGitHubCode(
            id=1,
            code=login.code,
            code_verifier=login.code_verifier,
            redirect_uri="https://x.example/callback",
        )
    elif spoil == "other_loopback_redirect":
        # Well formed, but not the one the code was issued for: GitHub answers
        # redirect_uri_mismatch, which at this step only a client can cause.
        login = LoginGitHubCode(
            id=1,
            code=login.code,
            code_verifier=login.code_verifier,
            redirect_uri="http://127.0.0.1:40000/callback",
        )
    elif spoil == "down":
        fake_github.fail_next["/login/oauth/access_token"] = 503
    ws, reply = await _login(server, login)
    assert isinstance(reply, Error), reply
    assert reply.code == code and reply.id == 1
    assert reply.message and "Traceback" not in reply.message
    if code is ErrorCode.UPSTREAM_UNAVAILABLE:
        assert reply.retry_after and reply.retry_after > 0
    else:
        assert "operator" not in reply.message and reply.retry_after is None
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    # The connection stays open for another try.
    await ws.send(encode_text(_code_login(fake_github)))
    assert isinstance(await _recv(ws), AuthOk)
    await ws.close()


async def test_device_token_of_another_app_is_refused(
    server: RunningServer, fake_github: FakeGitHub
) -> None:
    ws, reply = await _login(server, LoginGitHubToken(id=3, access_token="gho_" + "z" * 36))
    await ws.close()
    assert isinstance(reply, Error) and reply.code == ErrorCode.BAD_CODE


async def test_signed_out_session_is_refused_with_4500(
    server: RunningServer, fake_github: FakeGitHub
) -> None:
    ws, reply = await _login(server, _code_login(fake_github))
    assert isinstance(reply, AuthOk) and reply.session
    assert isinstance(await _recv(ws), Snapshot)
    await ws.send(encode_text(SignOut(id=9)))
    with pytest.raises(ConnectionClosed):
        while True:
            await _recv(ws)
    ws, refused = await _login(server, Auth(id=1, session=reply.session))
    assert isinstance(refused, Error) and refused.code == ErrorCode.AUTH_FAILED
    with pytest.raises(ConnectionClosed):
        await ws.recv()
    assert ws.close_code == CloseCode.AUTH_FAILED


async def test_database_holds_no_session_or_github_token(
    server: RunningServer, fake_github: FakeGitHub, tmp_path: Path
) -> None:
    ws, reply = await _login(server, _code_login(fake_github))
    await ws.close()
    assert isinstance(reply, AuthOk) and reply.session
    github_tokens = list(fake_github.tokens)
    await server.stop()
    data = _read_all(tmp_path, "presence.db*")
    assert data, "the SQLite file should exist"
    assert reply.session.encode() not in data
    for token in github_tokens:
        assert token.encode() not in data
