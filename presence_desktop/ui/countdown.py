"""Once-a-second refresh while a "Reconnecting in 8 s…" countdown is visible.

A single-shot timer re-arms itself only while the connection is waiting to
retry; in every other state nothing ticks.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer, Signal

from ..core.api import ConnectionEvents, ConnectionInfo
from .present import needs_countdown


class Countdown(QObject):
    tick = Signal()
    """The countdown text changed; views redraw their connection line."""

    def __init__(
        self,
        connection: ConnectionEvents,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._connection = connection
        self._monotonic = monotonic
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.timeout.connect(self._on_timeout)
        connection.changed.connect(self._on_changed)

    def _on_changed(self, info: ConnectionInfo) -> None:
        self.timer.stop()
        self._arm(info)

    def _on_timeout(self) -> None:
        self.tick.emit()
        self._arm(self._connection.current)

    def _arm(self, info: ConnectionInfo) -> None:
        if not needs_countdown(info) or info.retry_at is None:
            return
        remaining = info.retry_at - self._monotonic()
        if remaining <= 0:
            return
        # Wake when the displayed whole number of seconds changes.
        frac = remaining - math.floor(remaining)
        delay = frac if frac > 0.05 else 1.0 if remaining >= 1 else remaining
        self.timer.start(max(50, round(delay * 1000)))
