"""Timed statuses: "for 1 hour", "until tomorrow", "until I change it".

A timed status is stored as an absolute ``until`` (Unix seconds), so it means
the same after a restart and friends see when it ends. When ``until``
passes, my status goes back to Online. ``ExpiryTimer`` arms exactly one
timer for that moment instead of checking every few seconds.

"Until tomorrow" means the next 09:00 local time — the start of a working
day — except between midnight and 05:00, when "tomorrow" in the sense people
mean it is the coming morning, 09:00 the same calendar day. (Setting Do not
disturb at 01:00 "until tomorrow" should not last 32 hours.)
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
from collections.abc import Callable
from typing import Protocol

from presence_protocol import Status

log = logging.getLogger(__name__)

MORNING = dt.time(9, 0)
"""When "until tomorrow" ends, local time."""

NIGHT_ENDS = dt.time(5, 0)
"""Before this local time, "tomorrow" means this morning."""


class StatusDuration(enum.Enum):
    ONE_HOUR = "one_hour"
    UNTIL_TOMORROW = "until_tomorrow"
    UNTIL_CHANGED = "until_changed"

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    StatusDuration.ONE_HOUR: "For 1 hour",
    StatusDuration.UNTIL_TOMORROW: "Until tomorrow",
    StatusDuration.UNTIL_CHANGED: "Until I change it",
}


def until_for(duration: StatusDuration, now: float, tz: dt.tzinfo | None = None) -> int | None:
    """The ``until`` timestamp for a duration chosen at ``now``.

    ``tz`` is the local time zone (``None``: the system's, with its daylight
    saving rules applied to the target day, not to today).
    """
    if duration is StatusDuration.UNTIL_CHANGED:
        return None
    if duration is StatusDuration.ONE_HOUR:
        return int(now) + 3600
    local = dt.datetime.fromtimestamp(now, tz)
    day = local.date()
    if local.time() >= NIGHT_ENDS:
        day += dt.timedelta(days=1)
    # A naive datetime's timestamp() uses the system zone rules for that date.
    target = dt.datetime.combine(day, MORNING, tzinfo=tz)
    return int(target.timestamp())


def effective_status(status: Status, until: int | None, now: float) -> Status:
    """What my status is at ``now``: a timed status that ended is Online again."""
    if until is not None and until <= now:
        return Status.ONLINE
    return status


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Scheduler(Protocol):
    """The part of an event loop a timer needs; ``asyncio`` loops fit."""

    def call_later(self, delay: float, callback: Callable[[], object]) -> TimerHandle: ...


class ExpiryTimer:
    """Calls ``on_expire`` once when the current ``until`` passes.

    ``call_later`` runs on the loop's monotonic clock, which stops while the
    machine sleeps; after a resume the owner calls ``check`` (e.g. on
    reconnect) so a status that ended during sleep ends right away.
    """

    def __init__(
        self,
        scheduler: Scheduler,
        on_expire: Callable[[], object],
        clock: Callable[[], float],
    ) -> None:
        self._scheduler = scheduler
        self._on_expire = on_expire
        self._clock = clock
        self._handle: TimerHandle | None = None
        self.until: int | None = None

    def arm(self, until: int | None) -> None:
        """Replace any previous timer; ``None`` means nothing expires."""
        self.cancel()
        self.until = until
        if until is not None:
            delay = max(0.0, until - self._clock())
            self._handle = self._scheduler.call_later(delay, self._fire)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self.until = None

    def check(self) -> None:
        """Fire now if ``until`` already passed (the timer may be late after sleep)."""
        if self.until is not None and self.until <= self._clock():
            if self._handle is not None:
                self._handle.cancel()
            self._fire()

    def _fire(self) -> None:
        if self.until is None:
            return
        self._handle = None
        self.until = None
        self._on_expire()
