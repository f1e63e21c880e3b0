"""Screen lock state, one interface for every platform.

Where the session announces locking (freedesktop/GNOME screensaver signals,
logind's ``LockedHint``), ``screenlock_dbus`` listens and nothing polls.
Windows and macOS get a small check function each, asked every few seconds
by ``PollingLockMonitor``; subscribing to their session notifications needs
a native window or run loop the app does not otherwise have.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from ..core.activity import Scheduler, TimerHandle
from ..core.events import Signal
from ..core.idle import LockMonitor

log = logging.getLogger(__name__)

POLL_SECONDS = 5.0


class PollingLockMonitor:
    """Asks ``check`` every ``interval`` seconds and announces changes."""

    def __init__(
        self,
        check: Callable[[], bool | None],
        scheduler: Scheduler,
        interval: float = POLL_SECONDS,
    ) -> None:
        self._check = check
        self._scheduler = scheduler
        self._interval = interval
        self._timer: TimerHandle | None = None
        self.locked: bool | None = None
        self.changed = Signal[bool]()

    def start(self) -> bool:
        self._tick()
        return self.locked is not None

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _tick(self) -> None:
        try:
            locked = self._check()
        except Exception:
            log.exception("screen lock check failed")
            locked = None
        if locked is not None and locked != self.locked:
            self.locked = locked
            self.changed.emit(locked)
        self._timer = self._scheduler.call_later(self._interval, self._tick)


def system_lock_monitor(scheduler: Scheduler) -> LockMonitor | None:
    """The lock monitor for this platform, not yet started."""
    if sys.platform == "win32":
        from .screenlock_windows import windows_locked

        return PollingLockMonitor(windows_locked, scheduler)
    if sys.platform == "darwin":
        from .screenlock_macos import macos_locked_check

        check = macos_locked_check()
        return PollingLockMonitor(check, scheduler) if check is not None else None
    from .screenlock_dbus import DBusLockMonitor

    return DBusLockMonitor()
