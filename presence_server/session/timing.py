"""The clock a session reads and arms timers on, injected so tests own time.

A session never reads the wall clock or sleeps: rate windows read
``monotonic()``, and the auth deadline, presence pacing and status expiry are
timers armed with ``call_later``. The server passes ``LoopClock`` (the running
event loop's clock); tests pass ``tests/support/clock.py``'s ``FakeClock``,
which has the same two methods and fires timers only when the test advances
it. Unix time (what is stored and sent) comes from ``ServerConfig.clock_ns``
through the hub, which tests point at the same fake clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol


class Timer(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never jumps (rate windows)."""
        ...

    def call_later(self, delay: float, callback: Callable[[], object]) -> Timer:
        """Run ``callback`` once, ``delay`` seconds from now, unless cancelled."""
        ...


class LoopClock:
    """The running event loop's clock: one stateless instance serves every session."""

    __slots__ = ()

    def monotonic(self) -> float:
        return asyncio.get_running_loop().time()

    def call_later(self, delay: float, callback: Callable[[], object]) -> Timer:
        return asyncio.get_running_loop().call_later(delay, callback)
