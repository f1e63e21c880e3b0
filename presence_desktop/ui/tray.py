"""The system tray icon: badge from my status and the link, tooltip, left click
toggles the popup, right click shows the app menu."""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QObject, QRect, Signal
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from ..core.api import ConnectionEvents
from ..core.format import my_status_text
from ..core.state import PresenceState
from .icons import IconFactory
from .present import Badge, badge_for, tray_tooltip
from .unread_badge import CountedIcons, count_label


class Tray(QObject):
    activated = Signal()
    """Left click (or the platform's primary activation)."""

    def __init__(
        self,
        state: PresenceState,
        connection: ConnectionEvents,
        icons: IconFactory,
        menu: QMenu,
        *,
        icon: QSystemTrayIcon | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._state = state
        self._connection = connection
        self._icons = icons
        self._clock = clock
        self._monotonic = monotonic
        # An icon shown early (e.g. while the demo server starts) is adopted, so
        # the tray host keeps its slot instead of docking a second icon.
        self.icon = icon if icon is not None else QSystemTrayIcon(self)
        self.icon.setParent(self)
        self.icon.setContextMenu(menu)
        self.icon.activated.connect(self._on_activated)
        self.badge: Badge | None = None
        self.unread_label = ""
        """What the unread disc on the icon says ('' for none; issue 17)."""
        self._counted = CountedIcons(icons)
        self._shown: tuple[Badge, str] | None = None
        state.reset.connect(lambda _none: self.update())
        state.friend_changed.connect(lambda _uid: self.update())
        state.friend_added.connect(lambda _uid: self.update())
        state.friend_removed.connect(lambda _uid: self.update())
        state.inbox_changed.connect(lambda _none: self.update())
        my_status_changed = getattr(state, "my_status_changed", None)
        if my_status_changed is not None:
            my_status_changed.connect(lambda _s: self.update())
        connection.changed.connect(lambda _info: self.update())
        self.update()

    def show(self) -> None:
        self.icon.show()

    def hide(self) -> None:
        self.icon.hide()

    def geometry(self) -> QRect | None:
        """Where the icon is on screen, or None where the platform does not say.

        Until an XEmbed tray host has docked the icon, Qt reports the icon's
        own window at (0, 0); that is not a place to open a popup next to.
        """
        rect = self.icon.geometry()
        if not rect.isValid() or rect.width() <= 0 or (rect.x() == 0 and rect.y() == 0):
            return None
        return rect

    def update(self) -> None:
        info = self._connection.current
        badge = badge_for(info.link, self._state.my_status)
        unread = self._state.unread_count()
        shown = (badge, count_label(unread))
        if shown != self._shown:
            self._shown = shown
            self.badge, self.unread_label = shown
            self.icon.setIcon(self._counted.icon(badge, unread))
        self.icon.setToolTip(self.tooltip())

    def tooltip(self) -> str:
        until = getattr(self._state, "my_status_until", None)
        return tray_tooltip(
            my_status_text(self._state.my_status, until, self._clock()),
            self._state.online_count(),
            self._state.unread_count(),
            self._connection.current,
            self._monotonic(),
        )

    def _on_activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason in (
            QSystemTrayIcon.ActivationReason.Trigger,
            QSystemTrayIcon.ActivationReason.DoubleClick,
        ):
            self.activated.emit()
