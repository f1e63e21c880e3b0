"""Windows that fit the screen they open on, and look like tool windows.

Every size here is in logical pixels and comes from the *available* geometry
of the screen the window opens on (the screen minus panels and docks), so the
same rules hold at any ``QT_SCALE_FACTOR`` or per-screen scale: a dialog
whose content is taller than the screen gets scroll bars inside, never
buttons off the screen's edge.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QPoint, QRect, QSize, Qt, QTimer
from PySide6.QtGui import QGuiApplication, QScreen
from PySide6.QtWidgets import QFrame, QScrollArea, QWidget

SCREEN_MARGIN = 16
"""Logical pixels kept free between a window and the available area's edge."""

DIALOG_FLAGS = (
    Qt.WindowType.Dialog
    | Qt.WindowType.CustomizeWindowHint
    | Qt.WindowType.WindowTitleHint
    | Qt.WindowType.WindowCloseButtonHint
)
"""A title and a close button; no maximize or minimize (these are small tool windows)."""


def screen_for(widget: QWidget, near: QPoint | None = None) -> QScreen:
    """The screen at ``near`` (e.g. the tray icon), else the widget's, else the primary."""
    screen = QGuiApplication.screenAt(near) if near is not None else None
    if screen is None and widget.isVisible():
        screen = widget.screen()
    if screen is None:
        screen = QGuiApplication.screenAt(widget.frameGeometry().center())
    return screen or QGuiApplication.primaryScreen()


def room(area: QRect, margin: int = SCREEN_MARGIN) -> QSize:
    """The largest window that fits ``area`` with ``margin`` on every side."""
    return QSize(max(120, area.width() - 2 * margin), max(120, area.height() - 2 * margin))


def fitted_size(wanted: QSize, area: QRect, margin: int = SCREEN_MARGIN) -> QSize:
    """``wanted`` shrunk (never grown) to the room ``area`` leaves."""
    limit = room(area, margin)
    return QSize(min(wanted.width(), limit.width()), min(wanted.height(), limit.height()))


def fit_window(window: QWidget, near: QPoint | None = None, *, grow: bool = True) -> QRect:
    """Size ``window`` for its screen's available area and move it fully onto it.

    ``grow``: first let it take the size its content asks for (dialogs); without
    it the current size is kept unless the screen is smaller (a window whose
    size the user chose).
    """
    area = screen_for(window, near).availableGeometry()
    frame_extra = window.frameGeometry().size() - window.geometry().size()
    # Qt's own first size caps a window at 2/3 of the screen, which clipped
    # Settings at a scale factor of 2; the room on the screen is the only cap here.
    wanted = window.size().expandedTo(window.sizeHint()) if grow else window.size()
    size = fitted_size(wanted + frame_extra, area) - frame_extra
    # Layouts can insist on a minimum larger than the screen; the screen wins.
    window.setMinimumSize(
        min(window.minimumWidth(), size.width()), min(window.minimumHeight(), size.height())
    )
    window.resize(size)
    geo = window.frameGeometry()
    x = max(area.left(), min(geo.x(), area.right() + 1 - geo.width()))
    y = max(area.top(), min(geo.y(), area.bottom() + 1 - geo.height()))
    if (x, y) != (geo.x(), geo.y()):
        window.move(x, y)
    return window.frameGeometry()


class _FitOnShow(QObject):
    """Fits its window to the screen each time it is shown (the screen may have changed)."""

    def __init__(self, parent: QWidget, *, grow: bool) -> None:
        super().__init__(parent)
        self._grow = grow

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Show and isinstance(watched, QWidget):
            fit_window(watched, grow=self._grow)
            # A resize during the show itself can be overridden by the window's
            # first geometry; fit once more when the show has completed.
            QTimer.singleShot(0, watched, lambda w=watched: fit_window(w, grow=self._grow))
        return False


def fit_on_show(window: QWidget, *, grow: bool = True) -> QWidget:
    """Fit ``window`` to its screen every time it is shown (see ``fit_window``)."""
    window.installEventFilter(_FitOnShow(window, grow=grow))
    return window


def tool_dialog(dialog: QWidget) -> QWidget:
    """Make ``dialog`` a tool window: title and close only, sized to its screen when shown."""
    dialog.setWindowFlags(DIALOG_FLAGS)
    return fit_on_show(dialog)


class _ScrollArea(QScrollArea):
    """Asks for its whole page (Qt's default caps the hint at about 24 text lines), so a
    dialog opens as big as its content when the screen has room and scrolls when not."""

    def sizeHint(self) -> QSize:
        page = self.widget()
        if page is None:
            return super().sizeHint()
        bar = self.verticalScrollBar().sizeHint().width()
        # A tab widget's hint can be narrower than its own minimum: take the larger.
        return page.sizeHint().expandedTo(page.minimumSizeHint()) + QSize(bar, 0)


def scrolling(page: QWidget) -> QScrollArea:
    """``page`` inside a frameless scroll area, for content that may be taller than the screen."""
    area = _ScrollArea()
    area.setWidget(page)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    # Narrower than its content only on a tiny screen: scroll rather than clip.
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
    return area
