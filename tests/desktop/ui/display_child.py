"""Runs inside the virtual desktop for the display tests (a separate process,
because the test process's QApplication is already offscreen).

    python -m tests.desktop.ui.display_child tray     # tray icon + popup geometry
    python -m tests.desktop.ui.display_child notify   # under dbus-run-session: Notify call

Prints one JSON line with what it saw; exits non-zero when something failed.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

WAIT = 15.0


async def until(predicate: Callable[[], object], what: str, within: float = WAIT) -> None:
    """Poll ``predicate`` until it holds; ``within`` is a hang guard."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.05)  # geometry and bus names have no change signal here


def make_ui(**kw: Any) -> Any:
    from presence_desktop.ui.app import DesktopUi

    from .fakes import FakeCore, friend, snapshot

    core = FakeCore()
    core.state.apply_snapshot(snapshot(friend(2, "alice", language="Rust"), friend(3, "bob")))
    core.go_online()
    ui = DesktopUi(core, core.actions, cache_dir=Path(tempfile.mkdtemp()), **kw)
    return core, ui


def rect(r: Any) -> list[int]:
    return [r.x(), r.y(), r.width(), r.height()]


async def tray() -> dict[str, Any]:
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QSystemTrayIcon

    from presence_desktop.ui.notifications import LogBackend

    started = time.perf_counter()
    await until(QSystemTrayIcon.isSystemTrayAvailable, "system tray")
    _core, ui = make_ui(backends=[LogBackend()])
    ui.start()
    await until(lambda: ui.tray.geometry() is not None, "tray icon geometry")
    visible_ms = (time.perf_counter() - started) * 1000
    geometry = ui.tray.geometry()
    ui.toggle_popup()
    await until(lambda: ui.popup.isVisible() and ui.popup.windowHandle().isExposed(), "popup")
    popup_rect = rect(ui.popup.frameGeometry())
    # A menu opened from the popup does not count as losing focus.
    from PySide6.QtCore import QPoint
    from PySide6.QtWidgets import QWidget

    await until(ui.popup.isActiveWindow, "popup active")
    menu = ui.panel.open_friend_menu(2, ui.popup.mapToGlobal(QPoint(40, 120)))
    await until(lambda: menu is not None and menu.isVisible(), "row menu")
    await asyncio.sleep(0.3)
    stays_with_menu = ui.popup.isVisible()
    menu.close()
    # Another window taking the focus closes it.
    other = QWidget()
    other.setWindowTitle("other")
    other.resize(200, 100)
    other.show()
    other.activateWindow()
    try:
        await until(lambda: not ui.popup.isVisible(), "popup closing on focus loss")
        closes_on_focus_loss = True
    except TimeoutError:
        closes_on_focus_loss = False
    other.close()
    # Esc closes it too. (A tray click right after an auto-close would mean
    # "close", so open it directly.)
    ui.open_friends()
    await until(ui.popup.isVisible, "popup again")
    ui.popup.activateWindow()
    await until(ui.popup.isActiveWindow, "popup active again")
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    QTest.keyClick(ui.popup, Qt.Key.Key_Escape)
    closes_on_escape = not ui.popup.isVisible()
    result = {
        "stays_with_menu": stays_with_menu,
        "closes_on_focus_loss": closes_on_focus_loss,
        "closes_on_escape": closes_on_escape,
        "tray_available": True,
        "tray": rect(geometry),
        "popup": popup_rect,
        "screen": rect(QGuiApplication.primaryScreen().availableGeometry()),
        "icon_visible_ms": round(visible_ms),
    }
    ui.popup.hide()
    await ui.aclose()
    return result


async def notify() -> dict[str, Any]:
    from PySide6.QtCore import QProcess
    from PySide6.QtDBus import QDBusConnection

    from presence_desktop.core.api import Alert, AlertKind

    bus = QDBusConnection.sessionBus()
    assert bus.isConnected(), "no session bus (run under dbus-run-session)"
    daemon = QProcess()
    daemon.start("dunst", [])
    name = "org.freedesktop.Notifications"
    await until(lambda: bus.interface().isServiceRegistered(name).value(), "dunst on the bus")

    monitor = QProcess()
    seen: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    output: list[str] = []
    title = "alice is online"

    def read() -> None:
        output.append(bytes(monitor.readAllStandardOutput().data()).decode(errors="replace"))
        text = "".join(output)
        if "member=Notify" in text and title in text and not seen.done():
            seen.set_result(text)

    monitor.readyReadStandardOutput.connect(read)
    monitor.start(
        "dbus-monitor",
        ["--session", f"type='method_call',interface='{name}',member='Notify'"],
    )
    if not monitor.waitForStarted(5000):
        raise RuntimeError("dbus-monitor did not start")
    await asyncio.sleep(0.3)  # let dbus-monitor register its match rule first

    _core, ui = make_ui()  # the default chain: desktop-notifier first
    ui.start()
    alert = Alert(AlertKind.FRIEND_ONLINE, title, "Coding · Rust", (2,))
    backend = await ui.notifier.deliver(alert)
    text = await asyncio.wait_for(seen, WAIT)
    await ui.aclose()
    monitor.kill()
    monitor.waitForFinished(3000)
    daemon.kill()
    daemon.waitForFinished(3000)
    return {"backend": backend, "notify_seen": True, "body_seen": "Coding · Rust" in text}


async def showcase() -> dict[str, Any]:
    """A populated app with a notification, until SIGTERM (to try scripts/screenshots.py)."""
    import signal

    from presence_desktop.core.api import Alert, AlertKind

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await until(
        lambda: __import__("PySide6.QtWidgets").QtWidgets.QSystemTrayIcon.isSystemTrayAvailable(),
        "tray",
    )
    core, ui = make_ui()
    ui.start()
    await ui.open_friends_when_placed()
    core.alerts.emit(Alert(AlertKind.FRIEND_ONLINE, "alice is online", "Coding · Rust", (2,)))
    await stop.wait()
    await ui.aclose()
    return {}


def run_job(job: Callable[[], Coroutine[Any, Any, dict[str, Any]]]) -> int:
    """Run one display job on a qasync loop, as the app does; print its result
    (or the error) as one JSON line. Every display child's ``main``."""
    import qasync
    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv[:1])
    app.setQuitOnLastWindowClosed(False)
    try:
        with asyncio.Runner(loop_factory=lambda: qasync.QEventLoop(app)) as runner:
            result = runner.run(job())
    except Exception as exc:
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
        return 1
    print(json.dumps(result), flush=True)
    return 0


def main() -> int:
    return run_job({"tray": tray, "notify": notify, "showcase": showcase}[sys.argv[1]])


if __name__ == "__main__":
    sys.exit(main())
