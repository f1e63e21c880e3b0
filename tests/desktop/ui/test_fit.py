"""The popup and the dialogs fit the screen they open on: errors wrap, the
popup grows with its content up to a limit and then scrolls, dialogs never
put their buttons off screen."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PySide6.QtCore import QRect
from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot

from presence_desktop.core.api import UserError
from presence_desktop.core.format import activity_line
from presence_desktop.core.settings import SettingsStore
from presence_desktop.ui.avatars import AvatarStore
from presence_desktop.ui.delegate import FriendDelegate
from presence_desktop.ui.fit import fitted_size, room
from presence_desktop.ui.friends_model import FriendsModel
from presence_desktop.ui.panel import FriendsPanel
from presence_desktop.ui.popup import MAX_POPUP_HEIGHT, POPUP_WIDTH, PopupWindow
from presence_desktop.ui.settings_dialog import SettingsDialog
from presence_protocol import SeenStatus

from .fakes import FakeCore, friend, snapshot

LONG_ERROR = UserError(
    "GitHub sign-in is not available",
    "This server was started without GitHub OAuth credentials "
    "(PRESENCE_GITHUB_CLIENT_ID and PRESENCE_GITHUB_CLIENT_SECRET are unset), "
    "so it cannot exchange a GitHub code for a session; ask its operator to "
    "configure them, or use a server that has them.",
)


def _popup(qtbot: QtBot, tmp_path: Path, friends: int) -> tuple[FakeCore, PopupWindow]:
    core = FakeCore()
    now = int(time.time())
    core.state.apply_snapshot(
        snapshot(
            *(
                friend(10 + i, f"friend{i:02}", SeenStatus.ONLINE, language="Rust", since=now)
                for i in range(friends)
            )
        )
    )
    core.go_online()
    model = FriendsModel(core.state, activity_line)
    panel = FriendsPanel(
        core.state, core.connection, core.actions, model, FriendDelegate(AvatarStore(tmp_path))
    )
    popup = PopupWindow(panel)
    qtbot.addWidget(popup)
    return core, popup


def _area() -> QRect:
    return QGuiApplication.primaryScreen().availableGeometry()


def test_a_few_friends_need_no_scrollbar(qtbot: QtBot, tmp_path: Path) -> None:
    _core, popup = _popup(qtbot, tmp_path, 6)
    popup.open_near(None)
    qtbot.waitExposed(popup)
    view = popup.panel.view
    assert view.verticalScrollBar().maximum() == 0  # all six rows show
    assert popup.height() < MAX_POPUP_HEIGHT


def test_many_friends_grow_the_popup_to_its_limit_then_scroll(qtbot: QtBot, tmp_path: Path) -> None:
    _core, few = _popup(qtbot, tmp_path, 2)
    few.open_near(None)
    _core2, many = _popup(qtbot, tmp_path, 40)
    many.open_near(None)
    qtbot.waitExposed(many)
    limit = min(MAX_POPUP_HEIGHT, room(_area(), 6).height())
    assert few.height() < many.height() == limit
    assert many.panel.view.verticalScrollBar().maximum() > 0


def test_popup_grows_while_open_when_friends_arrive(qtbot: QtBot, tmp_path: Path) -> None:
    core, popup = _popup(qtbot, tmp_path, 1)
    popup.open_near(None)
    qtbot.waitExposed(popup)
    before = popup.height()
    for i in range(4):
        core.state.apply_snapshot(
            snapshot(*(friend(10 + j, f"friend{j:02}") for j in range(2 + i)))
        )
    qtbot.waitUntil(lambda: popup.height() > before)
    assert popup.panel.view.verticalScrollBar().maximum() == 0


def test_a_long_error_wraps_and_the_popup_keeps_its_width(qtbot: QtBot, tmp_path: Path) -> None:
    core, popup = _popup(qtbot, tmp_path, 3)
    popup.open_near(None)
    qtbot.waitExposed(popup)
    core.actions.errors.emit(LONG_ERROR)
    qtbot.waitUntil(lambda: popup.panel.banner.isVisible())
    qtbot.wait(50)  # let the deferred re-fit run (synchronous test: qtbot waits are fine)
    assert popup.width() == min(POPUP_WIDTH, room(_area(), 6).width())
    banner = popup.panel.banner
    assert banner.label.height() > 2 * banner.label.fontMetrics().height()  # wrapped lines
    assert banner.geometry().right() <= popup.panel.width()
    banner.close_button.click()
    qtbot.waitUntil(lambda: not banner.isVisible())
    assert popup.width() == min(POPUP_WIDTH, room(_area(), 6).width())


@pytest.mark.parametrize(
    ("wanted", "area", "expected"),
    [
        ((1212, 1108), (0, 0, 800, 470), (768, 438)),  # issue's Settings at ×2 on 1600×1000
        ((300, 200), (0, 0, 800, 470), (300, 200)),  # never grown
        ((900, 300), (100, 50, 640, 900), (608, 300)),
    ],
)
def test_fitted_size_shrinks_to_the_room_left(
    wanted: tuple[int, int], area: tuple[int, int, int, int], expected: tuple[int, int]
) -> None:
    from PySide6.QtCore import QSize

    got = fitted_size(QSize(*wanted), QRect(*area))
    assert (got.width(), got.height()) == expected


def test_settings_dialog_fits_the_screen_and_keeps_save_visible(
    qtbot: QtBot, tmp_path: Path
) -> None:
    store = SettingsStore(tmp_path / "config", tmp_path / "state")
    core = FakeCore()
    dialog = SettingsDialog(store, core.state, core.actions)
    qtbot.addWidget(dialog)
    # Content taller than any screen (as at a scale factor of 2).
    dialog.setMinimumHeight(_area().height() * 2)
    dialog.show()
    qtbot.waitExposed(dialog)
    area = _area()
    assert area.contains(dialog.frameGeometry())
    save = dialog.buttons.buttons()[0]
    top_left = save.mapToGlobal(save.rect().topLeft())
    bottom_right = save.mapToGlobal(save.rect().bottomRight())
    assert area.contains(top_left) and area.contains(bottom_right)


def test_settings_opens_as_wide_as_its_pages_when_the_screen_has_room(
    qtbot: QtBot, tmp_path: Path
) -> None:
    from PySide6.QtWidgets import QScrollArea

    store = SettingsStore(tmp_path / "config", tmp_path / "state")
    core = FakeCore()
    dialog = SettingsDialog(store, core.state, core.actions)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    area = dialog.findChild(QScrollArea)
    assert area is not None
    # Qt's first size (2/3 of the screen) used to clip the pages on the right.
    qtbot.waitUntil(lambda: not area.horizontalScrollBar().isVisible())
    assert area.viewport().width() >= dialog.tabs.minimumSizeHint().width()
    assert _area().contains(dialog.frameGeometry())
