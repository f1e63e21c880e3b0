"""The wired ui: no-tray fallback window, alerts reaching the notifier, clicks
opening the right page, quit, and a second launch bringing the app forward."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from PySide6.QtCore import QCoreApplication
from PySide6.QtWidgets import QSystemTrayIcon

from presence_desktop.core.api import Alert, AlertKind
from presence_desktop.ui.app import NO_TRAY_NOTICE, DesktopUi
from presence_desktop.ui.notifications import LogBackend
from presence_desktop.ui.single_instance import SingleInstance

from .fakes import FakeCore, friend, message, snapshot
from .helpers import next_emit


@pytest.fixture
def core() -> FakeCore:
    core = FakeCore()
    core.state.apply_snapshot(snapshot(friend(2, "alice"), friend(3, "bob")))
    core.go_online()
    return core


def make_ui(core: FakeCore, tmp_path: Path, **kw: object) -> DesktopUi:
    return DesktopUi(core, core.actions, cache_dir=tmp_path, backends=[LogBackend()], **kw)  # type: ignore[arg-type]


def test_without_a_tray_the_app_is_a_visible_window_with_the_menu(
    core: FakeCore, tmp_path: Path
) -> None:
    assert not QSystemTrayIcon.isSystemTrayAvailable()  # offscreen has none
    ui = make_ui(core, tmp_path)
    ui.start()
    assert ui.tray is None and ui.popup is None
    assert ui.window is not None and ui.window.isVisible()
    assert ui.panel.notice.isVisible()
    assert ui.panel.notice.text() == NO_TRAY_NOTICE
    assert ui.panel.menu_button.menu() is ui.menu
    assert ui.panel.menu_button.isVisible()
    # Closing the window quits (nothing else could bring it back).
    quits: list[bool] = []
    ui.quit_requested.connect(lambda: quits.append(True))
    ui.window.close()
    assert quits == [True]
    assert core.actions.calls[-1] == ("quit", ())
    assert ui.window.isVisible()


def test_with_a_tray_the_popup_opens_centred_without_icon_geometry(
    core: FakeCore, tmp_path: Path
) -> None:
    ui = make_ui(core, tmp_path, tray_available=True)
    ui.start()
    assert ui.popup is not None and not ui.popup.isVisible()
    assert not ui.panel.notice.isVisible()
    ui.toggle_popup()
    assert ui.popup.isVisible()
    screen = ui.popup.screen().availableGeometry()
    assert screen.contains(ui.popup.geometry())
    ui.toggle_popup()
    assert not ui.popup.isVisible()


async def test_alert_is_shown_and_its_click_opens_the_conversation(
    core: FakeCore, tmp_path: Path
) -> None:
    ui = make_ui(core, tmp_path)
    ui.start()
    core.state.add_message(message(1, 2, "hi"))
    alert = Alert(AlertKind.MESSAGE, "alice sent you a message", "hi", (2,))
    core.alerts.emit(alert)
    name, shown = await next_emit(ui.notifier.shown)
    assert (name, shown) == ("log", alert)
    ui.notifier.clicked.emit(alert)
    assert ui.panel.page == "conversation" and ui.panel.conversation.peer == 2
    assert core.state.unread_count() == 0
    ui.on_alert_clicked(Alert(AlertKind.MESSAGE, "2 messages"))  # from several: the list
    assert ui.panel.page == "inbox"
    ui.on_alert_clicked(Alert(AlertKind.FRIEND_ONLINE, "bob is online"))
    assert ui.panel.page == "friends"
    await ui.aclose()
    assert not ui.window.isVisible()  # type: ignore[union-attr]


def test_settings_entry_opens_one_dialog(core: FakeCore, tmp_path: Path) -> None:
    from presence_desktop.core.settings import SettingsStore

    ui = make_ui(core, tmp_path, settings=SettingsStore(tmp_path / "c", tmp_path / "s"))
    ui.menu.settings.trigger()
    first = ui._settings_dialog
    assert first is not None and first.isVisible()
    ui.menu.settings.trigger()
    assert ui._settings_dialog is first
    first.close()


async def test_second_launch_asks_the_first_to_show(tmp_path: Path) -> None:
    name = str(tmp_path / "instance.sock")
    first = SingleInstance(name)
    assert first.claim()
    shown = asyncio.get_running_loop().create_future()
    first.show_requested.connect(lambda: shown.done() or shown.set_result(True))
    second = SingleInstance(name)
    assert not second.claim()  # another instance runs: it was told to show
    assert await asyncio.wait_for(shown, 10)
    first.close()
    third = SingleInstance(name)
    assert third.claim()  # the name is free again
    third.close()
    QCoreApplication.processEvents()


def test_stale_socket_file_does_not_block_start(tmp_path: Path) -> None:
    path = tmp_path / "stale.sock"
    path.write_text("left over by a crash")
    instance = SingleInstance(str(path))
    assert instance.claim()
    instance.close()


def test_an_icon_shown_early_is_adopted_not_doubled(core: FakeCore, tmp_path: Path) -> None:
    early = QSystemTrayIcon()
    ui = make_ui(core, tmp_path, tray_available=True, tray_icon=early)
    assert ui.tray is not None and ui.tray.icon is early
    assert early.contextMenu() is ui.menu
    assert "Online" in early.toolTip()


async def test_the_window_reopens_where_it_was(core: FakeCore, tmp_path: Path) -> None:
    from presence_desktop.core.settings import SettingsStore

    store = SettingsStore(tmp_path / "c", tmp_path / "s")
    ui = make_ui(core, tmp_path, settings=store)
    ui.start()
    assert ui.window is not None
    ui.window.setGeometry(120, 90, 420, 600)
    await ui.aclose()
    again = make_ui(core, tmp_path, settings=SettingsStore(tmp_path / "c", tmp_path / "s"))
    again.start()
    assert again.window is not None
    g = again.window.geometry()
    assert (g.x(), g.y(), g.width(), g.height()) == (120, 90, 420, 600)
    await again.aclose()
