"""Desktop tests: Qt runs offscreen, and ui tests run on a qasync loop.

Only tests under ``tests/desktop/ui`` get the qasync loop (so a coroutine
test can await Qt signals while Qt paints); core and net tests keep asyncio's
default loop. Inside an async test, never use qtbot's blocking waits — they
start a nested Qt loop on top of the running qasync loop; await a future
connected to the signal instead (see ``tests/desktop/ui/helpers.py``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from tests.qt_loop import qasync_loop

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

_UI_DIR = Path(__file__).resolve().parent / "ui"


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    if _UI_DIR in Path(str(item.path)).resolve().parents:
        return {"qasync": qasync_loop}
    return {"asyncio": asyncio.new_event_loop}
