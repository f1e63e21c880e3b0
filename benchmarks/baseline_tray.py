"""The smallest useful PySide6-Essentials tray app: the yardstick for the binary's size.

scripts/build_binary.sh freezes this exactly like presence-desktop (same
spec, same exclusions) and with PyInstaller's defaults, then compares sizes
and start-up times. It shows an icon drawn in code with a one-item menu and
runs until quit, like the real app minus everything that makes it useful.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QApplication, QMenu, QSystemTrayIcon


def icon() -> QIcon:
    pixmap = QPixmap(64, 64)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setBrush(QColor("#8fc4ff"))
    painter.drawEllipse(4, 4, 56, 56)
    painter.end()
    return QIcon(pixmap)


def main() -> int:
    app = QApplication(sys.argv)
    app.setApplicationName("baseline-tray")
    app.setQuitOnLastWindowClosed(False)
    tray = QSystemTrayIcon(icon())
    tray.setToolTip("baseline tray")
    menu = QMenu()
    quit_action = QAction("Quit", menu)
    quit_action.triggered.connect(app.quit)
    menu.addAction(quit_action)
    tray.setContextMenu(menu)
    tray.show()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
