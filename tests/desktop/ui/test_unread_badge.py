"""The unread count on the tray icon (issue 17), also during Do not disturb."""

from __future__ import annotations

from PySide6.QtGui import QColor, QImage
from pytestqt.qtbot import QtBot

from presence_desktop.ui.icons import IconFactory
from presence_desktop.ui.menus import AppMenu
from presence_desktop.ui.present import Badge
from presence_desktop.ui.tray import Tray
from presence_desktop.ui.unread_badge import CountedIcons, count_label
from presence_protocol import Status

from .fakes import FakeCore, friend, message, snapshot


class Nav:
    def open_friends(self) -> None: ...
    def open_add_friend(self) -> None: ...
    def open_settings(self) -> None: ...
    def request_quit(self) -> None: ...


def _reddish(c: QColor) -> bool:
    return c.alpha() > 200 and c.red() > 180 and c.green() < 120 and c.blue() < 120


def _red_share(image: QImage) -> float:
    """Share of reddish pixels in the top-right quarter."""
    w, h = image.width(), image.height()
    cells = [(x, y) for x in range(w // 2, w) for y in range(h // 2)]
    return sum(_reddish(image.pixelColor(x, y)) for x, y in cells) / len(cells)


def test_count_labels() -> None:
    assert [count_label(n) for n in (-1, 0, 1, 9, 10, 250)] == ["", "", "1", "9", "9+", "9+"]


def test_the_disc_sits_top_right_at_every_size(qapp: object) -> None:
    counted = CountedIcons(IconFactory())
    for size in (16, 22, 32, 64):
        plain = counted.image(Badge.ONLINE, 0, size)
        marked = counted.image(Badge.ONLINE, 3, size)
        assert _red_share(marked) > 0.25, size
        assert _red_share(plain) < 0.02, size
        # The status badge (bottom right) is untouched.
        assert marked.pixelColor(size - 3, size - 3) == plain.pixelColor(size - 3, size - 3)


def test_tray_shows_unread_also_during_do_not_disturb(qtbot: QtBot) -> None:
    core = FakeCore()
    core.state.apply_snapshot(snapshot(friend(2, "alice")))
    core.go_online()
    tray = Tray(
        core.state,
        core.connection,
        IconFactory(),
        AppMenu(core.state, core.connection, core.actions, Nav()),
    )
    assert tray.unread_label == ""
    core.state.set_my_status(Status.DND, None)
    for seq in range(1, 4):
        core.state.add_message(message(seq, 2, f"m{seq}"))
    assert (tray.badge, tray.unread_label) == (Badge.DND, "3")
    assert _red_share(tray.icon.icon().pixmap(32, 32).toImage()) > 0.25
    core.state.mark_read()
    assert tray.unread_label == ""
    assert _red_share(tray.icon.icon().pixmap(32, 32).toImage()) < 0.02
