"""A server switch while a GitHub sign-in to the old server is waiting on the
browser: the attempt ends as cancelled (its window can say so and offer to try
again), its loopback listener closes, and the app moves to the new server."""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from presence_desktop.controller import Controller
from presence_desktop.core.api import ConnectionEvents, Link
from presence_desktop.core.settings import SettingsStore
from presence_desktop.core.state import PresenceState
from presence_desktop.net.oauth import GitHubSignIn, Phase
from presence_desktop.platform.credentials import CredentialStore
from presence_server.config import ServerConfig
from presence_server.edge.github import GitHubAuth
from presence_server.edge.server import RunningServer, start_server
from tests.conftest import MemoryKeyring
from tests.desktop.net.helpers import fast_backoff, next_emit, until
from tests.support.servers import ServerHandle


@pytest.fixture
async def github_server(
    tmp_path: Path,
    github_auth: GitHubAuth,
) -> AsyncIterator[RunningServer]:
    (tmp_path / "a").mkdir()
    running = await start_server(
        ServerConfig(
            host="127.0.0.1",
            port=0,
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'a' / 'presence.db'}",
            github=github_auth,
        )
    )
    yield running
    await running.stop()


async def test_switching_server_cancels_a_waiting_sign_in_to_the_old_one(
    tmp_path: Path, github_server: RunningServer, memory_keyring: MemoryKeyring
) -> None:
    (tmp_path / "b").mkdir()
    server_b = ServerHandle(tmp_path / "b")
    await server_b.start()
    url_a = f"ws://127.0.0.1:{github_server.port}"
    loop = asyncio.get_running_loop()
    opened: asyncio.Future[str] = loop.create_future()

    def opener(url: str) -> bool:
        """The browser "opens" (on a worker thread); the person never finishes."""
        loop.call_soon_threadsafe(lambda: opened.done() or opened.set_result(url))
        return True

    settings = SettingsStore(tmp_path / "config", tmp_path / "state")
    settings.update(server_url=url_a)
    state, connection = PresenceState(), ConnectionEvents()
    controller = Controller(
        state=state,
        connection=connection,
        settings=settings,
        credentials=CredentialStore(url_a),
        credentials_for=CredentialStore,
        device="test",
        backoff=fast_backoff,
        opener=opener,
    )
    try:
        await controller.start()
        started = next_emit(controller.sign_in_started)
        controller.sign_in()
        sign_in: GitHubSignIn = await started
        authorize = await asyncio.wait_for(opened, 15)
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(authorize).query)
        listener = query["redirect_uri"][0]
        assert listener.startswith("http://127.0.0.1:")

        settings.update(server_url=server_b.url)
        await until(lambda: sign_in.current.phase is Phase.CANCELLED, sign_in.status)
        info = await until(
            lambda: (
                connection.current
                if controller.client.url == server_b.url
                and connection.current.link is Link.SIGNED_OUT
                else None
            ),
            connection.changed,
        )
        assert info is not None
        # The one-shot listener for the old server's sign-in is closed.
        with pytest.raises(httpx.ConnectError):
            async with httpx.AsyncClient() as http:
                await http.get(listener)
        assert not memory_keyring.items  # nobody signed in anywhere
    finally:
        await controller.stop()
        await server_b.stop()
