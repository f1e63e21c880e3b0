"""Signing in with the GitHub session an editor already has (``login_github_editor``).

A real presence_server (websockets on loopback, SQLite file) and the fake
GitHub, which knows tokens of two OAuth apps: ours and an editor's. Both
operator settings are exercised: off (the default: refused without calling
GitHub) and on (accepted after ``GET /user``).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from presence_protocol import (
    Auth,
    AuthOk,
    Error,
    ErrorCode,
    LoginGitHubEditor,
    LoginGitHubToken,
    LoginMethod,
    Snapshot,
    encode_text,
)
from presence_server.config import ServerConfig
from presence_server.edge.github import GitHubAuth, GitHubSettings, settings_from
from presence_server.edge.server import RunningServer, start_server
from tests.fakes.github import EDITOR_APP, FakeGitHub

from .test_server_login import _login, _open, _recv  # one raw client for both


@dataclasses.dataclass
class Running:
    server: RunningServer
    db_dir: Path


@pytest.fixture(params=[False, True], ids=["default-off", "accept-other-apps"])
async def running(
    request: pytest.FixtureRequest, tmp_path: Path, github_settings: GitHubSettings
) -> AsyncIterator[Running]:
    settings = dataclasses.replace(github_settings, accept_other_apps=request.param)
    auth = GitHubAuth(settings, timeout=5.0)
    db_dir = tmp_path / "db"
    db_dir.mkdir()
    config = ServerConfig(
        host="127.0.0.1",
        port=0,
        database_url=f"sqlite+aiosqlite:///{db_dir / 'presence.db'}",
        github=auth,
    )
    server = await start_server(config)
    yield Running(server, db_dir)
    await server.stop()
    await auth.aclose()


def _accepting(running: Running) -> bool:
    github = running.server.hub.config.github
    assert isinstance(github, GitHubAuth)
    return github.settings.accept_other_apps


async def test_hello_says_whether_editor_sessions_are_accepted(running: Running) -> None:
    ws, hello = await _open(running.server)
    await ws.close()
    assert hello.github is not None
    accepting = _accepting(running)
    assert hello.github.editor_tokens is accepting
    assert (LoginMethod.GITHUB_EDITOR in hello.login_methods) is accepting


async def test_an_editor_session_signs_in_only_where_the_operator_allows_it(
    running: Running, fake_github: FakeGitHub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = fake_github.issue_token(fake_github.users[583231], app=EDITOR_APP)
    ws, reply = await _login(
        running.server,
        LoginGitHubEditor(id=7, access_token=token, editor="Visual Studio Code", device="laptop"),
    )
    if not _accepting(running):
        assert isinstance(reply, Error), reply
        assert reply.code == ErrorCode.LOGIN_UNAVAILABLE and reply.id == 7
        assert "browser" in reply.message
        assert fake_github.requests == [], "a refused editor session must not even reach GitHub"
        await ws.close()
        return
    assert isinstance(reply, AuthOk), reply
    assert (reply.user.id, reply.user.login) == (583231, "octocat")
    assert reply.session and reply.session != token
    assert isinstance(await _recv(ws), Snapshot)
    await ws.close()
    assert fake_github.count("GET", "/api/v3/user") == 1
    # Used once: never stored, never logged, and reconnects do not call GitHub.
    stored = b"".join(p.read_bytes() for p in running.db_dir.glob("presence.db*"))
    assert token.encode() not in stored
    assert token not in caplog.text
    calls = list(fake_github.requests)
    ws, again = await _login(running.server, Auth(id=8, session=reply.session))
    await ws.close()
    assert isinstance(again, AuthOk) and again.user.id == 583231
    assert fake_github.requests == calls


async def test_the_device_path_still_refuses_another_apps_token(
    running: Running, fake_github: FakeGitHub
) -> None:
    """Whatever the setting, ``login_github_token`` stays our-app-only: the setting
    opens one clearly named door, not the existing ones."""
    token = fake_github.issue_token(fake_github.users[583231], app=EDITOR_APP)
    ws, reply = await _login(running.server, LoginGitHubToken(id=2, access_token=token))
    await ws.close()
    assert isinstance(reply, Error) and reply.code == ErrorCode.BAD_CODE
    assert fake_github.count("GET", "/api/v3/user") == 0


async def test_a_revoked_editor_session_is_refused_and_the_connection_stays(
    running: Running, fake_github: FakeGitHub
) -> None:
    token = fake_github.issue_token(fake_github.users[1001], app=EDITOR_APP)
    fake_github.revoke_token(token)
    ws, reply = await _login(running.server, LoginGitHubEditor(id=3, access_token=token))
    assert isinstance(reply, Error)
    expected = ErrorCode.BAD_CODE if _accepting(running) else ErrorCode.LOGIN_UNAVAILABLE
    assert reply.code == expected
    # Another try on the same connection works (the refusal changed nothing else).
    good = fake_github.issue_token(fake_github.users[1001], app=EDITOR_APP)
    await ws.send(encode_text(LoginGitHubEditor(id=4, access_token=good)))
    answer = await _recv(ws)
    await ws.close()
    if _accepting(running):
        assert isinstance(answer, AuthOk) and answer.user.login == "hubot"
    else:
        assert isinstance(answer, Error) and answer.code == ErrorCode.LOGIN_UNAVAILABLE


def test_the_setting_comes_from_a_flag_or_the_environment_and_is_off_by_default() -> None:
    env = {"PRESENCE_GITHUB_CLIENT_ID": "Iv1.x", "PRESENCE_GITHUB_CLIENT_SECRET": "s3cret"}
    off = settings_from(argparse.Namespace(), env)
    assert off is not None and off.accept_other_apps is False
    assert off.public().editor_tokens is False
    by_env = settings_from(argparse.Namespace(), {**env, "PRESENCE_GITHUB_ACCEPT_OTHER_APPS": "1"})
    assert by_env is not None and by_env.accept_other_apps is True
    by_flag = settings_from(argparse.Namespace(github_accept_other_apps=True), env)
    assert by_flag is not None and by_flag.public().editor_tokens is True


def test_the_flag_is_part_of_the_servers_command_line() -> None:
    from presence_server.edge.github import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    env = {"PRESENCE_GITHUB_CLIENT_ID": "Iv1.x", "PRESENCE_GITHUB_CLIENT_SECRET": "s3cret"}
    on = settings_from(parser.parse_args(["--github-accept-other-apps"]), env)
    off = settings_from(parser.parse_args([]), env)
    assert on is not None and on.accept_other_apps
    assert off is not None and not off.accept_other_apps
    assert "--github-accept-other-apps" in parser.format_help()
