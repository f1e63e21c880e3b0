"""A virtual clock with ``call_later``: time moves only when the test says so.

Timer rules (idle, notification batching, status expiry) are then tested
exactly, and "one timer, no polling" can be asserted from ``pending()``.
It stands in for ``time.time`` (call it), ``time.monotonic`` (its
``monotonic`` method, e.g. monkeypatched over a module's ``time``) and a
loop's ``call_later``. The suite's only fake clock.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable


class FakeTimer:
    def __init__(self, when: float) -> None:
        self.when = when
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """Reads as ``clock()``, ``clock.monotonic()`` or ``clock.now``; runs due
    callbacks on ``advance``. With ``step``, every read moves time on by that
    much first (for code that needs strictly increasing stamps)."""

    def __init__(self, start: float = 1_700_000_000.0, *, step: float = 0.0) -> None:
        self.now = start
        self.step = step
        self._queue: list[tuple[float, int, FakeTimer, Callable[[], object]]] = []
        self._order = itertools.count()

    def __call__(self) -> float:
        self.now += self.step
        return self.now

    def monotonic(self) -> float:
        return self()

    def call_later(self, delay: float, callback: Callable[[], object]) -> FakeTimer:
        timer = FakeTimer(self.now + delay)
        heapq.heappush(self._queue, (timer.when, next(self._order), timer, callback))
        return timer

    def pending(self) -> list[float]:
        """When each timer still armed is due, earliest first."""
        return sorted(t.when for _, _, t, _ in self._queue if not t.cancelled)

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        while self._queue and self._queue[0][0] <= end:
            when, _, timer, callback = heapq.heappop(self._queue)
            if timer.cancelled:
                continue
            self.now = when
            callback()
        self.now = end

    def jump(self, seconds: float) -> None:
        """Wall time moves but no timer runs (the machine was asleep)."""
        self.now += seconds
        self._queue = [(w + seconds, o, t, c) for w, o, t, c in self._queue]
        heapq.heapify(self._queue)
