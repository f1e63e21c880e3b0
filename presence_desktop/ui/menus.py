"""The app menu (tray context menu, and the menu button of the window) and the
status menu, built once and refreshed from the state each time they open.

Every entry is one call: on ``AppActions`` (status, sign in/out) or on the
``Navigator`` (open a page or dialog, quit). The until-time of a timed status
comes from ``core.status``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from PySide6.QtGui import QAction, QActionGroup, QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QMenu, QWidget

from presence_protocol import Status

from ..core.api import AppActions, ConnectionEvents, Link
from ..core.format import status_label
from ..core.state import PresenceState
from ..core.status import StatusDuration, until_for
from .extension import ExtensionInstaller
from .present import STATUS_COLOURS


class Navigator(Protocol):
    """What the menus ask the ui itself to do."""

    def open_friends(self) -> None: ...
    def open_add_friend(self) -> None: ...
    def open_settings(self) -> None: ...
    def request_quit(self) -> None: ...


STATUS_ORDER = (Status.ONLINE, Status.AWAY, Status.DND, Status.INVISIBLE)
DURATIONS = (StatusDuration.ONE_HOUR, StatusDuration.UNTIL_TOMORROW, StatusDuration.UNTIL_CHANGED)


def status_dot(status: Status | str, size: int = 12) -> QIcon:
    """A filled circle in the status colour, for menus and the header."""
    key = status.value if isinstance(status, Status) else status
    icon = QIcon()
    for ratio in (1.0, 2.0):
        px = round(size * ratio)
        pm = QPixmap(px, px)
        pm.fill(QColor(0, 0, 0, 0))
        p = QPainter(pm)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(QColor("#0d1117"))
        p.setBrush(QColor(STATUS_COLOURS[key]))
        inset = max(1, px // 8)
        p.drawEllipse(inset, inset, px - 2 * inset - 1, px - 2 * inset - 1)
        p.end()
        pm.setDevicePixelRatio(ratio)
        icon.addPixmap(pm)
    return icon


class StatusMenu(QMenu):
    """My status: four statuses, each with "For 1 hour" / "Until tomorrow" / "Until I change it"."""

    def __init__(
        self,
        state: PresenceState,
        actions: AppActions,
        *,
        clock: Callable[[], float] = time.time,
        title: str = "My status",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(title, parent)
        self._state = state
        self._actions = actions
        self._clock = clock
        self._group = QActionGroup(self)
        self._group.setExclusive(True)
        self.status_menus: dict[Status, QMenu] = {}
        for status in STATUS_ORDER:
            sub = self.addMenu(status_dot(status), status_label(status))
            sub.menuAction().setCheckable(True)
            self._group.addAction(sub.menuAction())
            sub.menuAction().setData(status.value)
            for duration in DURATIONS:
                act = sub.addAction(duration.label)
                act.triggered.connect(
                    lambda _checked=False, s=status, d=duration: self.choose(s, d)
                )
            self.status_menus[status] = sub
        self.aboutToShow.connect(self.refresh)

    def choose(self, status: Status, duration: StatusDuration) -> None:
        self._actions.set_status(status, until_for(duration, self._clock()))

    def refresh(self) -> None:
        for status, sub in self.status_menus.items():
            sub.menuAction().setChecked(status is self._state.my_status)


class AppMenu(QMenu):
    """Open friends · My status ▸ · Add friend… · Settings… · [Install VS Code extension] ·
    [Reconnect now / Try again, while waiting or stopped] · Sign in/out · Quit. The install
    entry exists only with an ``ExtensionInstaller`` and shows only while VS Code and the
    bundled package are both found."""

    def __init__(
        self,
        state: PresenceState,
        connection: ConnectionEvents,
        actions: AppActions,
        navigator: Navigator,
        *,
        clock: Callable[[], float] = time.time,
        extension: ExtensionInstaller | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._connection = connection
        self._actions = actions
        self._extension = extension
        self.open_friends = self._add("Open friends", navigator.open_friends)
        self.status_menu = StatusMenu(state, actions, clock=clock, parent=self)
        self.addMenu(self.status_menu)
        self.add_friend = self._add("Add friend…", navigator.open_add_friend)
        self.settings = self._add("Settings…", navigator.open_settings)
        self.install_extension: QAction | None = None
        if extension is not None:
            self.install_extension = self._add("Install VS Code extension", self._install)
            self.install_extension.setToolTip("Lets VS Code tell Presence what you work on")
            extension.started.connect(self.refresh)
            extension.finished.connect(lambda _result: self.refresh())
        self.addSeparator()
        self.reconnect = self._add("Reconnect now", self._reconnect)
        self.reconnect.setToolTip("Skip the wait and connect to the server now")
        self.sign = self._add("Sign out", self._sign_in_or_out)
        self.quit = self._add("Quit", navigator.request_quit)
        self.aboutToShow.connect(self.refresh)
        connection.changed.connect(lambda _info: self.refresh())
        self.refresh()

    def _add(self, text: str, slot: Callable[[], None]) -> QAction:
        act = self.addAction(text)
        act.triggered.connect(lambda _checked=False: slot())
        return act

    def refresh(self) -> None:
        link = self._connection.current.link
        signed_out = link is Link.SIGNED_OUT
        self.reconnect.setVisible(link in (Link.RECONNECTING, Link.OFFLINE))
        self.reconnect.setText("Reconnect now" if link is Link.RECONNECTING else "Try again")
        self.sign.setText("Sign in" if signed_out else "Sign out")
        self.status_menu.setEnabled(not signed_out)
        self.add_friend.setEnabled(not signed_out)
        self.status_menu.refresh()
        if self.install_extension is not None and self._extension is not None:
            running = self._extension.running
            self.install_extension.setVisible(running or self._extension.available())
            self.install_extension.setEnabled(not running)
            self.install_extension.setText(
                "Installing VS Code extension…" if running else "Install VS Code extension"
            )

    def _reconnect(self) -> None:
        self._actions.reconnect_now()

    def _install(self) -> None:
        if self._extension is not None:
            self._extension.start()

    def _sign_in_or_out(self) -> None:
        if self._connection.current.link is Link.SIGNED_OUT:
            self._actions.sign_in()
        else:
            self._actions.sign_out()
