"""Async tests here run on the qasync loop, as the app does (QLocalServer needs Qt's loop)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import pytest

from tests.qt_loop import qasync_loop

from .editor_client import OPEN

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], Any]]:
    return {"qasync": qasync_loop}


@pytest.fixture(autouse=True)
async def _close_editors() -> AsyncIterator[None]:
    """Fake editors connected by a test are closed before its loop ends."""
    yield
    while OPEN:
        await OPEN.pop().close()
