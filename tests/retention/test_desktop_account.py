"""Export and deletion from the real settings dialog, through the real controller
and client, against a real server; and an expired message told to its sender."""

from __future__ import annotations

import json
import stat
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from presence_desktop.core.api import Link, UserError
from presence_desktop.ui.settings_dialog import SettingsDialog
from tests.desktop.net.helpers import next_emit, until
from tests.integration.apps import App, befriend
from tests.support.servers import ServerHandle

from .conftest import rows

pytestmark = pytest.mark.qasync  # the settings dialog runs on Qt's loop, as in the app


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ServerHandle]:
    handle = ServerHandle(tmp_path / "server")
    (tmp_path / "server").mkdir()
    await handle.start()
    yield handle
    await handle.stop()


async def settle(server: ServerHandle, *apps: App) -> None:
    """Stop everything inside the test, on the running loop.

    pytest-qt processes Qt events before fixture teardown; with qasync that
    would run the server's last cleanup steps outside the asyncio loop.
    """
    for app in apps:
        await app.controller.stop()
    await server.stop()


@pytest.fixture
async def apps(server: ServerHandle, tmp_path: Path) -> AsyncIterator[tuple[App, App]]:
    alice = App(tmp_path / "alice", server.url, "alice")
    bob = App(tmp_path / "bob", server.url, "bob")
    await alice.start()
    await bob.start()
    await befriend(alice, bob)
    yield alice, bob
    for app in (alice, bob):
        await app.controller.stop()


async def test_export_then_delete_from_the_settings_dialog(
    apps: tuple[App, App], tmp_path: Path, server: ServerHandle
) -> None:
    alice, bob = apps
    bob.controller.send_message(alice.me, "hi alice")
    await until(lambda: len(alice.state.inbox) == 1, alice.state.inbox_changed)
    alice.controller.send_message(bob.me, "hi bob")
    await until(lambda: len(bob.state.inbox) == 1, bob.state.inbox_changed)

    dialog = SettingsDialog(alice.settings, alice.state, alice.controller)
    assert not dialog.account_box.isHidden()
    target = tmp_path / "exports" / "alice.json"
    dialog.ask_export_path = lambda _parent, suggested: str(target)
    exported = next_emit(alice.controller.account_exported)
    dialog.export_button.click()
    assert await exported == str(target)
    assert str(target) in dialog.account_status.text()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600  # private messages inside
    document = json.loads(target.read_text())
    assert document["format"] == "presence-account-export"
    assert document["account"]["user"]["login"] == "alice"
    assert [f["user"]["login"] for f in document["account"]["friends"]] == ["bob"]
    assert sorted((m["direction"], m["text"]) for m in document["messages"]) == [
        ("received", "hi alice"),
        ("sent", "hi bob"),
    ]
    assert alice.credentials.get() not in target.read_text()

    # A wrong confirmation deletes nothing and says so.
    dialog.ask_delete_confirmation = lambda _parent, _login: "bob"
    dialog.delete_button.click()
    assert alice.errors[-1].code == "confirm_mismatch"
    assert alice.connection.current.link is Link.ONLINE

    alice_id = alice.me
    sign_ins: list[Any] = []
    alice.controller.sign_in_started.connect(sign_ins.append)
    deleted = next_emit(alice.controller.account_deleted)
    dialog.ask_delete_confirmation = lambda _parent, login: login
    dialog.delete_button.click()
    await deleted
    assert alice.connection.current.link is Link.SIGNED_OUT
    assert alice.connection.current.title == "Account deleted"
    assert alice.credentials.get() is None
    assert alice.settings.runtime.inbox == ()
    assert sign_ins == []  # no browser for an account that is gone
    await until(lambda: alice_id not in bob.state.friends, bob.state.friend_removed)
    dialog.close()
    await settle(server, alice, bob)


async def test_an_expired_message_is_told_to_its_sender_once(
    apps: tuple[App, App], server: ServerHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, bob = apps
    await bob.controller.stop()  # bob goes away for a long time
    alice.controller.send_message(bob.me, "see you?")
    await until(
        lambda: not alice.controller.client.pending(), alice.controller.client.outbox_changed
    )
    running = server.server
    assert running is not None and running.sweeper is not None
    later = int(time.time()) + running.config.retention.undelivered_messages + 10
    monkeypatch.setattr(running.hub, "now", lambda: later)
    told = next_emit(alice.controller.errors)
    await running.sweeper.run_once()
    error: UserError = await told
    assert error.code == "message_expired" and "bob" in error.message
    # The client acknowledged the notice (ok received): the server forgot it.
    client = alice.controller.client
    await until(lambda: not client.pending(), client.outbox_changed)
    db = Path(running.config.database_url.removeprefix("sqlite+aiosqlite:///"))
    assert rows(db, "SELECT id FROM messages") == []
    await settle(server, alice, bob)
