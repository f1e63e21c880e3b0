from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.servers import ServerHandle

from .apps import App


@pytest.fixture
def server(server_handle: ServerHandle) -> ServerHandle:
    """The test's restartable server (``tests/support/servers.py``)."""
    return server_handle


@pytest.fixture
async def make_app(server: ServerHandle, tmp_path: Path) -> AsyncIterator[Callable[..., App]]:
    apps: list[App] = []

    def make(login: str | None, *, home: str | None = None, **kwargs: Any) -> App:
        app = App(tmp_path / (home or login or "anonymous"), server.url, login, **kwargs)
        apps.append(app)
        return app

    yield make
    for app in apps:
        await app.controller.stop()
