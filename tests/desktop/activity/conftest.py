"""Async tests here run on the qasync loop, as the app does (QLocalServer needs Qt's loop)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import pytest

from .editor_client import OPEN

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def _qasync_loop() -> asyncio.AbstractEventLoop:
    import qasync
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    loop: asyncio.AbstractEventLoop = qasync.QEventLoop(app)
    return loop


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], Any]]:
    return {"qasync": _qasync_loop}


@pytest.fixture(autouse=True)
async def _close_editors() -> AsyncIterator[None]:
    """Fake editors connected by a test are closed before its loop ends."""
    yield
    while OPEN:
        await OPEN.pop().close()
