"""The popup by keyboard alone: a logical Tab order, arrows and Enter on rows,
Esc clears the search before it closes, and every opening starts on the
friends list with an empty search. Add friend keeps a refused login."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QWidget
from pytestqt.qtbot import QtBot

from presence_desktop.core.api import UserError
from presence_desktop.core.format import activity_line
from presence_desktop.ui.avatars import AvatarStore
from presence_desktop.ui.delegate import FriendDelegate
from presence_desktop.ui.friends_model import FriendsModel, Role
from presence_desktop.ui.menus import AppMenu
from presence_desktop.ui.panel import FriendsPanel
from presence_desktop.ui.popup import PopupWindow
from presence_protocol import Relation, RelationUpdate, SeenStatus, User

from .fakes import FakeCore, friend, snapshot
from .test_panel import Nav


@pytest.fixture
def core() -> FakeCore:
    core = FakeCore()
    now = int(time.time())
    core.state.apply_snapshot(
        snapshot(
            friend(2, "alice", language="Rust", since=now),
            friend(3, "bob", SeenStatus.AWAY),
            friend(4, "carol", SeenStatus.OFFLINE),
        )
    )
    core.go_online()
    return core


@pytest.fixture
def popup(core: FakeCore, qtbot: QtBot, tmp_path: Path, app_stays_open: None) -> PopupWindow:
    model = FriendsModel(core.state, activity_line)
    menu = AppMenu(core.state, core.connection, core.actions, Nav())
    panel = FriendsPanel(
        core.state,
        core.connection,
        core.actions,
        model,
        FriendDelegate(AvatarStore(tmp_path)),
        app_menu=menu,
    )
    popup = PopupWindow(panel)
    qtbot.addWidget(popup)
    popup.open_near(None)
    qtbot.waitExposed(popup)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is panel.search)
    return popup


def _focused() -> QWidget | None:
    return QApplication.focusWidget()


def test_opens_in_the_search_and_tab_goes_to_the_list_then_the_header(
    popup: PopupWindow, qtbot: QtBot
) -> None:
    panel = popup.panel
    assert _focused() is panel.search
    qtbot.keyClick(panel.search, Qt.Key.Key_Tab)
    assert _focused() is panel.view
    qtbot.keyClick(panel.view, Qt.Key.Key_Tab)
    # The chain wraps to the header, in reading order.
    order = []
    for _ in range(4):
        order.append(_focused())
        qtbot.keyClick(_focused(), Qt.Key.Key_Tab)  # type: ignore[arg-type]
    assert order == [panel.inbox_button, panel.add_button, panel.menu_button, panel.status_button]


def test_arrows_skip_headers_and_enter_opens_the_conversation(
    popup: PopupWindow, qtbot: QtBot
) -> None:
    panel = popup.panel
    qtbot.keyClick(panel.search, Qt.Key.Key_Down)
    assert _focused() is panel.view
    assert panel.view.currentIndex().data(Role.USER_ID) == 2
    qtbot.keyClick(panel.view, Qt.Key.Key_Down)  # over the "Away" header
    assert panel.view.currentIndex().data(Role.USER_ID) == 3
    qtbot.keyClick(panel.view, Qt.Key.Key_Down)
    assert panel.view.currentIndex().data(Role.USER_ID) == 4
    qtbot.keyClick(panel.view, Qt.Key.Key_Up)
    assert panel.view.currentIndex().data(Role.USER_ID) == 3
    qtbot.keyClick(panel.view, Qt.Key.Key_Return)
    assert panel.page == "conversation"
    assert panel.conversation.peer == 3
    # Esc goes back one step at a time: the conversation list, the friends, then closes.
    qtbot.keyClick(panel.conversation.composer, Qt.Key.Key_Escape)
    assert panel.page == "inbox"
    assert popup.isVisible()


def test_esc_clears_the_search_first_then_closes(popup: PopupWindow, qtbot: QtBot) -> None:
    panel = popup.panel
    qtbot.keyClicks(panel.search, "ali")
    qtbot.keyClick(panel.search, Qt.Key.Key_Escape)
    assert panel.search.text() == ""
    assert popup.isVisible()
    qtbot.keyClick(panel.search, Qt.Key.Key_Escape)
    assert not popup.isVisible()


def test_every_opening_starts_on_friends_with_an_empty_search(
    popup: PopupWindow, qtbot: QtBot
) -> None:
    panel = popup.panel
    qtbot.keyClicks(panel.search, "bob")
    panel.show_inbox()
    popup.hide()
    popup.open_near(None)
    qtbot.waitExposed(popup)
    assert panel.page == "friends"
    assert panel.search.text() == ""
    assert panel.view.model().rowCount() == 6  # nothing filtered


def test_a_refused_login_stays_in_the_field(
    popup: PopupWindow, core: FakeCore, qtbot: QtBot
) -> None:
    panel = popup.panel
    panel.show_add_friend()
    qtbot.keyClicks(panel.add_bar.field, "octocatt")
    qtbot.keyClick(panel.add_bar.field, Qt.Key.Key_Return)
    assert core.actions.calls[-1] == ("add_friend", ("octocatt",))
    assert "on its way" not in panel.add_bar.sent.text()
    core.actions.errors.emit(UserError("Unknown user", "Nobody called octocatt.", "unknown_user"))
    assert panel.add_bar.field.text() == "octocatt"
    assert not panel.add_bar.sent.isVisible()
    assert panel.add_bar.error.isVisible()


def test_a_sent_request_clears_the_field_once_it_is_confirmed(
    popup: PopupWindow, core: FakeCore, qtbot: QtBot
) -> None:
    panel = popup.panel
    panel.show_add_friend()
    qtbot.keyClicks(panel.add_bar.field, "dora")
    qtbot.keyClick(panel.add_bar.field, Qt.Key.Key_Return)
    assert panel.add_bar.field.text() == "dora"  # not yet confirmed
    core.state.apply_relation(
        RelationUpdate(user=User(id=9, login="dora"), relation=Relation.OUTGOING)
    )
    assert panel.add_bar.field.text() == ""
    assert panel.add_bar.sent.text() == "Friend request to dora is on its way."


def test_adding_yourself_is_one_clear_error_and_no_request(
    popup: PopupWindow, core: FakeCore, qtbot: QtBot
) -> None:
    panel = popup.panel
    panel.show_add_friend()
    before = len(core.actions.calls)
    qtbot.keyClicks(panel.add_bar.field, "me")  # the fake's own login
    qtbot.keyClick(panel.add_bar.field, Qt.Key.Key_Return)
    assert len(core.actions.calls) == before
    assert panel.add_bar.error.isVisible() and "That is you" in panel.add_bar.error.text()
    assert not panel.add_bar.sent.isVisible()
    assert panel.add_bar.field.text() == "me"
