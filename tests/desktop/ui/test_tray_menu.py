"""The app menu, the status submenu and the tray icon's badge and tooltip."""

from __future__ import annotations

import datetime as dt

import pytest
from PySide6.QtWidgets import QMenu
from pytestqt.qtbot import QtBot

from presence_desktop.core.api import ConnectionInfo, Link
from presence_desktop.ui.icons import IconFactory
from presence_desktop.ui.menus import AppMenu
from presence_desktop.ui.present import Badge
from presence_desktop.ui.tray import Tray
from presence_protocol import SeenStatus, Status

from .fakes import FakeCore, friend, message, snapshot
from .test_panel import Nav

# Tuesday 14:00 local time.
NOON = dt.datetime(2026, 3, 3, 14, 0).timestamp()


@pytest.fixture
def core() -> FakeCore:
    core = FakeCore()
    core.state.apply_snapshot(
        snapshot(friend(2, "alice"), friend(3, "bob"), friend(4, "carol", SeenStatus.OFFLINE))
    )
    core.go_online()
    return core


def entries(menu: QMenu) -> list[str]:
    return [a.text() for a in menu.actions() if not a.isSeparator() and a.isVisible()]


def test_menu_has_the_documented_entries_and_they_reach_their_targets(core: FakeCore) -> None:
    nav = Nav()
    menu = AppMenu(core.state, core.connection, core.actions, nav, clock=lambda: NOON)
    assert entries(menu) == [
        "Open friends",
        "My status",
        "Add friend…",
        "Settings…",
        "Sign out",
        "Quit",
    ]
    menu.open_friends.trigger()
    menu.add_friend.trigger()
    menu.settings.trigger()
    menu.quit.trigger()
    assert nav.calls == ["friends", "add_friend", "settings", "quit"]
    menu.sign.trigger()
    assert core.actions.calls[-1] == ("sign_out", ())


@pytest.mark.parametrize(
    ("info", "label"),
    [
        (ConnectionInfo(Link.RECONNECTING, retry_at=1e9), "Reconnect now"),
        (ConnectionInfo(Link.OFFLINE, title="Update needed"), "Try again"),
    ],
)
def test_reconnect_entry_shows_only_while_waiting_or_stopped(
    core: FakeCore, info: ConnectionInfo, label: str
) -> None:
    menu = AppMenu(core.state, core.connection, core.actions, Nav())
    assert label not in entries(menu)
    core.connection.set(info)
    assert entries(menu)[-3:] == [label, "Sign out", "Quit"]
    menu.reconnect.trigger()
    assert core.actions.calls[-1] == ("reconnect_now", ())
    core.connection.set(ConnectionInfo(Link.ONLINE))
    assert label not in entries(menu)


def test_sign_in_replaces_sign_out_when_signed_out(core: FakeCore) -> None:
    menu = AppMenu(core.state, core.connection, core.actions, Nav())
    core.connection.set(ConnectionInfo(Link.SIGNED_OUT))
    assert menu.sign.text() == "Sign in"
    assert not menu.status_menu.isEnabled()
    menu.sign.trigger()
    assert core.actions.calls[-1] == ("sign_in", ())


@pytest.mark.parametrize(
    ("status", "label", "expected_until"),
    [
        (Status.AWAY, "For 1 hour", int(NOON) + 3600),
        (Status.DND, "Until tomorrow", int(dt.datetime(2026, 3, 4, 9, 0).timestamp())),
        (Status.INVISIBLE, "Until I change it", None),
        (Status.ONLINE, "Until I change it", None),
    ],
)
def test_status_submenu_computes_until(
    core: FakeCore, status: Status, label: str, expected_until: int | None
) -> None:
    menu = AppMenu(core.state, core.connection, core.actions, Nav(), clock=lambda: NOON)
    sub = menu.status_menu.status_menus[status]
    assert entries(sub) == ["For 1 hour", "Until tomorrow", "Until I change it"]
    next(a for a in sub.actions() if a.text() == label).trigger()
    assert core.actions.calls[-1] == ("set_status", (status, expected_until))
    menu.status_menu.refresh()
    assert sub.menuAction().isChecked()


def test_tray_badge_and_tooltip_follow_status_link_and_inbox(core: FakeCore, qtbot: QtBot) -> None:
    menu = AppMenu(core.state, core.connection, core.actions, Nav())
    tray = Tray(
        core.state,
        core.connection,
        IconFactory(),
        menu,
        clock=lambda: NOON,
        monotonic=lambda: 100.0,
    )
    assert tray.badge is Badge.ONLINE
    assert tray.icon.toolTip() == "Presence\nOnline · 2 friends online"
    core.state.set_my_status(Status.DND, int(NOON) + 1800)
    assert tray.badge is Badge.DND
    assert "Do not disturb until 14:30 · 2 friends online" in tray.icon.toolTip()
    core.state.add_message(message(1, 2, "hi"))
    assert tray.icon.toolTip().endswith("1 unread message")
    core.connection.set(ConnectionInfo(Link.RECONNECTING, retry_at=108.0))
    assert tray.badge is Badge.DISCONNECTED
    assert "Reconnecting in 8 s…" in tray.icon.toolTip()
    assert not tray.icon.icon().isNull()


def test_icon_renders_crisp_sizes_for_every_badge(qapp: object) -> None:
    icons = IconFactory()
    for badge in [*Badge, None]:
        icon = icons.icon(badge)
        for size in (16, 22, 24, 32, 48, 64):
            pixmap = icon.pixmap(size, size)
            assert pixmap.width() == size
        image = icons.image(badge, 32, 2.0)
        assert image.width() == 64
        assert image.devicePixelRatio() == 2.0
        # The badge's centre is opaque, the corner opposite the badge transparent.
        assert image.pixelColor(1, 1).alpha() == 0
        if badge is not None:
            assert image.pixelColor(49, 49).alpha() == 255
        else:
            assert image.pixelColor(62, 62).alpha() == 0


class FakeEditorSignIn:
    """Stands in for ``EditorLink``: what the menu reads and calls."""

    def __init__(self) -> None:
        from presence_desktop.core.events import Signal

        self.offer_changed = Signal[bool]()
        self.can_offer_editor_sign_in = False
        self.waiting_for_editor = False
        self.requests = 0

    def request_editor_sign_in(self) -> bool:
        self.requests += 1
        self.waiting_for_editor = True
        return True

    def offer(self, offered: bool) -> None:
        self.can_offer_editor_sign_in = offered
        self.offer_changed.emit(offered)


def test_vs_code_sign_in_is_offered_only_signed_out_with_an_editor_that_can(
    core: FakeCore,
) -> None:
    editor = FakeEditorSignIn()
    menu = AppMenu(
        core.state, core.connection, core.actions, Nav(), clock=lambda: NOON, editor_sign_in=editor
    )
    assert "Use VS Code's GitHub account" not in entries(menu)  # signed in
    core.connection.set(ConnectionInfo(Link.SIGNED_OUT))
    assert entries(menu)[-2:] == ["Sign in", "Quit"]  # no editor that can
    editor.offer(True)
    assert entries(menu)[-3:] == ["Sign in", "Use VS Code's GitHub account", "Quit"]
    assert menu.sign_in_with_editor is not None
    menu.sign_in_with_editor.trigger()
    assert editor.requests == 1
    assert "Waiting for VS Code…" in entries(menu)
    assert not menu.sign_in_with_editor.isEnabled()
    core.go_online()
    assert "Waiting for VS Code…" not in entries(menu)
    assert "Use VS Code's GitHub account" not in entries(menu)
