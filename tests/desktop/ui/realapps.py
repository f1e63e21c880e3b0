"""Real servers and real controllers for ui tests that run on the qasync loop.

Everything is stopped inside the test body (``stop_all``): pytest-qt
processes Qt events before fixture teardown, and with qasync that would run
a server's last clean-up steps outside the asyncio loop.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from presence_desktop.core.api import Link
from presence_desktop.core.settings import SettingsStore
from tests.desktop.net.helpers import until
from tests.integration.apps import App
from tests.support.servers import ServerHandle


async def start_server(directory: Path) -> ServerHandle:
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    handle = ServerHandle(directory)
    await handle.start()
    return handle


async def wait_link(app: App, link: Link) -> None:
    await until(lambda: app.connection.current.link is link, app.connection.changed)


async def stop_all(servers: list[ServerHandle], apps: list[App]) -> None:
    for app in apps:
        await app.controller.stop()
    for server in servers:
        await server.stop()


def settings_at(root: Path, url: str) -> SettingsStore:
    store = SettingsStore(root / "config", root / "state")
    store.update(server_url=url)
    return store
