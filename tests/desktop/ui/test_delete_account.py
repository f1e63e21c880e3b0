"""Deleting my account from Settings: a non-blocking confirmation that takes the
exact login, shows progress and the server's answer inline, and signs out."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from presence_desktop.core.api import Link, UserError
from presence_desktop.core.credentials import MemoryCredentials
from presence_desktop.core.events import Signal
from presence_desktop.ui.delete_account import DeleteAccountDialog
from presence_desktop.ui.settings_dialog import SettingsDialog
from tests.desktop.net.helpers import Peer, next_emit, until
from tests.integration.apps import App, befriend

from .realapps import start_server, stop_all, wait_link

pytestmark = pytest.mark.usefixtures("app_stays_open")


class FakeDeletion:
    def __init__(self) -> None:
        self.account_deleted = Signal[None]()
        self.account_delete_failed = Signal[UserError]()
        self.requests: list[str] = []

    def delete_account(self, confirm_login: str) -> None:
        self.requests.append(confirm_login)


def test_delete_is_enabled_only_by_the_exact_login(qtbot: QtBot) -> None:
    actions = FakeDeletion()
    dialog = DeleteAccountDialog(actions, "mona", "wss://presence.example.org")
    qtbot.addWidget(dialog)
    dialog.open()
    text = dialog.explanation.text()
    for word in ("friendships", "requests", "messages", "sessions", "presence", "every device"):
        assert word in text
    assert "wss://presence.example.org" in text
    for typed in ("", "mon", "Mona", "MONA", " mona", "mona ", "monalisa"):
        dialog.confirm.setText(typed)
        assert not dialog.delete_button.isEnabled(), typed
    dialog.delete_button.click()  # disabled: nothing happens
    qtbot.keyClick(dialog.confirm, Qt.Key.Key_Return)
    assert actions.requests == []
    assert dialog.isVisible()  # Enter did not cancel either

    dialog.confirm.setText("mona")
    assert dialog.delete_button.isEnabled()
    qtbot.keyClick(dialog.confirm, Qt.Key.Key_Return)
    assert actions.requests == ["mona"]
    # In flight: progress shown, no second request, the text locked.
    assert dialog.progress.isVisible()
    assert not dialog.delete_button.isEnabled() and not dialog.confirm.isEnabled()
    dialog.delete_button.click()
    assert actions.requests == ["mona"]

    actions.account_delete_failed.emit(UserError("Account not deleted", "Server down.", "offline"))
    assert dialog.status.isVisible() and dialog.status.text() == "Server down."
    assert not dialog.progress.isVisible()
    assert dialog.delete_button.isEnabled()  # try again
    dialog.delete_button.click()
    actions.account_deleted.emit(None)
    assert dialog.deleted and "deleted" in dialog.status.text()
    assert [b.text() for b in dialog.buttons.buttons() if not b.isHidden()] == ["Close"]
    dialog.cancel_button.click()
    assert not dialog.isVisible()
    # Closed: it stopped listening to the controller.
    actions.account_delete_failed.emit(UserError("x", "late", "offline"))
    assert dialog.status.text() != "late"


async def test_a_real_server_deletes_the_account_and_its_token_stops_working(
    tmp_path: Path, qtbot: QtBot
) -> None:
    server = await start_server(tmp_path / "server")
    alice = App(tmp_path / "alice", server.url, "alice")
    bob = App(tmp_path / "bob", server.url, "bob")
    try:
        await alice.start()
        await bob.start()
        await befriend(alice, bob)
        token = alice.credentials.get()
        assert token is not None
        alice_id = alice.me

        settings = SettingsDialog(alice.settings, alice.state, alice.controller)
        qtbot.addWidget(settings)
        settings.show()
        settings.delete_button.click()
        dialog = settings.delete_dialog
        assert dialog is not None and dialog.isVisible()  # open(): this test keeps running
        dialog.confirm.setText("bob")
        assert not dialog.delete_button.isEnabled()
        dialog.confirm.setText("alice")
        deleted = next_emit(alice.controller.account_deleted)
        dialog.delete_button.click()
        assert dialog.progress.isVisible() and dialog.status.text() == "Deleting your account…"
        await deleted

        assert dialog.deleted and "was deleted" in dialog.status.text()
        assert alice.connection.current.link is Link.SIGNED_OUT
        assert alice.connection.current.title == "Account deleted"
        assert alice.credentials.get() is None
        await until(lambda: alice_id not in bob.state.friends, bob.state.friend_removed)

        # The old session token no longer signs anybody in.
        thief = Peer(server.url, None, credentials=MemoryCredentials(token))
        thief.client.start()
        refused = await thief.wait_signed_out_by_server()
        assert refused.title == "Signed out"
        assert thief.state.me is None
        await thief.client.stop()
        dialog.close()
        settings.close()
    finally:
        await stop_all([server], [alice, bob])


async def test_offline_the_dialog_says_so_and_nothing_is_deleted(
    tmp_path: Path, qtbot: QtBot
) -> None:
    server = await start_server(tmp_path / "server")
    alice = App(tmp_path / "alice", server.url, "alice")
    try:
        await alice.start()
        alice_id = alice.me
        settings = SettingsDialog(alice.settings, alice.state, alice.controller)
        qtbot.addWidget(settings)
        settings.show()
        settings.delete_button.click()
        dialog = settings.delete_dialog
        assert dialog is not None
        dialog.confirm.setText("alice")

        await server.stop()
        await until(
            lambda: alice.connection.current.link is not Link.ONLINE, alice.connection.changed
        )
        failed = next_emit(alice.controller.account_delete_failed)
        dialog.delete_button.click()
        error = await failed
        assert error.code == "offline"
        assert dialog.status.isVisible() and "not up" in dialog.status.text()
        assert "Nothing was deleted" in dialog.status.text()
        assert dialog.delete_button.isEnabled() and not dialog.deleted

        await server.start()
        await wait_link(alice, Link.ONLINE)
        assert alice.me == alice_id  # same account, still there
        dialog.close()
        settings.close()
    finally:
        await stop_all([server], [alice])


async def test_export_uses_a_non_blocking_file_dialog(tmp_path: Path, qtbot: QtBot) -> None:
    server = await start_server(tmp_path / "server")
    alice = App(tmp_path / "alice", server.url, "alice")
    try:
        await alice.start()
        settings = SettingsDialog(alice.settings, alice.state, alice.controller)
        qtbot.addWidget(settings)
        settings.show()
        settings.export_button.click()
        chooser = settings.export_file_dialog
        assert chooser is not None and chooser.isVisible()  # open(): no nested loop
        target = tmp_path / "alice-export.json"
        exported = next_emit(alice.controller.account_exported)
        chooser.selectFile(str(target))
        chooser.accept()
        assert await exported == str(target)
        assert target.exists() and '"login": "alice"' in target.read_text().replace('":"', '": "')
        assert str(target) in settings.account_status.text()
        assert settings.export_file_dialog is None

        # A failure is shown in the dialog too, not only in the popup.
        await server.stop()
        await until(
            lambda: alice.connection.current.link is not Link.ONLINE, alice.connection.changed
        )
        failed = next_emit(alice.controller.account_export_failed)
        settings.ask_export_path = lambda _parent, _suggested: str(tmp_path / "again.json")
        settings.export_button.click()
        await failed
        assert "Nothing was exported" in settings.account_status.text()
        assert not (tmp_path / "again.json").exists()
        settings.close()
    finally:
        await stop_all([server], [alice])
