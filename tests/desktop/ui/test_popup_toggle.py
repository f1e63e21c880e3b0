"""A click on the tray icon while the popup is open closes it, however late it arrives.

Clicking the tray icon first takes the focus from the popup, which hides
itself on focus loss; the click's own "toggle" comes after. That toggle must
not reopen the popup: within a short guard for any focus loss, and, when the
pointer was on the tray icon as the focus went, for as long as a busy machine
may take to deliver the click. A focus loss with the pointer elsewhere keeps
the short guard, so a later click on the icon opens the popup again. The
clock and the pointer are the popup's injected ones; the focus change is
Qt's own (another window activated).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QRect
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from presence_desktop.core.format import activity_line
from presence_desktop.ui.avatars import AvatarStore
from presence_desktop.ui.delegate import FriendDelegate
from presence_desktop.ui.friends_model import FriendsModel
from presence_desktop.ui.panel import FriendsPanel
from presence_desktop.ui.popup import ICON_CLICK_GUARD_S, REOPEN_GUARD_S, PopupWindow

from .fakes import FakeCore

TRAY = QRect(1240, 0, 24, 24)
ON_ICON = QPoint(1250, 10)
ELSEWHERE = QPoint(300, 400)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def rig(qtbot: QtBot, tmp_path: Path) -> tuple[PopupWindow, Clock, list[QPoint], QWidget]:
    core = FakeCore()
    core.go_online()
    model = FriendsModel(core.state, activity_line)
    panel = FriendsPanel(
        core.state, core.connection, core.actions, model, FriendDelegate(AvatarStore(tmp_path))
    )
    clock = Clock()
    pointer = [ELSEWHERE]
    popup = PopupWindow(panel, monotonic=clock, pointer=lambda: pointer[0])
    qtbot.addWidget(popup)
    other = QWidget()
    qtbot.addWidget(other)
    other.setGeometry(0, 0, 200, 200)
    return popup, clock, pointer, other


def open_then_lose_focus(qtbot: QtBot, popup: PopupWindow, other: QWidget) -> None:
    popup.toggle(TRAY)
    qtbot.waitUntil(popup.isActiveWindow)
    other.show()
    other.activateWindow()
    qtbot.waitUntil(lambda: not popup.isVisible())


@pytest.mark.parametrize("late", [0.0, REOPEN_GUARD_S * 2, ICON_CLICK_GUARD_S * 0.9])
def test_a_click_on_the_icon_closes_the_popup_even_when_delivered_late(
    qtbot: QtBot, rig: tuple[PopupWindow, Clock, list[QPoint], QWidget], late: float
) -> None:
    popup, clock, pointer, other = rig
    pointer[0] = ON_ICON
    open_then_lose_focus(qtbot, popup, other)
    clock.now += late
    popup.toggle(TRAY)  # the click that took the focus, arriving now
    assert not popup.isVisible()
    clock.now += 1.0
    popup.toggle(TRAY)  # the next click opens it again
    assert popup.isVisible()


def test_after_a_focus_loss_elsewhere_a_later_click_on_the_icon_opens_the_popup(
    qtbot: QtBot, rig: tuple[PopupWindow, Clock, list[QPoint], QWidget]
) -> None:
    popup, clock, pointer, other = rig
    pointer[0] = ELSEWHERE
    open_then_lose_focus(qtbot, popup, other)
    clock.now += REOPEN_GUARD_S * 2
    popup.toggle(TRAY)
    assert popup.isVisible()


def test_a_click_on_the_icon_long_after_the_focus_went_opens_the_popup(
    qtbot: QtBot, rig: tuple[PopupWindow, Clock, list[QPoint], QWidget]
) -> None:
    popup, clock, pointer, other = rig
    pointer[0] = ON_ICON
    open_then_lose_focus(qtbot, popup, other)
    clock.now += ICON_CLICK_GUARD_S * 1.5
    popup.toggle(TRAY)
    assert popup.isVisible()
