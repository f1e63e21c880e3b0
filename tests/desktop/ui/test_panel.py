"""The popup's content: rows paint, search and section counts, requests, add
friend errors, row actions, inbox and header."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QMenu, QPushButton, QStyleOptionViewItem
from pytestqt.qtbot import QtBot

from presence_desktop.core.api import ConnectionInfo, Link, UserError
from presence_desktop.core.format import activity_line
from presence_desktop.ui.avatars import AvatarStore
from presence_desktop.ui.delegate import HEADER_HEIGHT, ROW_HEIGHT, FriendDelegate
from presence_desktop.ui.friends_model import FriendsModel, Role
from presence_desktop.ui.menus import AppMenu
from presence_desktop.ui.panel import FriendsPanel
from presence_protocol import SeenStatus, User

from .fakes import FakeCore, friend, message, snapshot


class Nav:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def open_friends(self) -> None:
        self.calls.append("friends")

    def open_add_friend(self) -> None:
        self.calls.append("add_friend")

    def open_settings(self) -> None:
        self.calls.append("settings")

    def request_quit(self) -> None:
        self.calls.append("quit")


@pytest.fixture
def core() -> FakeCore:
    core = FakeCore()
    now = int(time.time())
    core.state.apply_snapshot(
        snapshot(
            friend(
                2, "alice", name="Alice Liddell", language="Rust", project="tokio", since=now - 720
            ),
            friend(3, "bob", SeenStatus.AWAY, language="Python", since=now - 60),
            friend(4, "carol", SeenStatus.OFFLINE, last_seen=now - 3 * 3600),
            incoming=(User(id=7, login="frank"),),
            outgoing=(User(id=8, login="grace"),),
        )
    )
    core.go_online()
    return core


@pytest.fixture
def panel(core: FakeCore, qtbot: QtBot, tmp_path: Path) -> FriendsPanel:
    model = FriendsModel(
        core.state,
        activity_line,
        is_starred=core.actions.is_starred,
        is_muted=core.actions.is_muted,
    )
    delegate = FriendDelegate(AvatarStore(tmp_path))
    menu = AppMenu(core.state, core.connection, core.actions, Nav())
    panel = FriendsPanel(core.state, core.connection, core.actions, model, delegate, app_menu=menu)
    qtbot.addWidget(panel)
    panel.resize(380, 540)
    panel.show()
    return panel


def section_counts(panel: FriendsPanel) -> dict[str, int]:
    model = panel.view.model()
    out = {}
    for row in range(model.rowCount()):
        idx = model.index(row, 0)
        if idx.data(Role.KIND) == "header":
            out[idx.data(Qt.ItemDataRole.DisplayRole)] = idx.data(Role.COUNT)
    return out


def test_delegate_paints_every_row_with_the_right_heights(
    panel: FriendsPanel, core: FakeCore
) -> None:
    core.actions.starred.add(2)
    core.actions.muted.add(3)
    model = panel.view.model()
    delegate = panel.view.itemDelegate()
    assert isinstance(delegate, FriendDelegate)
    image = QImage(380, 60, QImage.Format.Format_ARGB32)
    for row in range(model.rowCount()):
        idx = model.index(row, 0)
        option = QStyleOptionViewItem()
        option.initFrom(panel.view)
        option.rect = image.rect()
        option.widget = panel.view
        image.fill(QColor("white"))
        painter = QPainter(image)
        delegate.paint(painter, option, idx)
        painter.end()
        height = delegate.sizeHint(option, idx).height()
        assert height == (HEADER_HEIGHT if idx.data(Role.KIND) == "header" else ROW_HEIGHT)
        # Something was drawn: not every pixel is still white.
        assert any(
            image.pixelColor(x, y) != QColor("white")
            for x in range(0, 380, 3)
            for y in range(0, min(height, 60), 3)
        )


def test_search_filters_rows_and_section_counts(panel: FriendsPanel, qtbot: QtBot) -> None:
    assert section_counts(panel) == {"Online": 1, "Away": 1, "Offline": 1}
    qtbot.keyClicks(panel.search, "python")
    assert section_counts(panel) == {"Away": 1}  # empty sections are not shown
    panel.search.clear()
    qtbot.keyClicks(panel.search, "zzz")
    assert panel.empty_label.isVisible()
    assert "zzz" in panel.empty_label.text()
    panel.search.clear()
    assert not panel.empty_label.isVisible()
    assert section_counts(panel) == {"Online": 1, "Away": 1, "Offline": 1}


def test_request_buttons_reach_the_actions(
    panel: FriendsPanel, core: FakeCore, qtbot: QtBot
) -> None:
    accept = panel.requests.findChild(QPushButton, "incoming-accept-7")
    decline = panel.requests.findChild(QPushButton, "incoming-decline-7")
    cancel = panel.requests.findChild(QPushButton, "outgoing-cancel-8")
    assert accept and decline and cancel
    qtbot.mouseClick(accept, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(decline, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(cancel, Qt.MouseButton.LeftButton)
    assert core.actions.calls[-3:] == [
        ("accept_friend", (7,)),
        ("decline_friend", (7,)),
        ("cancel_request", (8,)),
    ]


def test_requests_area_hides_when_empty(panel: FriendsPanel, core: FakeCore) -> None:
    assert panel.requests.isVisible()
    core.state.incoming.clear()
    core.state.outgoing.clear()
    core.state.requests_changed.emit(None)
    assert not panel.requests.isVisible()


def test_add_friend_sends_login_and_shows_errors_inline(
    panel: FriendsPanel, core: FakeCore, qtbot: QtBot
) -> None:
    panel.show_add_friend()
    assert panel.add_bar.isVisible()
    qtbot.keyClicks(panel.add_bar.field, "@octocat")
    qtbot.keyClick(panel.add_bar.field, Qt.Key.Key_Return)
    assert core.actions.calls[-1] == ("add_friend", ("octocat",))
    core.actions.errors.emit(
        UserError("Unknown user", "Nobody called octocat uses this server.", "unknown_user")
    )
    assert panel.add_bar.error.isVisible()
    assert "Nobody called octocat" in panel.add_bar.error.text()
    assert not panel.banner.isVisible()  # inline, not in the general banner
    qtbot.keyClicks(panel.add_bar.field, "x")
    assert not panel.add_bar.error.isVisible()  # typing clears it
    core.actions.errors.emit(
        UserError("Friend limit reached", "Remove someone first.", "friend_limit")
    )
    assert "Friend limit reached" in panel.add_bar.error.text()
    core.actions.errors.emit(UserError("Too many commands", "Wait a minute.", "rate_limited"))
    assert panel.banner.isVisible()
    assert "Too many commands" in panel.banner.text()


def test_empty_login_is_refused_without_a_call(panel: FriendsPanel, core: FakeCore) -> None:
    before = len(core.actions.calls)
    panel.show_add_friend()
    panel.add_bar.submit()
    assert len(core.actions.calls) == before
    assert panel.add_bar.error.isVisible()


def test_row_menu_actions_reach_the_actions(panel: FriendsPanel, core: FakeCore) -> None:
    menu = panel.open_friend_menu(2, QPoint(10, 10))
    assert isinstance(menu, QMenu)
    acts = {a.text(): a for a in menu.actions() if a.text()}
    assert list(acts) == [
        "Open conversation",
        "Mute notifications",
        "Star (notify when online)",
        "Remove friend…",
        "Block…",
    ]
    acts["Mute notifications"].trigger()
    acts["Star (notify when online)"].trigger()
    assert ("set_muted", (2, True)) in core.actions.calls
    assert ("set_starred", (2, True)) in core.actions.calls
    row = panel.view.model().row_of(2)
    assert panel.view.model().index(row, 0).data(Role.STARRED) is True
    menu.close()
    again = panel.open_friend_menu(2, QPoint(10, 10))
    assert again is not None
    mute = next(a for a in again.actions() if a.text() == "Mute notifications")
    assert mute.isChecked()
    again.close()


def test_send_message_dialog_sends_trimmed_text_once(
    panel: FriendsPanel, core: FakeCore, qtbot: QtBot
) -> None:
    dialog = panel.open_send_dialog(2, "alice")
    assert not dialog.send_button.isEnabled()
    qtbot.keyClicks(dialog.text, "  hello there  ")
    assert dialog.send_button.isEnabled()
    qtbot.mouseClick(dialog.send_button, Qt.MouseButton.LeftButton)
    assert core.actions.calls[-1] == ("send_message", (2, "hello there"))


def test_message_over_the_limit_cannot_be_sent(panel: FriendsPanel, core: FakeCore) -> None:
    dialog = panel.open_send_dialog(2, "alice")
    dialog.text.setPlainText("x" * 10_000)
    assert not dialog.send_button.isEnabled()
    dialog.reject()


def test_remove_asks_first(panel: FriendsPanel, core: FakeCore) -> None:
    panel._confirm_remove(2, "alice")
    box = next(iter(d for d in panel._dialogs if d.isVisible()))
    remove = next(b for b in box.findChildren(QPushButton) if b.text() == "Remove")
    remove.click()
    assert core.actions.calls[-1] == ("remove_friend", (2,))


def test_inbox_badge_counts_unread_and_opening_a_conversation_reads_it(
    panel: FriendsPanel, core: FakeCore
) -> None:
    core.state.add_message(message(1, 2, "pair on the parser?"))
    core.state.add_message(message(2, 3, "lunch?"))
    assert panel.inbox_button.text() == "Inbox · 2"
    panel.show_inbox()
    assert panel.page == "inbox"
    assert panel.inbox_button.text() == "Inbox · 2"  # the list alone reads nothing
    panel.open_conversation(2)
    assert panel.page == "conversation"
    assert panel.inbox_button.text() == "Inbox · 1"
    assert [m.sender_id for m in core.state.inbox if not m.read] == [3]


def test_header_shows_me_status_and_connection(panel: FriendsPanel, core: FakeCore) -> None:
    assert panel.me_label.text() == "Demo Me"
    assert panel.connection_label.text() == "Connected"
    core.actions.set_status(core.state.my_status.__class__("dnd"), None)
    assert panel.status_button.text().startswith("Do not disturb")
    core.connection.set(
        ConnectionInfo(Link.OFFLINE, title="Session expired", message="Sign in again.")
    )
    assert panel.connection_label.text() == "Offline: Session expired"
    assert panel.offline_detail.text() == "Sign in again."
    core.connection.set(ConnectionInfo(Link.SIGNED_OUT))
    assert panel.page == "signed_out"
    panel.sign_in_button.click()
    assert core.actions.calls[-1] == ("sign_in", ())
    core.go_online()
    assert panel.page == "friends"


def test_keyboard_down_from_search_then_menu_key_opens_row_actions(
    panel: FriendsPanel, qtbot: QtBot
) -> None:
    panel.search.setFocus()
    qtbot.keyClick(panel.search, Qt.Key.Key_Down)
    current = panel.view.currentIndex()
    assert current.data(Role.KIND) == "friend"
    assert current.data(Role.USER_ID) == 2  # first friend of the first section
    before = set(panel.findChildren(QMenu))
    qtbot.keyClick(panel.view, Qt.Key.Key_Menu)
    menus = [m for m in panel.findChildren(QMenu) if m not in before and m.isVisible()]
    assert len(menus) == 1
    assert menus[0].actions()[0].text() == "Open conversation"
    menus[0].close()
