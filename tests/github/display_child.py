"""Sign in with GitHub from the tray, inside a virtual desktop (run by test_tray_sign_in.py).

    python -m tests.github.display_child BROWSER_WRAPPER OUT_DIR

Everything real but the person: Xvfb and trayer (outside, from the test), the
app's tray icon and menu, the sign-in window, headless Chromium as the
browser, the fake GitHub and a presence_server. The person's clicks are real
X input from xdotool: right-click the tray icon, click "Sign in". Prints one
JSON line with what it saw.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import threading
import time
import webbrowser
from collections.abc import Callable
from pathlib import Path
from typing import Any

WAIT = 30.0


async def until(predicate: Callable[[], bool], what: str, wait: float = WAIT) -> None:
    deadline = time.monotonic() + wait
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.05)  # X geometry and window mapping have no signal to await


async def xdotool(*args: str) -> None:
    proc = await asyncio.create_subprocess_exec("xdotool", *args)
    if await proc.wait() != 0:
        raise RuntimeError(f"xdotool {' '.join(args)} failed")


async def click(x: int, y: int, button: int) -> None:
    await xdotool("mousemove", "--sync", str(x), str(y))
    await xdotool("click", str(button))


async def screenshot(path: Path) -> None:
    proc = await asyncio.create_subprocess_exec("import", "-window", "root", str(path))
    await proc.wait()


async def run(wrapper: str, out: Path) -> dict[str, Any]:
    import keyring
    from PySide6.QtWidgets import QSystemTrayIcon

    from presence_desktop.controller import Controller
    from presence_desktop.core.api import ConnectionEvents, Link
    from presence_desktop.core.settings import SettingsStore
    from presence_desktop.core.state import PresenceState
    from presence_desktop.platform.credentials import CredentialStore
    from presence_desktop.ui.app import DesktopUi
    from presence_desktop.ui.notifications import LogBackend
    from presence_server.config import ServerConfig
    from presence_server.edge.github import GitHubAuth, GitHubSettings
    from presence_server.edge.server import start_server
    from tests.conftest import MemoryKeyring
    from tests.fakes.github import FakeGitHub

    ring = MemoryKeyring()
    keyring.set_keyring(ring)
    root = Path(tempfile.mkdtemp(prefix="presence-tray-"))
    fake = FakeGitHub().start()
    fake.add_user(583231, "octocat", "The Octocat")
    auth = GitHubAuth(
        GitHubSettings(
            client_id=fake.client_id,
            client_secret=fake.client_secret,
            web_url=fake.web_url,
            api_url=fake.api_url,
        )
    )
    server = await start_server(
        ServerConfig(port=0, database_url=f"sqlite+aiosqlite:///{root / 'p.db'}", github=auth)
    )
    shot_taken = threading.Event()
    opened: list[str] = []

    def browser(url: str) -> bool:
        # The person looks at the window first (the test photographs it), then the browser.
        shot_taken.wait(WAIT)
        opened.append(url)
        return webbrowser.get(f"{wrapper} %s").open(url)

    state, connection = PresenceState(), ConnectionEvents()
    settings = SettingsStore(root / "config", root / "state")
    settings.update(server_url=server.url)
    controller = Controller(
        state=state,
        connection=connection,
        settings=settings,
        credentials=CredentialStore(server.url),
        device="tray-test",
        opener=browser,
    )
    ui = DesktopUi(
        controller, controller, cache_dir=root / "cache", settings=settings, backends=[LogBackend()]
    )
    result: dict[str, Any] = {}
    try:
        await until(QSystemTrayIcon.isSystemTrayAvailable, "system tray")
        ui.start()
        await controller.start()
        await until(lambda: connection.current.link is Link.SIGNED_OUT, "signed out at start")
        assert ui.tray is not None
        await until(lambda: ui.tray is not None and ui.tray.geometry() is not None, "tray icon")
        result["menu_before"] = ui.menu.sign.text()

        # Right-click the tray icon, then click "Sign in" in its menu: real X input.
        # trayer embeds the icon a moment after Qt reports a geometry; try again if
        # the first click lands before that.
        for attempt in range(5):
            await asyncio.sleep(0.5)
            icon = ui.tray.geometry()
            assert icon is not None
            await click(icon.center().x(), icon.center().y(), 3)
            try:
                await until(lambda: ui.menu.isVisible(), "tray menu", 3.0)
                break
            except TimeoutError:
                if attempt == 4:
                    raise
        item = ui.menu.actionGeometry(ui.menu.sign)
        target = ui.menu.mapToGlobal(item.center())
        await click(target.x(), target.y(), 1)

        windows = ui.sign_in_windows
        assert windows is not None
        await until(lambda: windows.window is not None and windows.window.isVisible(), "window")
        window = windows.window
        assert window is not None
        await until(lambda: window.windowHandle().isExposed(), "window exposed")
        await asyncio.sleep(0.3)  # let the window paint before the screenshot
        await screenshot(out / "sign-in-window.png")
        result["window_heading"] = window.heading.text()
        shot_taken.set()

        await until(lambda: connection.current.link is Link.ONLINE, "online")
        await until(lambda: not window.isVisible(), "window closed after sign-in")
        result.update(
            link=connection.current.link.value,
            me=state.me.login if state.me else None,
            menu_after=ui.menu.sign.text(),
            opened=len(opened),
            keychain_entries=len(ring.items),
        )
        await screenshot(out / "signed-in.png")
    finally:
        shot_taken.set()
        await controller.stop()
        await ui.aclose()
        await server.stop()
        await auth.aclose()
        fake.stop()
    return result


def main() -> int:
    import qasync
    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv[:1])
    app.setQuitOnLastWindowClosed(False)
    try:
        with asyncio.Runner(loop_factory=lambda: qasync.QEventLoop(app)) as runner:
            result = runner.run(run(sys.argv[1], Path(sys.argv[2])))
    except Exception as exc:
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
        return 1
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
