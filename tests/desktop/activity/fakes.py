"""A virtual clock that runs scheduled callbacks, so timer rules are tested exactly."""

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
    """``call_later`` plus ``advance``: time moves only when a test says so."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self._queue: list[tuple[float, int, FakeTimer, Callable[[], object]]] = []
        self._order = itertools.count()

    def __call__(self) -> float:
        return self.now

    def call_later(self, delay: float, callback: Callable[[], object]) -> FakeTimer:
        timer = FakeTimer(self.now + delay)
        heapq.heappush(self._queue, (timer.when, next(self._order), timer, callback))
        return timer

    def pending(self) -> int:
        return sum(1 for _, _, t, _ in self._queue if not t.cancelled)

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        while self._queue and self._queue[0][0] <= end:
            when, _, timer, callback = heapq.heappop(self._queue)
            if timer.cancelled:
                continue
            self.now = when
            callback()
        self.now = end
