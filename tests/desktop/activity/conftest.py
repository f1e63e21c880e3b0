"""Async tests here run on the qasync loop, as the app does (QLocalServer needs
Qt's loop; see tests/support/qt.py); fake editors are closed after each test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from .editor_client import OPEN


@pytest.fixture(autouse=True)
async def _close_editors() -> AsyncIterator[None]:
    """Fake editors connected by a test are closed before its loop ends."""
    yield
    while OPEN:
        await OPEN.pop().close()
