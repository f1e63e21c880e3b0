"""The app's look: the OS light/dark scheme, tool-window dialogs."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from presence_desktop.core.settings import SettingsStore
from presence_desktop.ui.dialogs import SendMessageDialog
from presence_desktop.ui.settings_dialog import SettingsDialog
from presence_desktop.ui.theme import Scheme, Theme, os_scheme, palette

from .fakes import FakeCore


@pytest.fixture
def restore_look(qapp: QApplication) -> object:
    before = (qapp.palette(), qapp.styleSheet(), qapp.style().name())
    yield None
    qapp.setPalette(before[0])
    qapp.setStyleSheet(before[1])
    qapp.setStyle(before[2])


@pytest.mark.parametrize(
    ("gtk", "scheme"),
    [("Adwaita:dark", Scheme.DARK), ("Arc-Dark", Scheme.DARK), ("Adwaita", Scheme.LIGHT)],
)
def test_gtk_theme_says_dark_or_light_when_qt_does_not_know(gtk: str, scheme: Scheme) -> None:
    if QApplication.styleHints().colorScheme() != Qt.ColorScheme.Unknown:
        pytest.skip("this platform reports its own colour scheme")
    assert os_scheme({"GTK_THEME": gtk}) is scheme


def test_dark_palette_is_dark_and_text_reads_on_it() -> None:
    dark, light = palette(Scheme.DARK), palette(Scheme.LIGHT)
    assert dark.color(QPalette.ColorRole.Window).lightness() < 60
    assert light.color(QPalette.ColorRole.Window).lightness() > 200
    for pal in (dark, light):
        contrast = abs(
            pal.color(QPalette.ColorRole.Text).lightness()
            - pal.color(QPalette.ColorRole.Base).lightness()
        )
        assert contrast > 150


def test_theme_applies_the_os_scheme_to_every_window(
    qapp: QApplication, restore_look: object, qtbot: QtBot
) -> None:
    Theme(qapp, {"GTK_THEME": "Adwaita:dark"})
    dialog = SendMessageDialog("alice", lambda _t: None)
    qtbot.addWidget(dialog)
    if QApplication.styleHints().colorScheme() == Qt.ColorScheme.Unknown:
        assert dialog.palette().color(QPalette.ColorRole.Window).lightness() < 60
    assert "focus" in qapp.styleSheet()


def test_dialogs_are_tool_windows_without_maximize(qtbot: QtBot, tmp_path: Path) -> None:
    core = FakeCore()
    store = SettingsStore(tmp_path / "config", tmp_path / "state")
    for dialog in (
        SendMessageDialog("alice", lambda _t: None),
        SettingsDialog(store, core.state, core.actions),
    ):
        qtbot.addWidget(dialog)
        flags = dialog.windowFlags()
        assert flags & Qt.WindowType.WindowCloseButtonHint
        assert not flags & Qt.WindowType.WindowMaximizeButtonHint
        assert not flags & Qt.WindowType.WindowMinimizeButtonHint
