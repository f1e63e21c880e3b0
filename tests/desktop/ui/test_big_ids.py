"""User ids past 2^31 (dev-login ids start at 2^52) travel through every Qt
signal: the row's "⋯" button opens the menu, an arriving avatar repaints."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMenu
from pytestqt.qtbot import QtBot

from presence_desktop.core.format import activity_line
from presence_desktop.ui.avatars import AvatarStore
from presence_desktop.ui.delegate import FriendDelegate
from presence_desktop.ui.friends_model import FriendsModel, Role
from presence_desktop.ui.panel import FriendsPanel
from presence_protocol import SeenStatus
from presence_server.storage.store import DEV_ID_BASE

from .fakes import FakeCore, friend, snapshot

ALICE = DEV_ID_BASE + 2
"""The id the demo server gives its second dev-login user."""


def _panel(qtbot: QtBot, tmp_path: Path) -> tuple[FakeCore, FriendsPanel, AvatarStore]:
    core = FakeCore()
    now = int(time.time())
    core.state.apply_snapshot(
        snapshot(
            friend(ALICE, "alice", language="Rust", since=now - 60),
            friend(DEV_ID_BASE + 3, "bob", SeenStatus.AWAY),
        )
    )
    core.go_online()
    avatars = AvatarStore(tmp_path)
    model = FriendsModel(core.state, activity_line)
    panel = FriendsPanel(core.state, core.connection, core.actions, model, FriendDelegate(avatars))
    qtbot.addWidget(panel)
    panel.resize(380, 540)
    panel.show()
    qtbot.waitExposed(panel)
    return core, panel, avatars


def test_row_menu_button_opens_the_menu_for_a_demo_id(qtbot: QtBot, tmp_path: Path) -> None:
    _core, panel, _avatars = _panel(qtbot, tmp_path)
    model = panel.view.model()
    assert isinstance(model, FriendsModel)
    row = model.row_of(ALICE)
    assert row is not None
    index = model.index(row, 0)
    assert index.data(Role.USER_ID) == ALICE
    delegate = panel.view.itemDelegate()
    assert isinstance(delegate, FriendDelegate)
    panel.view.setCurrentIndex(index)  # the button shows on the selected (or hovered) row
    button = delegate.menu_rect(panel.view.visualRect(index)).center()
    opened: list[object] = []
    delegate.menu_requested.connect(lambda uid, _where: opened.append(uid))
    before = set(panel.findChildren(QMenu))
    qtbot.mouseClick(panel.view.viewport(), Qt.MouseButton.LeftButton, pos=button)
    assert opened == [ALICE]
    menus = [m for m in panel.findChildren(QMenu) if m not in before and m.isVisible()]
    assert len(menus) == 1
    assert menus[0].actions()[0].text() == "Open conversation"
    menus[0].close()


def test_avatar_ready_for_a_demo_id_repaints_that_row(qtbot: QtBot, tmp_path: Path) -> None:
    _core, panel, avatars = _panel(qtbot, tmp_path)
    model = panel.view.model()
    assert isinstance(model, FriendsModel)
    avatars.ready.connect(model.refresh)
    changed: list[int] = []
    model.dataChanged.connect(lambda top, _bottom, _roles=(): changed.append(top.row()))
    avatars.ready.emit(ALICE)
    assert changed == [model.row_of(ALICE)]
