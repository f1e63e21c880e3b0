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

import dataclasses
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


@dataclasses.dataclass
class Rig:
    """The popup with its injected clock and pointer, and another window to take the focus."""

    qtbot: QtBot
    popup: PopupWindow = dataclasses.field(init=False)
    other: QWidget = dataclasses.field(init=False)
    now: float = 1000.0
    pointer: QPoint = ELSEWHERE

    def open_then_lose_focus(self, pointer: QPoint) -> None:
        self.pointer = pointer
        self.popup.toggle(TRAY)
        self.qtbot.waitUntil(self.popup.isActiveWindow)
        self.other.show()
        self.other.activateWindow()
        self.qtbot.waitUntil(lambda: not self.popup.isVisible())


@pytest.fixture
def rig(qtbot: QtBot, tmp_path: Path) -> Rig:
    core = FakeCore()
    core.go_online()
    model = FriendsModel(core.state, activity_line)
    panel = FriendsPanel(
        core.state, core.connection, core.actions, model, FriendDelegate(AvatarStore(tmp_path))
    )
    rig = Rig(qtbot)
    rig.popup = PopupWindow(panel, monotonic=lambda: rig.now, pointer=lambda: rig.pointer)
    qtbot.addWidget(rig.popup)
    rig.other = QWidget()
    qtbot.addWidget(rig.other)
    rig.other.setGeometry(0, 0, 200, 200)
    return rig


@pytest.mark.parametrize("late", [0.0, REOPEN_GUARD_S * 2, ICON_CLICK_GUARD_S * 0.9])
def test_a_click_on_the_icon_closes_the_popup_even_when_delivered_late(
    rig: Rig, late: float
) -> None:
    rig.open_then_lose_focus(ON_ICON)
    rig.now += late
    rig.popup.toggle(TRAY)  # the click that took the focus, arriving now
    assert not rig.popup.isVisible()
    rig.now += 1.0
    rig.popup.toggle(TRAY)  # the next click opens it again
    assert rig.popup.isVisible()


@pytest.mark.parametrize(
    ("pointer", "later"),
    [
        pytest.param(ELSEWHERE, REOPEN_GUARD_S * 2, id="focus-lost-elsewhere"),
        pytest.param(ON_ICON, ICON_CLICK_GUARD_S * 1.5, id="long-after-a-click-on-the-icon"),
    ],
)
def test_a_click_on_the_icon_past_its_guard_opens_the_popup(
    rig: Rig, pointer: QPoint, later: float
) -> None:
    rig.open_then_lose_focus(pointer)
    rig.now += later
    rig.popup.toggle(TRAY)
    assert rig.popup.isVisible()
