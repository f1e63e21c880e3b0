"""The settings dialog round-trips through the real settings store."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QPushButton
from pytestqt.qtbot import QtBot

from presence_desktop.core.settings import OnlineAlerts, SettingsStore
from presence_desktop.ui.settings_dialog import SettingsDialog
from presence_protocol import Relation, RelationUpdate, User

from .fakes import FakeCore


def test_round_trip_through_the_store(tmp_path: Path, qtbot: QtBot) -> None:
    store = SettingsStore(tmp_path / "config", tmp_path / "state")
    dialog = SettingsDialog(store)
    qtbot.addWidget(dialog)
    assert dialog.notifications.isChecked()
    dialog.server_url.setText("https://presence.example.org")
    dialog.online_alerts.setCurrentIndex(dialog.online_alerts.findData("starred"))
    dialog.notify_on_messages.setChecked(False)
    dialog.flap_minutes.setValue(12)
    assert dialog.save()
    reloaded = SettingsStore(tmp_path / "config", tmp_path / "state").settings
    assert reloaded.server_url == "wss://presence.example.org"
    assert reloaded.online_alerts is OnlineAlerts.STARRED
    assert reloaded.notify_on_messages is False
    assert reloaded.flap_minutes == 12
    again = SettingsDialog(SettingsStore(tmp_path / "config", tmp_path / "state"))
    qtbot.addWidget(again)
    assert again.server_url.text() == "wss://presence.example.org"
    assert again.online_alerts.currentData() == "starred"
    assert not again.notify_on_messages.isChecked()
    assert again.flap_minutes.value() == 12


def test_refused_value_is_shown_and_nothing_is_saved(tmp_path: Path, qtbot: QtBot) -> None:
    store = SettingsStore(tmp_path / "config", tmp_path / "state")
    dialog = SettingsDialog(store)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.server_url.setText("ws://presence.example.org")  # plain ws to a remote host
    dialog.notifications.setChecked(False)
    assert not dialog.save()
    assert dialog.error.isVisible()
    assert "wss://" in dialog.error.text()
    assert store.settings.notifications is True
    assert not (tmp_path / "config" / "settings.json").exists()


def test_notification_options_follow_the_master_switch(tmp_path: Path, qtbot: QtBot) -> None:
    dialog = SettingsDialog(SettingsStore(tmp_path / "c", tmp_path / "s"))
    qtbot.addWidget(dialog)
    dialog.notifications.setChecked(False)
    assert not dialog.online_alerts.isEnabled()
    dialog.notifications.setChecked(True)
    assert dialog.online_alerts.isEnabled()


def test_locked_server_address_is_not_saved(tmp_path: Path, qtbot: QtBot) -> None:
    store = SettingsStore(tmp_path / "c", tmp_path / "s")
    dialog = SettingsDialog(store, server_locked="The demo runs its own server.")
    qtbot.addWidget(dialog)
    assert not dialog.server_url.isEnabled()
    assert "server_url" not in dialog.changes()


def test_blocked_users_can_be_unblocked(tmp_path: Path, qtbot: QtBot) -> None:
    core = FakeCore()
    core.state.apply_relation(
        RelationUpdate(user=User(id=9, login="troll"), relation=Relation.BLOCKED)
    )
    dialog = SettingsDialog(SettingsStore(tmp_path / "c", tmp_path / "s"), core.state, core.actions)
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.blocked_box.isVisible()
    button = dialog.findChild(QPushButton, "unblock-9")
    assert button is not None
    button.click()
    assert core.actions.calls[-1] == ("unblock", (9,))
