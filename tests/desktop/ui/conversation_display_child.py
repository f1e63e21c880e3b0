"""Runs inside the virtual desktop for the conversation display test (issue 17):
a real X server with a tray host, dunst on a private session bus, a real
presence server, two whole apps of alice (laptop and desktop, each with its
tray icon) and bob (no ui).

    dbus-run-session -- python -m tests.desktop.ui.conversation_display_child

Prints one JSON line with what it saw; exits non-zero when something failed.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .display_child import run_job
from .display_child import until as _until

WAIT = 30.0
"""Hang guard for each step: messages cross two apps, a server and dunst."""


async def until(predicate: Callable[[], object], what: str) -> None:
    await _until(predicate, what, within=WAIT)


async def scenario() -> dict[str, Any]:
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QSystemTrayIcon

    from presence_desktop.ui.app import DesktopUi
    from tests.desktop.ui.realapps import start_server, stop_all
    from tests.integration.apps import App, befriend

    root = Path(tempfile.mkdtemp(prefix="conv-display-"))
    dunst = await asyncio.create_subprocess_exec("dunst")
    monitor = await asyncio.create_subprocess_exec(
        "dbus-monitor",
        "--session",
        "type='method_call',interface='org.freedesktop.Notifications',member='Notify'",
        stdout=subprocess.PIPE,
    )
    notify_text: list[str] = []

    async def read_monitor() -> None:
        assert monitor.stdout is not None
        while line := await monitor.stdout.readline():
            notify_text.append(line.decode(errors="replace"))

    reader = asyncio.get_running_loop().create_task(read_monitor())
    await until(QSystemTrayIcon.isSystemTrayAvailable, "system tray")
    await asyncio.sleep(0.3)  # dbus-monitor's match rule before the first Notify

    server = await start_server(root / "server")
    laptop = App(root / "laptop", server.url, "alice")
    desktop = App(root / "desktop", server.url, "alice")
    bob = App(root / "bob", server.url, "bob")
    uis = {
        name: DesktopUi(
            app.controller,
            app.controller,
            cache_dir=root / name / "cache",
            settings=app.settings,
            chat=app.controller,
        )
        for name, app in (("laptop", laptop), ("desktop", desktop))
    }
    result: dict[str, Any] = {}
    try:
        for ui in uis.values():
            ui.start()
        for app in (laptop, desktop, bob):
            await app.start()
        await befriend(laptop, bob)
        await until(lambda: bob.me in desktop.state.friends, "bob on the desktop")
        for name, ui in uis.items():
            await until(lambda ui=ui: ui.tray.geometry() is not None, f"{name} icon docked")

        bob.controller.send_message(laptop.me, "lunch?")
        for name, ui in uis.items():
            await until(lambda ui=ui: ui.tray.unread_label == "1", f"{name} unread badge")
        result["badges_after_message"] = {n: ui.tray.unread_label for n, ui in uis.items()}
        await until(lambda: "Message from bob" in "".join(notify_text), "Notify for bob's message")
        text = "".join(notify_text)
        result["notify_has_reply"] = '"Reply"' in text
        result["notify_icon_is_avatar"] = "notify-avatars/initials-bob.png" in text

        # The person clicks the notification on the laptop: the conversation opens.
        laptop_ui = uis["laptop"]
        laptop_ui.open_conversation(bob.me)
        await until(lambda: laptop_ui.tray.unread_label == "", "laptop badge cleared")
        await until(lambda: uis["desktop"].tray.unread_label == "", "desktop badge cleared")
        result["badges_after_reading"] = {n: ui.tray.unread_label for n, ui in uis.items()}

        composer = laptop_ui.panel.conversation.composer
        await until(composer.isVisible, "the conversation on screen")
        QTest.keyClicks(composer, "on my way")
        QTest.keyClick(composer, Qt.Key.Key_Return)
        book = desktop.controller.conversations
        await until(
            lambda: any(e.outgoing and e.text == "on my way" for e in book.messages(bob.me)),
            "the carbon on the desktop",
        )
        await until(
            lambda: any(
                e.text == "on my way" for e in bob.controller.conversations.messages(laptop.me)
            ),
            "the reply at bob's",
        )
        result["desktop_thread"] = [
            [e.outgoing, e.text] for e in desktop.controller.conversations.messages(bob.me)
        ]
    finally:
        for ui in uis.values():
            await ui.aclose()
        await stop_all([server], [laptop, desktop, bob])
        reader.cancel()
        for proc in (monitor, dunst):
            proc.terminate()
            await asyncio.wait_for(proc.wait(), 10)
    return result


def main() -> int:
    return run_job(scenario)


if __name__ == "__main__":
    sys.exit(main())
