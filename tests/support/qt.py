"""Which tests run on Qt's event loop (qasync), and the one loop factory.

Tests under ``QASYNC_DIRS`` and modules marked ``pytest.mark.qasync`` run on
a qasync loop, as the app does (a coroutine test can then await Qt signals
while Qt paints, and QLocalServer works); every other async test keeps
asyncio's default loop. Inside such a test never use qtbot's blocking waits
(TESTBED.md): await a future connected to the signal instead.

Every loop made here is kept for the whole session: worker threads (asyncio
subprocess watchers, executors) deliver their last callbacks through queued
Qt signals of the loop's signaller object, and such an event reaching a
signaller that Python already collected crashed the process in pytest-qt's
``processEvents`` after a long, non-Qt test. Keeping a few hundred closed
loops costs little.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent.parent
QASYNC_DIRS = (TESTS / "desktop" / "ui", TESTS / "desktop" / "activity")
_LOOPS: list[asyncio.AbstractEventLoop] = []

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def qasync_loop() -> asyncio.AbstractEventLoop:
    import qasync
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    loop: asyncio.AbstractEventLoop = qasync.QEventLoop(app)
    _LOOPS.append(loop)
    return loop


def runs_on_qt(item: pytest.Item) -> bool:
    path = Path(str(item.path)).resolve()
    return item.get_closest_marker("qasync") is not None or any(
        folder in path.parents for folder in QASYNC_DIRS
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "qasync: run this module's async tests on Qt's loop")


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    if runs_on_qt(item):
        return {"qasync": qasync_loop}
    return {"asyncio": asyncio.new_event_loop}
