"""Helper process: show one top-level Qt window per title given, until stdin closes."""

from __future__ import annotations

import sys

from PySide6.QtCore import QSocketNotifier
from PySide6.QtWidgets import QApplication, QWidget


def main() -> None:
    app = QApplication(sys.argv[:1])
    windows = []
    for title in sys.argv[1:]:
        window = QWidget()
        window.setWindowTitle(title)
        window.resize(200, 100)
        window.show()
        windows.append(window)
    app.processEvents()
    print("ready", flush=True)
    notifier = QSocketNotifier(sys.stdin.fileno(), QSocketNotifier.Type.Read)
    notifier.activated.connect(app.quit)
    app.exec()


if __name__ == "__main__":
    main()
