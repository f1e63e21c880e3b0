"""``auth_ok`` carries as many suggestions as fit the announced frame limit.

Suggestions (people you follow on GitHub who use this server) are the one
unbounded part of ``auth_ok``: up to 500 user records, each with a GitHub name
of up to 255 characters. Rather than refuse the sign-in with
``internal_error`` (which the desktop retries for ever), the server leaves out
the suggestions that do not fit (docs/protocol.md §5, §8). The limit is shrunk
here so that eight wide records are too many.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from presence_protocol import (
    AuthOk,
    Hello,
    LoginGitHubToken,
    Snapshot,
    decode_server,
    encode_text,
    limits,
)
from presence_server import ServerLimits
from presence_server.config import ServerConfig
from presence_server.edge.github import GitHubAuth
from presence_server.edge.server import RunningServer, start_server
from tests.fakes.github import FakeGitHub

LIMIT = limits.MIN_SERVER_FRAME_BYTES
"""The smallest limit a server may announce: thirty wide suggestions exceed it."""
WIDE_NAME = "語" * 255
FOLLOWED = list(range(7001, 7031))


@pytest.fixture
async def server(tmp_path: Path, github_auth: GitHubAuth) -> AsyncIterator[RunningServer]:
    config = ServerConfig(
        host="127.0.0.1",
        port=0,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'presence.db'}",
        github=github_auth,
        limits=ServerLimits(max_server_frame_bytes=LIMIT),
    )
    running = await start_server(config)
    yield running
    await running.stop()


async def _sign_in(server: RunningServer, fake: FakeGitHub, uid: int) -> tuple[str, str]:
    """The text of ``auth_ok`` and of the frame after it."""
    async with connect(server.url, subprotocols=[Subprotocol(limits.SUBPROTOCOL)]) as ws:
        assert isinstance(decode_server(await ws.recv()), Hello)
        token = fake.issue_token(fake.users[uid])
        await ws.send(encode_text(LoginGitHubToken(id=1, access_token=token)))
        reply, after = await ws.recv(), await ws.recv()
    assert isinstance(reply, str) and isinstance(after, str)
    return reply, after


async def test_suggestions_that_do_not_fit_are_left_out_not_the_sign_in(
    server: RunningServer, fake_github: FakeGitHub
) -> None:
    for uid in FOLLOWED:  # they use this server: each signs in once
        fake_github.add_user(uid, f"wide{uid}", WIDE_NAME)
        await _sign_in(server, fake_github, uid)
    fake_github.add_user(7100, "follower", "Follower", following=FOLLOWED)

    raw, after = await _sign_in(server, fake_github, 7100)
    reply = decode_server(raw)
    assert isinstance(reply, AuthOk), reply  # not internal_error
    assert len(raw.encode()) <= LIMIT
    assert 0 < len(reply.suggestions) < len(FOLLOWED)  # as many as fit, not all, not none
    assert {u.id for u in reply.suggestions} <= set(FOLLOWED)
    assert all(u.name == WIDE_NAME for u in reply.suggestions)
    assert isinstance(decode_server(after), Snapshot)  # the sign-in went on
