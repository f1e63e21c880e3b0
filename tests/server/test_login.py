"""Connecting, logging in, sessions: what a client sees before and right after login."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import httpx
import pytest

from presence_protocol import (
    Auth,
    AuthOk,
    CloseCode,
    Error,
    ErrorCode,
    FriendRequest,
    GitHubConfig,
    Hello,
    ListSessions,
    LoginDev,
    LoginGitHubCode,
    LoginGitHubToken,
    LoginMethod,
    RevokeSession,
    Sessions,
    SignOut,
    Snapshot,
    limits,
)
from presence_server import RunningServer, ServerConfig, ServerLimits, start_server
from presence_server.config import ConfigError
from tests.support.clock import FakeClock
from tests.support.servers import StartServer, hand_clock

from .client import Client, login_dev
from .conftest import Login


async def test_hello_announces_login_methods_and_limits(server: RunningServer) -> None:
    client = await Client.open(server.url)
    hello = await client.expect(Hello)
    assert hello.protocol == "presence.v1"
    assert hello.login_methods == [LoginMethod.SESSION, LoginMethod.DEV]
    assert hello.github is None
    assert hello.limits.max_frame_bytes == limits.MAX_FRAME_BYTES
    assert hello.limits.commands_per_minute == limits.COMMANDS_PER_MINUTE
    assert client.ws.subprotocol == "presence.v1"
    await client.close()


async def test_dev_login_gives_a_session_then_a_snapshot(server: RunningServer) -> None:
    client = await Client.open(server.url)
    await client.expect(Hello)
    await client.send(LoginDev(id="login-1", login="Alice", device="laptop"))
    ok = await client.expect(AuthOk)
    assert ok.id == "login-1"
    assert ok.user.login == "Alice"
    assert ok.session and len(ok.session) >= 40
    snapshot = await client.expect(Snapshot)
    assert snapshot.me == ok.user
    assert snapshot.friends == [] and snapshot.incoming == [] and snapshot.acked_seq == 0
    # The same login (any case) is the same user, with a new session per login.
    again = await login_dev(server.url, "alice", "desktop")
    assert again.me == ok.user.id
    assert again.session != ok.session
    await client.close()
    await again.close()


async def test_dev_ids_cannot_clash_with_github_ids(login: Login) -> None:
    alice = await login("alice")
    assert 2**52 < alice.me <= 2**53


async def test_session_token_resumes_without_issuing_a_new_one(
    server: RunningServer, login: Login
) -> None:
    first = await login("alice", "laptop")
    client = await Client.open(server.url)
    await client.expect(Hello)
    ok = await client.request(Auth(session=first.session or ""))
    assert isinstance(ok, AuthOk)
    assert ok.user.id == first.me
    assert ok.session_id == first.session_id
    assert ok.session is None
    await client.expect(Snapshot)
    await client.close()


async def test_bad_token_is_refused_with_4500(server: RunningServer) -> None:
    client = await Client.open(server.url)
    await client.expect(Hello)
    reply = await client.request(Auth(session="not-a-session"))
    assert isinstance(reply, Error) and reply.code == ErrorCode.AUTH_FAILED
    assert await client.closed() == CloseCode.AUTH_FAILED


async def test_dev_login_refused_when_disabled(start: StartServer) -> None:
    server = await start(dev_login=False)
    client = await Client.open(server.url)
    hello = await client.expect(Hello)
    assert LoginMethod.DEV not in hello.login_methods
    reply = await client.request(LoginDev(login="alice"))
    assert isinstance(reply, Error) and reply.code == ErrorCode.LOGIN_UNAVAILABLE
    # The connection stays usable for another method.
    reply = await client.request(Auth(session="nope"))
    assert isinstance(reply, Error) and reply.code == ErrorCode.AUTH_FAILED
    await client.closed()


async def test_github_login_unavailable_without_configuration(server: RunningServer) -> None:
    client = await Client.open(server.url)
    await client.expect(Hello)
    for message in (
        LoginGitHubCode(code="c", code_verifier="v", redirect_uri="http://127.0.0.1/cb"),
        LoginGitHubToken(access_token="t"),
    ):
        reply = await client.request(message)
        assert isinstance(reply, Error) and reply.code == ErrorCode.LOGIN_UNAVAILABLE
    await client.close()


async def test_dev_login_only_on_loopback(db_path: Path) -> None:
    for host in ("0.0.0.0", "192.0.2.1", "::"):
        config = ServerConfig(
            host=host, port=0, database_url=f"sqlite+aiosqlite:///{db_path}", dev_login=True
        )
        with pytest.raises(ConfigError, match="loopback"):
            await start_server(config)


async def test_auth_deadline_closes_with_4001(start: StartServer) -> None:
    """Nothing but a login counts: a connection that sent only other commands
    is closed at the deadline. The deadline passes when the test moves the
    clock, so the commands before it cannot lose a race with a busy machine."""
    server = await start(limits=ServerLimits(auth_deadline_seconds=0.5))
    clock = hand_clock(server, FakeClock())
    client = await Client.open(server.url)
    await client.expect(Hello)
    # A non-login command does not count as logging in.
    reply = await client.request(FriendRequest(login="bob"))
    assert isinstance(reply, Error) and reply.code == ErrorCode.NOT_AUTHENTICATED
    clock.advance(0.375)  # binary fractions: the two steps add up exactly
    reply = await client.request(FriendRequest(login="bob"))  # still open, still refused
    assert isinstance(reply, Error) and reply.code == ErrorCode.NOT_AUTHENTICATED
    clock.advance(0.125)
    assert await client.closed() == CloseCode.AUTH_TIMEOUT


async def test_a_silent_connection_is_closed_by_the_loops_timer(start: StartServer) -> None:
    """The same deadline on the server's own clock (the event loop's): a
    client that says nothing is closed with 4001, however late the timer runs."""
    server = await start(limits=ServerLimits(auth_deadline_seconds=0.3))
    client = await Client.open(server.url)
    await client.expect(Hello)
    assert await client.closed() == CloseCode.AUTH_TIMEOUT


async def test_second_login_on_a_connection_is_refused(login: Login) -> None:
    alice = await login("alice")
    reply = await alice.request(LoginDev(login="bob"))
    assert isinstance(reply, Error) and reply.code == ErrorCode.ALREADY_AUTHENTICATED
    await alice.barrier()


async def test_client_without_subprotocol_gets_v1(server: RunningServer) -> None:
    client = await Client.open(server.url, subprotocols=None)
    assert client.ws.subprotocol is None
    await client.expect(Hello)
    ok = await client.request(LoginDev(login="plain"))
    assert isinstance(ok, AuthOk)
    await client.close()


async def test_unknown_subprotocol_only_is_closed_with_4501(server: RunningServer) -> None:
    client = await Client.open(server.url, subprotocols=["presence.v2"])
    assert await client.closed() == CloseCode.UNSUPPORTED_PROTOCOL
    assert client.backlog == []


async def test_healthz_answers_plain_http(server: RunningServer) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"http://127.0.0.1:{server.port}/healthz")
    assert response.status_code == 200
    assert response.text == "ok\n"


# ---------------------------------------------------------------- sessions


async def test_sessions_are_listed_per_device(login: Login) -> None:
    laptop = await login("alice", "laptop")
    desktop = await login("alice", "desktop")
    reply = await laptop.request(ListSessions())
    assert isinstance(reply, Sessions)
    assert sorted((s.device, s.current) for s in reply.sessions) == [
        ("desktop", False),
        ("laptop", True),
    ]
    assert {s.id for s in reply.sessions} == {laptop.session_id, desktop.session_id}
    await desktop.barrier()


async def test_revoking_a_session_closes_its_connection_with_4502(
    server: RunningServer, login: Login
) -> None:
    laptop = await login("alice", "laptop")
    desktop = await login("alice", "desktop")
    await laptop.ok(RevokeSession(session_id=desktop.session_id or ""))
    assert await desktop.closed() == CloseCode.SESSION_REVOKED
    # Its token no longer works, and it is gone from the list.
    again = await Client.open(server.url)
    await again.expect(Hello)
    reply = await again.request(Auth(session=desktop.session or ""))
    assert isinstance(reply, Error) and reply.code == ErrorCode.AUTH_FAILED
    listed = await laptop.request(ListSessions())
    assert isinstance(listed, Sessions)
    assert [s.id for s in listed.sessions] == [laptop.session_id]


async def test_revoking_an_unknown_or_foreign_session_is_an_error(login: Login) -> None:
    alice = await login("alice")
    bob = await login("bob")
    for target in ("0000000000000000", bob.session_id or ""):
        reply = await alice.error(RevokeSession(session_id=target))
        assert reply.code == ErrorCode.UNKNOWN_SESSION
    await bob.barrier()


async def test_sign_out_this_device(server: RunningServer, login: Login) -> None:
    laptop = await login("alice", "laptop")
    desktop = await login("alice", "desktop")
    await laptop.ok(SignOut())
    assert await laptop.closed() == CloseCode.SESSION_REVOKED
    await desktop.barrier()  # the other device is untouched
    listed = await desktop.request(ListSessions())
    assert isinstance(listed, Sessions)
    assert [s.id for s in listed.sessions] == [desktop.session_id]


async def test_sign_out_everywhere(server: RunningServer, login: Login) -> None:
    laptop = await login("alice", "laptop")
    desktop = await login("alice", "desktop")
    bob = await login("bob")
    await laptop.ok(SignOut(everywhere=True))
    assert await laptop.closed() == CloseCode.SESSION_REVOKED
    assert await desktop.closed() == CloseCode.SESSION_REVOKED
    await bob.barrier()
    for token in (laptop.session, desktop.session):
        client = await Client.open(server.url)
        await client.expect(Hello)
        reply = await client.request(Auth(session=token or ""))
        assert isinstance(reply, Error) and reply.code == ErrorCode.AUTH_FAILED
        await client.closed()


@pytest.mark.sqlite_only
async def test_session_tokens_are_never_stored_in_clear(
    server: RunningServer, login: Login, db_path: Path
) -> None:
    clients = [await login(name, device) for name, device in [("alice", "a"), ("bob", "b")]]
    tokens = [c.session for c in clients]
    await server.stop()
    stored = b"".join(
        p.read_bytes() for p in db_path.parent.iterdir() if p.name.startswith(db_path.name)
    )
    assert b"alice" in stored  # the scan does read the database
    for token in tokens:
        assert token and token.encode() not in stored


# ---------------------------------------------------------------- GitHub plug-in point


@dataclasses.dataclass(frozen=True)
class FakeIdentity:
    id: int
    login: str
    name: str | None = None
    avatar_url: str | None = None
    following: tuple[int, ...] = ()


class FakeLoginError(Exception):
    def __init__(self, code: ErrorCode, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after


class FakeGitHub:
    """Stands in for presence_server.edge.github.GitHubAuth at the plug-in point."""

    def __init__(self) -> None:
        self.identities = {
            "code-octo": FakeIdentity(583231, "octocat", "The Octocat", following=(9919,)),
            "code-renamed": FakeIdentity(583231, "octo-renamed"),
            "code-hubot": FakeIdentity(9919, "hubot"),
        }

    def public(self) -> GitHubConfig:
        return GitHubConfig(client_id="Iv1.test", device_flow=True)

    async def exchange_code(self, code: str, code_verifier: str, redirect_uri: str) -> FakeIdentity:
        if code == "slow-github":
            raise FakeLoginError(ErrorCode.UPSTREAM_UNAVAILABLE, "GitHub is down", 30.0)
        if code not in self.identities:
            raise FakeLoginError(ErrorCode.BAD_CODE, "GitHub rejected the code")
        return self.identities[code]

    async def check_token(self, token: str) -> FakeIdentity:
        return self.identities[token]

    async def check_editor_token(self, token: str) -> FakeIdentity:
        return self.identities[token]


async def _github_login(server: RunningServer, code: str) -> tuple[Client, AuthOk | Error]:
    client = await Client.open(server.url)
    await client.expect(Hello)
    reply = await client.request(
        LoginGitHubCode(code=code, code_verifier="v" * 43, redirect_uri="http://127.0.0.1/cb")
    )
    assert isinstance(reply, AuthOk | Error)
    return client, reply


async def test_github_login_through_the_plug_in_point(start: StartServer) -> None:
    server = await start(github=FakeGitHub(), dev_login=False)
    client = await Client.open(server.url)
    hello = await client.expect(Hello)
    assert hello.login_methods == [
        LoginMethod.SESSION,
        LoginMethod.GITHUB_CODE,
        LoginMethod.GITHUB_TOKEN,
    ]
    assert hello.github == GitHubConfig(client_id="Iv1.test", device_flow=True)
    await client.close()

    hubot, ok = await _github_login(server, "code-hubot")
    assert isinstance(ok, AuthOk) and ok.user.id == 9919 and ok.suggestions == []
    octo, ok = await _github_login(server, "code-octo")
    assert isinstance(ok, AuthOk)
    assert ok.user.id == 583231 and ok.user.name == "The Octocat"
    assert [u.login for u in ok.suggestions] == ["hubot"]  # a suggestion, not a friend
    snapshot = await octo.expect(Snapshot)
    assert snapshot.friends == []
    # Same GitHub id, new login: same user, label refreshed.
    renamed, ok = await _github_login(server, "code-renamed")
    assert isinstance(ok, AuthOk) and ok.user.id == 583231 and ok.user.login == "octo-renamed"
    # A failure from GitHub keeps its code and retry hint; the connection stays open.
    failing, err = await _github_login(server, "slow-github")
    assert isinstance(err, Error)
    assert (err.code, err.retry_after) == (ErrorCode.UPSTREAM_UNAVAILABLE, 30.0)
    _, err2 = await _github_login(server, "made-up")
    assert isinstance(err2, Error) and err2.code == ErrorCode.BAD_CODE
    ok_token = await failing.request(LoginGitHubToken(access_token="code-hubot"))
    assert isinstance(ok_token, AuthOk) and ok_token.user.id == 9919
    for c in (hubot, octo, renamed, failing):
        await c.close()


async def test_many_clients_log_in_concurrently(server: RunningServer) -> None:
    clients = await asyncio.gather(*(login_dev(server.url, f"user{i}") for i in range(20)))
    assert len({c.me for c in clients}) == 20
    for c in clients:
        await c.close()
