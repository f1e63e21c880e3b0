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
from ..core.events import Signal
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


class EditorSignIn(Protocol):
    """Signing in with the GitHub account VS Code has (``net.editor_link.EditorLink``)."""

    offer_changed: Signal[bool]

    @property
    def can_offer_editor_sign_in(self) -> bool: ...
    @property
    def waiting_for_editor(self) -> bool: ...
    def request_editor_sign_in(self) -> bool: ...


EDITOR_SIGN_IN_TEXT = "Use VS Code's GitHub account"


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
    [Reconnect now / Try again, while waiting or stopped] · Sign in/out · [Use VS Code's GitHub
    account] · Quit. The install entry exists only with an ``ExtensionInstaller`` and shows only
    while VS Code and the bundled package are both found; the VS Code sign-in entry exists only
    with an ``EditorSignIn`` and shows only while signed out with a VS Code window connected to a
    server that accepts its GitHub session."""

    def __init__(
        self,
        state: PresenceState,
        connection: ConnectionEvents,
        actions: AppActions,
        navigator: Navigator,
        *,
        clock: Callable[[], float] = time.time,
        extension: ExtensionInstaller | None = None,
        editor_sign_in: EditorSignIn | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._editor_sign_in = editor_sign_in
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
        self.sign_in_with_editor: QAction | None = None
        if editor_sign_in is not None:
            self.sign_in_with_editor = self._add(EDITOR_SIGN_IN_TEXT, self._use_editor)
            self.sign_in_with_editor.setToolTip(
                "Sign in with the GitHub account you are signed in to in VS Code; "
                "VS Code asks you first"
            )
            editor_sign_in.offer_changed.connect(lambda _offered: self.refresh())
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
        if self.sign_in_with_editor is not None and self._editor_sign_in is not None:
            waiting = self._editor_sign_in.waiting_for_editor
            self.sign_in_with_editor.setVisible(
                signed_out and (self._editor_sign_in.can_offer_editor_sign_in or waiting)
            )
            self.sign_in_with_editor.setEnabled(not waiting)
            self.sign_in_with_editor.setText(
                "Waiting for VS Code…" if waiting else EDITOR_SIGN_IN_TEXT
            )
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

    def _use_editor(self) -> None:
        if self._editor_sign_in is not None:
            self._editor_sign_in.request_editor_sign_in()
            self.refresh()

    def _sign_in_or_out(self) -> None:
        if self._connection.current.link is Link.SIGNED_OUT:
            self._actions.sign_in()
        else:
            self._actions.sign_out()
