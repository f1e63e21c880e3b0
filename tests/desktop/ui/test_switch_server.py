"""Changing the server address in Settings takes effect at once: the app leaves
the old server, signs in to the new one with that server's own keychain entry,
and keeps the old entry for switching back."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from presence_desktop.controller import Controller
from presence_desktop.core.api import ConnectionEvents, Link
from presence_desktop.core.settings import SettingsStore
from presence_desktop.core.state import PresenceState
from presence_desktop.platform.credentials import CredentialStore
from presence_desktop.ui.settings_dialog import SettingsDialog
from tests.conftest import MemoryKeyring
from tests.desktop.net.helpers import fast_backoff, until
from tests.integration.apps import App, befriend
from tests.support.servers import ServerHandle

from .realapps import start_server, stop_all

pytestmark = pytest.mark.usefixtures("app_stays_open")


def entry(ring: MemoryKeyring, server: ServerHandle) -> str | None:
    store = CredentialStore(server.url)
    return ring.items.get((store.service, store.account))


def friend_logins(state: PresenceState) -> set[str]:
    return {f.login for f in state.friends.values()}


async def test_a_new_server_address_switches_server_and_keychain_entry(
    tmp_path: Path, qtbot: QtBot, memory_keyring: MemoryKeyring
) -> None:
    server_a = await start_server(tmp_path / "a")
    server_b = await start_server(tmp_path / "b")
    # On A alice's friend is carol; on B (another account) it is bob.
    carol = App(tmp_path / "carol", server_a.url, "carol")
    bob = App(tmp_path / "bob", server_b.url, "bob")
    alice_on_b = App(tmp_path / "alice-b", server_b.url, "alice")
    settings = SettingsStore(tmp_path / "alice" / "config", tmp_path / "alice" / "state")
    settings.update(server_url=server_a.url)
    state, connection = PresenceState(), ConnectionEvents()
    controller = Controller(
        state=state,
        connection=connection,
        settings=settings,
        credentials=CredentialStore(server_a.url),
        credentials_for=CredentialStore,
        dev_login="alice",
        device="test",
        backoff=fast_backoff,
    )
    apps = [carol, bob, alice_on_b]
    try:
        await carol.start()
        await bob.start()
        await alice_on_b.start()
        await befriend(alice_on_b, bob)
        await alice_on_b.controller.stop()

        await controller.start()
        online = lambda: connection.current.link is Link.ONLINE  # noqa: E731
        await until(online, connection.changed)
        alice_a = state.me
        assert alice_a is not None
        carol.controller.add_friend("alice")
        await until(lambda: carol.me in state.incoming, state.requests_changed)
        controller.accept_friend(carol.me)
        await until(lambda: friend_logins(state) == {"carol"}, state.friend_added)
        await until(
            lambda: (f := carol.state.friends.get(alice_a.id)) is not None and f.status == "online",
            carol.state.friend_changed,
            carol.state.friend_added,
        )
        token_a = entry(memory_keyring, server_a)
        assert token_a is not None
        assert entry(memory_keyring, server_b) is None

        # The person types B's address in Settings and saves.
        dialog = SettingsDialog(settings, state, controller)
        qtbot.addWidget(dialog)
        dialog.show()
        dialog.server_url.setText(server_b.url)
        assert dialog.save()
        await until(
            lambda: (
                controller.client.url == server_b.url
                and online()
                and friend_logins(state) == {"bob"}
            ),
            connection.changed,
            state.reset,
            state.friend_added,
        )
        # A's session stays in the keychain under A; B got its own entry.
        assert entry(memory_keyring, server_a) == token_a
        token_b = entry(memory_keyring, server_b)
        assert token_b is not None and token_b != token_a
        # The old connection is gone: carol sees alice go offline on A.
        await until(
            lambda: carol.state.friends[alice_a.id].status == "offline",
            carol.state.friend_changed,
        )

        # Back to A: the stored session signs in (no new session replaces it).
        settings.update(server_url=server_a.url)
        await until(
            lambda: (
                controller.client.url == server_a.url
                and online()
                and friend_logins(state) == {"carol"}
            ),
            connection.changed,
            state.reset,
            state.friend_added,
        )
        assert entry(memory_keyring, server_a) == token_a
        assert entry(memory_keyring, server_b) == token_b
        dialog.close()
    finally:
        await controller.stop()
        await stop_all([server_a, server_b], apps)


async def test_a_server_without_a_saved_session_shows_signed_out(
    tmp_path: Path, memory_keyring: MemoryKeyring
) -> None:
    server_a = await start_server(tmp_path / "a")
    server_b = await start_server(tmp_path / "b")
    settings = SettingsStore(tmp_path / "config", tmp_path / "state")
    settings.update(server_url=server_a.url)
    # A session on A from an earlier sign-in; nothing for B and no dev login.
    bootstrap = App(tmp_path / "boot", server_a.url, "alice")
    state, connection = PresenceState(), ConnectionEvents()
    controller: Controller | None = None
    try:
        await bootstrap.start()
        token = bootstrap.credentials.get()
        assert token is not None
        await bootstrap.controller.stop()
        CredentialStore(server_a.url).set(token)
        controller = Controller(
            state=state,
            connection=connection,
            settings=settings,
            credentials=CredentialStore(server_a.url),
            credentials_for=CredentialStore,
            device="test",
            backoff=fast_backoff,
            make_sign_in=lambda _config, _reason: pytest.fail("no GitHub on these servers"),
        )
        await controller.start()
        await until(lambda: connection.current.link is Link.ONLINE, connection.changed)
        assert state.me is not None and state.me.login == "alice"

        settings.update(server_url=server_b.url)
        info = await until(
            lambda: (
                connection.current
                if connection.current.link is Link.SIGNED_OUT
                and controller.client.url == server_b.url
                else None
            ),
            connection.changed,
        )
        assert info.title == "Not signed in"  # type: ignore[union-attr]
        assert state.me is None and not state.friends
        assert entry(memory_keyring, server_a) == token
        assert entry(memory_keyring, server_b) is None
    finally:
        if controller is not None:
            await controller.stop()
        await stop_all([server_a, server_b], [bootstrap])
