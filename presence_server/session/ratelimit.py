"""Rate limits as small clock-driven objects, independent of sockets.

Both live once per connection, so they keep their state in slots and plain
lists (a deque costs ~600 bytes even when empty; these windows hold a few
dozen floats at most, and trimming the front of such a list is cheap).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable

Clock = Callable[[], float]


def _prune(times: list[float], window: float, now: float) -> None:
    if times and times[0] <= now - window:
        del times[: bisect.bisect_right(times, now - window)]


def allow(times: list[float], limit: int, window: float, now: float) -> float | None:
    """The sliding-window rule on a caller's own list of event times (ascending):
    record an event at ``now`` and return None, or return the seconds until one
    is allowed. A session keeps only the list (its limit and window are the
    server's), which saves a ``SlidingWindow`` object on every connection."""
    _prune(times, window, now)
    if len(times) < limit:
        times.append(now)
        return None
    return max(times[0] + window - now, 0.001)


class SlidingWindow:
    """At most ``limit`` events in any rolling ``window`` seconds."""

    __slots__ = ("_clock", "_times", "limit", "window")

    def __init__(self, limit: int, window: float, clock: Clock) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._times: list[float] = []

    def allow(self) -> float | None:
        """Record an event and return None, or return seconds until one is allowed."""
        return allow(self._times, self.limit, self.window, self._clock())

    def idle(self) -> bool:
        """No event is remembered any more (the object can be dropped)."""
        _prune(self._times, self.window, self._clock())
        return not self._times


class PresenceGate:
    """The presence window: ``per_window`` updates apply at once, later ones wait.

    ``offer`` returns None when an update may apply now, or the seconds until
    the window ends; the caller keeps only the latest waiting update and
    applies it through ``flush`` when that time comes, which opens a new
    window counting that update. The latest update is therefore never lost,
    only delayed by at most one window.
    """

    __slots__ = ("_clock", "_count", "_start", "per_window", "window")

    def __init__(self, per_window: int, window: float, clock: Clock) -> None:
        self.per_window = per_window
        self.window = window
        self._clock = clock
        self._start: float | None = None
        self._count = 0

    def offer(self) -> float | None:
        now = self._clock()
        if self._start is None or now - self._start >= self.window:
            self._start = now
            self._count = 0
        if self._count < self.per_window:
            self._count += 1
            return None
        return max(self._start + self.window - now, 0.0)

    def flush(self) -> None:
        self._start = self._clock()
        self._count = 1
