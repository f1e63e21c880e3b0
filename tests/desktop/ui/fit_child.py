"""Runs inside a virtual desktop for the fit display test (its own process, so
``QT_SCALE_FACTOR`` applies): popup and Settings on a real X screen.

    QT_SCALE_FACTOR=2 python -m tests.desktop.ui.fit_child

Prints one JSON line with the geometries it saw (logical pixels).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

from .display_child import rect, run_job, until


async def fit() -> dict[str, Any]:
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QSystemTrayIcon

    from presence_desktop.core.api import UserError
    from presence_desktop.core.settings import SettingsStore
    from presence_desktop.ui.app import DesktopUi
    from presence_desktop.ui.notifications import LogBackend

    from .fakes import FakeCore, friend, snapshot

    await until(QSystemTrayIcon.isSystemTrayAvailable, "system tray")
    core = FakeCore()
    core.state.apply_snapshot(
        snapshot(*(friend(10 + i, f"friend{i:02}", language="Rust") for i in range(30)))
    )
    core.go_online()
    scratch = Path(tempfile.mkdtemp())
    settings = SettingsStore(scratch / "config", scratch / "state")
    ui = DesktopUi(
        core, core.actions, cache_dir=scratch / "cache", settings=settings,
        backends=[LogBackend()],
    )  # fmt: skip
    ui.start()
    await until(lambda: ui.tray.geometry() is not None, "tray icon geometry")
    ui.toggle_popup()
    await until(lambda: ui.popup.isVisible() and ui.popup.windowHandle().isExposed(), "popup")
    await asyncio.sleep(0.3)  # the deferred re-fit after the first layout
    popup = rect(ui.popup.frameGeometry())
    scrolls = ui.panel.view.verticalScrollBar().maximum() > 0
    core.actions.errors.emit(
        UserError("GitHub sign-in is not available", "This server has no GitHub app. " * 8)
    )
    await asyncio.sleep(0.3)
    with_error = rect(ui.popup.frameGeometry())
    banner_lines = ui.panel.banner.label.height() // ui.panel.banner.label.fontMetrics().height()
    ui.open_settings()
    dialog = ui._settings_dialog
    assert dialog is not None
    await until(lambda: dialog.isVisible() and dialog.windowHandle().isExposed(), "settings")
    await asyncio.sleep(0.3)
    save = dialog.buttons.buttons()[0]
    top_left = save.mapToGlobal(save.rect().topLeft())
    bottom_right = save.mapToGlobal(save.rect().bottomRight())
    screen = QGuiApplication.primaryScreen()
    result = {
        "ratio": screen.devicePixelRatio(),
        "screen": rect(screen.availableGeometry()),
        "popup": popup,
        "popup_scrolls": scrolls,
        "popup_with_error": with_error,
        "banner_lines": banner_lines,
        "settings": rect(dialog.frameGeometry()),
        "save": [top_left.x(), top_left.y(), bottom_right.x(), bottom_right.y()],
    }
    dialog.close()
    ui.popup.hide()
    await ui.aclose()
    return result


def main() -> int:
    return run_job(fit)


if __name__ == "__main__":
    sys.exit(main())
