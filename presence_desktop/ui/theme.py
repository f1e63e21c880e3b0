"""The app's look: the OS light or dark scheme, one accent, a visible focus ring.

Qt's default on a bare X11 desktop is the Fusion style with a light palette
whatever the desktop uses, so the app looked like stock Qt and ignored dark
mode. ``apply`` picks the scheme the OS reports (Qt's colour-scheme hint,
which the GNOME/KDE/Windows/macOS integrations fill in; else ``GTK_THEME``
ending in ``:dark`` as GTK apps do), builds a palette for it, and adds the
few style rules every window shares: a focus ring on buttons and fields that
keyboard users can see, and consistent spacing. It follows the OS when the
scheme changes while running.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication


class Scheme(enum.Enum):
    LIGHT = "light"
    DARK = "dark"


ACCENT = "#388bfd"
"""The one accent (links, selection, focus), the blue of the app icon."""

_COLOURS: dict[Scheme, dict[QPalette.ColorRole, str]] = {
    Scheme.LIGHT: {
        QPalette.ColorRole.Window: "#f6f8fa",
        QPalette.ColorRole.WindowText: "#1f2328",
        QPalette.ColorRole.Base: "#ffffff",
        QPalette.ColorRole.AlternateBase: "#f0f3f6",
        QPalette.ColorRole.Text: "#1f2328",
        QPalette.ColorRole.Button: "#eef1f4",
        QPalette.ColorRole.ButtonText: "#1f2328",
        QPalette.ColorRole.ToolTipBase: "#1f2328",
        QPalette.ColorRole.ToolTipText: "#f6f8fa",
        QPalette.ColorRole.PlaceholderText: "#656d76",
        QPalette.ColorRole.Highlight: "#2f6fd6",
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Link: "#0969da",
        QPalette.ColorRole.Mid: "#d0d7de",
        QPalette.ColorRole.Midlight: "#e6eaef",
        QPalette.ColorRole.Dark: "#afb8c1",
        QPalette.ColorRole.Light: "#ffffff",
        QPalette.ColorRole.Shadow: "#8c959f",
    },
    Scheme.DARK: {
        QPalette.ColorRole.Window: "#161b22",
        QPalette.ColorRole.WindowText: "#e6edf3",
        QPalette.ColorRole.Base: "#0d1117",
        QPalette.ColorRole.AlternateBase: "#161b22",
        QPalette.ColorRole.Text: "#e6edf3",
        QPalette.ColorRole.Button: "#21262d",
        QPalette.ColorRole.ButtonText: "#e6edf3",
        QPalette.ColorRole.ToolTipBase: "#e6edf3",
        QPalette.ColorRole.ToolTipText: "#161b22",
        QPalette.ColorRole.PlaceholderText: "#8d96a0",
        QPalette.ColorRole.Highlight: "#1f6feb",
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Link: "#58a6ff",
        QPalette.ColorRole.Mid: "#30363d",
        QPalette.ColorRole.Midlight: "#262c34",
        QPalette.ColorRole.Dark: "#0b0f14",
        QPalette.ColorRole.Light: "#30363d",
        QPalette.ColorRole.Shadow: "#010409",
    },
}

STYLE_SHEET = f"""
QToolButton:focus, QPushButton:focus, QCheckBox:focus, QComboBox:focus, QSpinBox:focus {{
    outline: none;
    border: 2px solid {ACCENT};
    border-radius: 4px;
}}
QLineEdit, QPlainTextEdit {{
    border: 1px solid palette(mid);
    border-radius: 4px;
    padding: 3px 6px;
    background: palette(base);
}}
QLineEdit:focus, QPlainTextEdit:focus {{
    border: 2px solid {ACCENT};
    padding: 2px 5px;
}}
QListView#FriendsList:focus {{ outline: none; }}
"""
"""Shared rules: the focus ring (Fusion's is a 1 px dotted line many people cannot see)."""


def os_scheme(environ: Mapping[str, str] | None = None) -> Scheme:
    """Light or dark, as the OS says; light when it says nothing."""
    app = QGuiApplication.instance()
    if isinstance(app, QGuiApplication):
        hint = app.styleHints().colorScheme()
        if hint == Qt.ColorScheme.Dark:
            return Scheme.DARK
        if hint == Qt.ColorScheme.Light:
            return Scheme.LIGHT
    env = os.environ if environ is None else environ
    gtk = env.get("GTK_THEME", "").lower()
    if gtk.endswith((":dark", "-dark")):
        return Scheme.DARK
    return Scheme.LIGHT


def palette(scheme: Scheme) -> QPalette:
    pal = QPalette()
    for role, colour in _COLOURS[scheme].items():
        pal.setColor(role, QColor(colour))
    disabled = QColor(_COLOURS[scheme][QPalette.ColorRole.PlaceholderText])
    for role in (
        QPalette.ColorRole.WindowText,
        QPalette.ColorRole.Text,
        QPalette.ColorRole.ButtonText,
    ):
        pal.setColor(QPalette.ColorGroup.Disabled, role, disabled)
    return pal


class Theme(QObject):
    """Applies the scheme now and again whenever the OS switches it."""

    def __init__(self, app: QApplication, environ: Mapping[str, str] | None = None) -> None:
        super().__init__(app)
        self._app = app
        self._environ = environ
        self.scheme = os_scheme(environ)
        app.setStyle("Fusion")  # the same widgets everywhere; the palette does the rest
        app.setStyleSheet(STYLE_SHEET)
        self._apply()
        app.styleHints().colorSchemeChanged.connect(self._on_scheme_changed)

    def _on_scheme_changed(self, _scheme: Qt.ColorScheme) -> None:
        scheme = os_scheme(self._environ)
        if scheme is not self.scheme:
            self.scheme = scheme
            self._apply()

    def _apply(self) -> None:
        self._app.setPalette(palette(self.scheme))


def apply(app: QApplication, environ: Mapping[str, str] | None = None) -> Theme:
    return Theme(app, environ)
