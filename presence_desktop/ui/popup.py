"""The two hosts of the friends panel.

``PopupWindow``: a frameless tool window that opens next to the tray icon and
closes when it loses focus or on Esc. ``MainWindow``: an ordinary window for
desktops without a system tray, with an info line saying why — the app must
never run invisibly.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QEvent, QPoint, QRect, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QCursor, QGuiApplication, QHideEvent, QKeyEvent
from PySide6.QtWidgets import QFrame, QLayout, QVBoxLayout, QWidget

from .fit import fit_on_show, room
from .panel import FriendsPanel
from .present import POPUP_MARGIN, popup_position

POPUP_SIZE = QSize(380, 540)
"""The fallback window's first size (before it is fitted to its screen)."""
POPUP_WIDTH = 380
MIN_POPUP_HEIGHT = 240
MAX_POPUP_HEIGHT = 640
"""The popup grows with its content up to this (logical px), then the list scrolls."""
REOPEN_GUARD_S = 0.35
"""A tray click right after the popup closed itself on focus loss means "close"."""
ICON_CLICK_GUARD_S = 5.0
"""The same when the pointer was on the tray icon as the popup lost the focus:
the click that took it is the one on its way, however late a busy machine
delivers it (the short guard alone let it reopen the popup)."""


class PopupWindow(QWidget):
    hidden = Signal()

    def __init__(
        self,
        panel: FriendsPanel,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        pointer: Callable[[], QPoint] = QCursor.pos,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(
            parent,
            Qt.WindowType.Tool
            | Qt.WindowType.FramelessWindowHint
            | Qt.WindowType.WindowStaysOnTopHint,
        )
        self.setObjectName("Popup")
        self.setWindowTitle("Presence friends")
        self._monotonic = monotonic
        self._pointer = pointer
        self._toggle_closes_until = -1.0
        """Until then a toggle of the hidden popup means "close": it hid itself
        on focus loss, and the toggle is the tray click that took the focus."""
        self.panel = panel
        frame = QFrame(self)
        frame.setObjectName("PopupFrame")
        frame.setFrameShape(QFrame.Shape.StyledPanel)
        frame.setStyleSheet(
            "#PopupFrame { border: 1px solid palette(mid); border-radius: 0px;"
            " background: palette(window); }"
        )
        inner = QVBoxLayout(frame)
        inner.setContentsMargins(1, 1, 1, 1)
        inner.addWidget(panel)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        # The window's size is chosen by fit(), not by the layout's minimum: at
        # a large scale factor the content's minimum can be taller than the screen.
        outer.setSizeConstraint(QLayout.SizeConstraint.SetNoConstraint)
        outer.addWidget(frame)
        self._tray: QRect | None = None
        self._refit = QTimer(self)
        self._refit.setSingleShot(True)
        self._refit.setInterval(0)
        self._refit.timeout.connect(self._fit_if_visible)
        self.resize(POPUP_SIZE)

    def fit(self, tray: QRect | None = None) -> QRect:
        """Size to the content for the screen next to ``tray``, and place next to it.

        Width: ``POPUP_WIDTH`` or the screen's room, whichever is less. Height:
        what the content asks for at that width, between ``MIN_POPUP_HEIGHT``
        and ``MAX_POPUP_HEIGHT`` or the screen's room; past that the list scrolls.
        """
        if tray is not None:
            self._tray = tray
        tray = self._tray
        screen = QGuiApplication.screenAt(tray.center()) if tray is not None else None
        screen = screen or self.screen() or QGuiApplication.primaryScreen()
        area = screen.availableGeometry()
        limit = room(area, POPUP_MARGIN)
        width = min(POPUP_WIDTH, limit.width())
        wanted = (
            self.heightForWidth(width) if self.hasHeightForWidth() else self.sizeHint().height()
        )
        if wanted <= 0:
            wanted = self.sizeHint().height()
        height = min(max(wanted, MIN_POPUP_HEIGHT), MAX_POPUP_HEIGHT, limit.height())
        self.resize(width, height)
        tray_rect = None if tray is None else (tray.x(), tray.y(), tray.width(), tray.height())
        x, y = popup_position(
            tray_rect, (width, height), (area.x(), area.y(), area.width(), area.height())
        )
        self.move(x, y)
        return QRect(x, y, width, height)

    def _fit_if_visible(self) -> None:
        if self.isVisible():
            self.fit()

    def event(self, event: QEvent) -> bool:
        # Content changed size (rows came or went, an error appeared): fit again,
        # once, after the layout has settled.
        if event.type() == QEvent.Type.LayoutRequest and self.isVisible():
            self._refit.start()
        return super().event(event)

    def open_near(self, tray: QRect | None) -> None:
        """Show next to ``tray`` (or centred), sized to the content and that screen."""
        self._tray = tray
        self.fit(tray)
        self.show()
        self.raise_()
        self.activateWindow()
        self.panel.focus_search()

    def toggle(self, tray: QRect | None) -> None:
        if self.isVisible():
            self.hide()
        elif self._monotonic() < self._toggle_closes_until:
            # The click that took the focus away was on the tray icon itself.
            self._toggle_closes_until = -1.0
        else:
            self.open_near(tray)

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if (
            event.type() == QEvent.Type.ActivationChange
            and self.isVisible()
            and not self.isActiveWindow()
            and QGuiApplication.applicationState() is not Qt.ApplicationState.ApplicationSuspended
        ):
            on_icon = self._tray is not None and self._tray.contains(self._pointer())
            guard = ICON_CLICK_GUARD_S if on_icon else REOPEN_GUARD_S
            self._toggle_closes_until = self._monotonic() + guard
            self.hide()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        # Esc clears the search (or closes the add bar, or leaves the inbox) first.
        if event.key() == Qt.Key.Key_Escape:
            if not self.panel.escape():
                self.hide()
            return
        super().keyPressEvent(event)

    def hideEvent(self, event: QHideEvent) -> None:
        super().hideEvent(event)
        self.panel.reset_for_next_open()
        self.hidden.emit()


class MainWindow(QWidget):
    """The panel in a normal window; closing it quits, since nothing else would show the app."""

    close_requested = Signal()

    def __init__(self, panel: FriendsPanel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("MainWindow")
        self.setWindowTitle("Presence")
        self.panel = panel
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(panel)
        self.resize(POPUP_SIZE)
        fit_on_show(self, grow=False)  # keeps the size the user gave it, if it fits
        self._quitting = False

    def open(self) -> None:
        if self.isMinimized():
            self.showNormal()
        self.show()
        self.raise_()
        self.activateWindow()

    def allow_close(self) -> None:
        self._quitting = True

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._quitting:
            event.accept()
            return
        event.ignore()
        self.close_requested.emit()
