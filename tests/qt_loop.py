"""The one qasync loop factory for tests that run on Qt's event loop.

Per TESTBED.md, Qt tests return ``{"qasync": qasync_loop}`` from their
directory's ``pytest_asyncio_loop_factories`` hook. Every loop made here is
kept for the whole session: worker threads (asyncio subprocess watchers,
executors) deliver their last callbacks through queued Qt signals of the
loop's signaller object, and such an event reaching a signaller that Python
already collected crashed the process in pytest-qt's ``processEvents``
after a long, non-Qt test. Keeping a few hundred closed loops costs little.
"""

from __future__ import annotations

import asyncio
import os

_LOOPS: list[asyncio.AbstractEventLoop] = []


def qasync_loop() -> asyncio.AbstractEventLoop:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import qasync
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    loop: asyncio.AbstractEventLoop = qasync.QEventLoop(app)
    _LOOPS.append(loop)
    return loop
