"""A new user signs in with GitHub from the desktop, end to end.

Real parts: headless Chromium, the fake GitHub over HTTP, a presence_server on
a loopback port with a SQLite file, the desktop ``Controller`` with its
``PresenceClient``, the sign-in flow and ``CredentialStore`` on the (test)
keychain. Afterwards every file the run left (settings, state, logs, the
database, the browser profile) is scanned for the session token and the
GitHub token: they may only be in the keychain.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from presence_desktop.controller import Controller
from presence_desktop.core.api import ConnectionEvents, Link, UserError
from presence_desktop.core.backoff import backoff_delays
from presence_desktop.core.events import Signal
from presence_desktop.core.settings import SettingsStore
from presence_desktop.core.state import PresenceState
from presence_desktop.net.oauth import GitHubSignIn, Phase
from presence_desktop.platform.credentials import CredentialStore
from presence_protocol import Auth, AuthOk, SignOut, decode_server, encode_text, limits
from presence_server.config import ServerConfig
from presence_server.edge.github import GitHubAuth
from presence_server.edge.server import RunningServer, start_server
from tests.conftest import MemoryKeyring
from tests.fakes.github import FakeGitHub
from tests.support.github import Chromium

pytestmark = pytest.mark.slow

T = TypeVar("T")
TIMEOUT = 30.0


async def until(check: Callable[[], T | None], *signals: Signal[Any]) -> T:
    """Wait until ``check()`` returns something, re-checking whenever a signal fires."""
    loop = asyncio.get_running_loop()
    changed = asyncio.Event()

    def poke(_value: object) -> None:
        loop.call_soon(changed.set)

    for signal in signals:
        signal.connect(poke)
    try:
        async with asyncio.timeout(TIMEOUT):
            while (value := check()) is None:
                await changed.wait()
                changed.clear()
            return value
    finally:
        for signal in signals:
            signal.disconnect(poke)


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    """Everything logged at DEBUG during the test, as an app log file would hold it."""
    path = tmp_path / "logs" / "presence.log"
    path.parent.mkdir()
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield path
    root.removeHandler(handler)
    root.setLevel(old_level)
    handler.close()


@pytest.fixture
async def server(tmp_path: Path, github_auth: GitHubAuth) -> AsyncIterator[RunningServer]:
    config = ServerConfig(
        host="127.0.0.1",
        port=0,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'server' / 'presence.db'}",
        github=github_auth,
    )
    (tmp_path / "server").mkdir()
    running = await start_server(config)
    yield running
    await running.stop()


class Desktop:
    """One run of the desktop app's core (no widgets): what a tray session drives."""

    def __init__(self, root: Path, server_url: str, opener: Callable[[str], bool]) -> None:
        self.state = PresenceState()
        self.connection = ConnectionEvents()
        self.settings = SettingsStore(root / "config", root / "state")
        self.settings.update(server_url=server_url)
        self.credentials = CredentialStore(server_url)
        self.controller = Controller(
            state=self.state,
            connection=self.connection,
            settings=self.settings,
            credentials=self.credentials,
            device="e2e-laptop",
            backoff=lambda: backoff_delays(base=0.05, cap=0.2),
            opener=opener,
        )
        self.errors: list[UserError] = []
        self.controller.errors.connect(self.errors.append)
        self.sign_ins: list[GitHubSignIn] = []
        self.controller.sign_in_started.connect(self.sign_ins.append)

    async def wait_link(self, link: Link) -> None:
        await until(
            lambda: True if self.connection.current.link is link else None,
            self.connection.changed,
        )

    async def wait_sign_in(self, count: int) -> GitHubSignIn:
        return await until(
            lambda: self.sign_ins[count - 1] if len(self.sign_ins) >= count else None,
            self.controller.sign_in_started,
        )


async def _wait_phase(sign_in: GitHubSignIn, phase: Phase) -> None:
    await until(lambda: True if sign_in.current.phase is phase else None, sign_in.status)


def _nonempty(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 0


LEAK_WINDOW = 12
"""Any 12 consecutive characters of a secret count as a leak (72 bits of a token):
debug logs that shorten long frames still give most of a token away."""


def _files_containing(root: Path, *secrets: str) -> list[str]:
    """Files under ``root`` holding a secret, or any ``LEAK_WINDOW`` characters of one."""
    pieces = {
        s[i : i + LEAK_WINDOW].encode() for s in secrets for i in range(len(s) - LEAK_WINDOW + 1)
    }
    hits = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        data = path.read_bytes()
        if any(piece in data for piece in pieces):
            hits.append(str(path.relative_to(root)))
    return hits


async def test_new_user_signs_in_with_chromium_and_the_token_is_only_in_the_keychain(
    tmp_path: Path,
    fake_github: FakeGitHub,
    server: RunningServer,
    chromium: Chromium,
    memory_keyring: MemoryKeyring,
    log_file: Path,
) -> None:
    desktop = Desktop(tmp_path / "desktop", server.url, chromium.open)
    await desktop.controller.start()
    try:
        await desktop.wait_link(Link.SIGNED_OUT)
        desktop.controller.sign_in()
        sign_in = await desktop.wait_sign_in(1)
        await desktop.wait_link(Link.ONLINE)
        await _wait_phase(sign_in, Phase.DONE)
        assert desktop.state.me is not None and desktop.state.me.login == "octocat"
        assert desktop.errors == []
        assert "You can close this tab" in await chromium.last_page()
        assert len(chromium.opened) == 1
    finally:
        await desktop.controller.stop()

    session = desktop.credentials.get()
    assert session is not None
    assert memory_keyring.items == {
        (desktop.credentials.service, desktop.credentials.account): session
    }
    assert "ws://127.0.0.1" in desktop.credentials.service

    # The app starts again: it resumes with the stored session, GitHub is not asked.
    github_calls = list(fake_github.requests)
    again = Desktop(tmp_path / "desktop", server.url, chromium.open)
    await again.controller.start()
    try:
        await again.wait_link(Link.ONLINE)
        assert again.state.me is not None and again.state.me.login == "octocat"
    finally:
        await again.controller.stop()
    assert fake_github.requests == github_calls
    assert len(chromium.opened) == 1 and again.sign_ins == []

    await server.stop()  # flush the SQLite file before reading it
    secrets_ = [session, *fake_github.tokens]
    assert _nonempty(tmp_path / "server" / "presence.db")
    assert _nonempty(log_file), "the scan must have a log to look at"
    assert _files_containing(tmp_path, *secrets_) == []


async def test_revoked_session_brings_sign_in_back_instead_of_retrying(
    tmp_path: Path,
    fake_github: FakeGitHub,
    server: RunningServer,
    chromium: Chromium,
) -> None:
    desktop = Desktop(tmp_path / "desktop", server.url, chromium.open)
    await desktop.controller.start()
    try:
        desktop.controller.sign_in()
        await desktop.wait_link(Link.ONLINE)
        session = desktop.credentials.get()
        assert session is not None

        # "Sign out everywhere" from another device of the same person.
        async with connect(server.url, subprotocols=[Subprotocol(limits.SUBPROTOCOL)]) as ws:
            await ws.recv()  # hello
            await ws.send(encode_text(Auth(id=1, session=session)))
            assert isinstance(decode_server(await ws.recv()), AuthOk)
            await ws.send(encode_text(SignOut(id=2, everywhere=True)))
            await ws.wait_closed()

        again = await desktop.wait_sign_in(2)
        assert desktop.connection.current.link is Link.SIGNED_OUT
        assert not desktop.controller.client.running, "it must not keep reconnecting"
        assert desktop.credentials.get() is None
        await _wait_phase(again, Phase.READY)
        assert again.current.error is not None and "signed out" in again.current.error.message
        assert len(chromium.opened) == 1, "no browser opens until the person asks"

        # The person clicks "Open browser" in the window that came back.
        again.open_browser_again()
        await desktop.wait_link(Link.ONLINE)
        await _wait_phase(again, Phase.DONE)
        assert len(chromium.opened) == 2
        new_session = desktop.credentials.get()
        assert new_session is not None and new_session != session
    finally:
        await desktop.controller.stop()


async def test_refused_login_is_shown_in_the_window(
    tmp_path: Path, fake_github: FakeGitHub, server: RunningServer, chromium: Chromium
) -> None:
    fake_github.fail_next["/api/v3/user"] = 502
    desktop = Desktop(tmp_path / "desktop", server.url, chromium.open)
    await desktop.controller.start()
    try:
        desktop.controller.sign_in()
        sign_in = await desktop.wait_sign_in(1)
        await _wait_phase(sign_in, Phase.FAILED)
        error = sign_in.current.error
        assert error is not None and error.code == "upstream_unavailable"
        assert error.title == "GitHub cannot be reached right now"
        await desktop.wait_link(Link.SIGNED_OUT)
        assert desktop.credentials.get() is None
        assert len(desktop.sign_ins) == 1, "a refused login is not a revoked session"
        # "Try again" works once GitHub is back.
        desktop.controller.sign_in()
        await desktop.wait_link(Link.ONLINE)
    finally:
        await desktop.controller.stop()


async def test_server_without_github_says_so(
    tmp_path: Path, chromium: Chromium, memory_keyring: MemoryKeyring
) -> None:
    config = ServerConfig(
        host="127.0.0.1", port=0, database_url=f"sqlite+aiosqlite:///{tmp_path / 'p.db'}"
    )
    running = await start_server(config)
    desktop = Desktop(tmp_path / "desktop", running.url, chromium.open)
    await desktop.controller.start()
    try:
        desktop.controller.sign_in()
        await until(lambda: desktop.errors or None, desktop.controller.errors)
        assert desktop.errors[0].code == "login_unavailable"
        assert desktop.sign_ins == [] and chromium.opened == []
    finally:
        await desktop.controller.stop()
        await running.stop()


async def test_no_keychain_still_signs_in_for_this_run_and_says_how_to_fix(
    tmp_path: Path, fake_github: FakeGitHub, server: RunningServer, chromium: Chromium
) -> None:
    import keyring
    import keyring.backends.fail

    keyring.set_keyring(keyring.backends.fail.Keyring())
    desktop = Desktop(tmp_path / "desktop", server.url, chromium.open)
    await desktop.controller.start()
    try:
        desktop.controller.sign_in()
        await desktop.wait_link(Link.ONLINE)
        assert [e.code for e in desktop.errors] == ["credentials"]
        assert "GNOME Keyring" in desktop.errors[0].message
    finally:
        await desktop.controller.stop()
    assert _files_containing(tmp_path / "desktop", *fake_github.tokens) == []


async def test_stale_session_at_start_asks_to_sign_in_again(
    tmp_path: Path, server: RunningServer, chromium: Chromium, fake_github: FakeGitHub
) -> None:
    desktop = Desktop(tmp_path / "desktop", server.url, chromium.open)
    desktop.credentials.set("a-session-this-server-never-issued")
    await desktop.controller.start()
    try:
        sign_in = await desktop.wait_sign_in(1)  # after close 4500, without a click
        await _wait_phase(sign_in, Phase.READY)
        assert desktop.connection.current.link is Link.SIGNED_OUT
        assert not desktop.controller.client.running
        assert desktop.credentials.get() is None
        assert chromium.opened == [] and fake_github.requests == []
        sign_in.cancel()
        await _wait_phase(sign_in, Phase.CANCELLED)
    finally:
        await desktop.controller.stop()
