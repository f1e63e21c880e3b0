"""Settings for conversations (issue 17): read receipts (off by default) and Clear history."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from presence_desktop.core.conversations import Conversations
from presence_desktop.core.settings import Settings, SettingsStore
from presence_desktop.ui.settings_dialog import SettingsDialog

from .fakes import FakeCore, friend, message, snapshot


class ActionsWithHistory:
    """FakeActions plus ``clear_history`` over a real history file."""

    def __init__(self, core: FakeCore, root: Path) -> None:
        self._fake = core.actions
        self.conversations = Conversations(
            core.state,
            data_dir=root,
            server_key=lambda: "wss://presence.example",
            send_receipts=lambda: False,
            clock=time.time,
        )

    def __getattr__(self, name: str) -> object:
        return getattr(self._fake, name)

    def clear_history(self) -> None:
        self.conversations.clear_history()


def test_read_receipts_are_off_by_default_and_saved_when_chosen(
    tmp_path: Path, qtbot: QtBot
) -> None:
    assert Settings().read_receipts is False
    store = SettingsStore(tmp_path / "c", tmp_path / "s")
    dialog = SettingsDialog(store)
    qtbot.addWidget(dialog)
    assert not dialog.read_receipts.isChecked()
    dialog.read_receipts.setChecked(True)
    assert dialog.save()
    assert SettingsStore(tmp_path / "c", tmp_path / "s").settings.read_receipts is True


def test_clear_history_asks_first_then_empties_the_history(tmp_path: Path, qtbot: QtBot) -> None:
    core = FakeCore()
    actions = ActionsWithHistory(core, tmp_path / "data")
    core.state.apply_snapshot(snapshot(friend(2, "alice")))
    core.state.add_message(message(1, 2, "keep or not?"))
    assert actions.conversations.summaries()
    dialog = SettingsDialog(SettingsStore(tmp_path / "c", tmp_path / "s"), core.state, actions)  # type: ignore[arg-type]
    qtbot.addWidget(dialog)
    assert dialog.clear_history_button.isEnabled()
    dialog.clear_history_button.click()
    box = dialog.clear_history_box
    assert isinstance(box, QMessageBox)
    # Enter answers the default button, Cancel: a reflex does not clear history.
    qtbot.keyClick(box, Qt.Key.Key_Return)
    assert actions.conversations.summaries()  # cancelled: nothing changed
    dialog.clear_history_button.click()
    box = dialog.clear_history_box
    assert isinstance(box, QMessageBox)
    next(b for b in box.buttons() if b.text() == "Clear history").click()
    assert actions.conversations.summaries() == []
    assert core.state.unread_count() == 0


def test_without_a_history_the_button_is_disabled(tmp_path: Path, qtbot: QtBot) -> None:
    core = FakeCore()
    dialog = SettingsDialog(SettingsStore(tmp_path / "c", tmp_path / "s"), core.state, core.actions)  # type: ignore[arg-type]
    qtbot.addWidget(dialog)
    assert not dialog.clear_history_button.isEnabled()
