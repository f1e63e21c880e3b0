"""Loop-turn tracing for a benchmark child: which turns of the event loop were long, and why.

A delivery that waits tens of milliseconds in a lightly loaded server waited
for *something*: one long turn of the loop (a burst of callbacks, a garbage
collection, a slow timer), or the process not running at all (the machine).
``TurnLog`` wraps one asyncio loop's ``_run_once`` and its selector's
``select`` and records, for every turn whose work (the turn minus the time
blocked in ``select``) took at least ``threshold_ms``:

``[end_ns, work_ms, cpu_ms, callbacks, bytes_written, gc_ms, slowest_ms, slowest]``

``cpu_ms`` is this thread's CPU time over the same span: a turn whose wall
time is much longer than its CPU time was descheduled (another process had
the core), one whose CPU time is as long did that much work. ``slowest``
names the callback that took longest (a task's coroutine, or the function).

It also keeps a histogram of every turn's work time, so a run can say what
share of turns were long. Benchmark instrumentation only (asyncio's default
loop; uvloop has no ``_run_once``): it costs two clock reads per callback.
"""

from __future__ import annotations

import asyncio
import asyncio.events
import asyncio.selector_events
import gc
import time
from typing import Any

_BUCKETS_MS = (1, 2, 5, 10, 20, 50, 100, 200, 500)


def _describe(callback: Any) -> str:
    owner = getattr(callback, "__self__", None)
    if isinstance(owner, asyncio.Task):
        coro = owner.get_coro()
        return f"task {getattr(coro, '__qualname__', repr(coro))}"
    if owner is not None:
        return f"{type(owner).__qualname__}.{getattr(callback, '__name__', '?')}"
    return getattr(callback, "__qualname__", repr(callback))


class TurnLog:
    """Records the long turns of one asyncio event loop (see the module docstring)."""

    def __init__(self, threshold_ms: float = 5.0) -> None:
        self.threshold_ns = int(threshold_ms * 1e6)
        self.turns: list[list[Any]] = []
        self.histogram = [0] * (len(_BUCKETS_MS) + 1)
        """Turns by work time: < 1 ms, 1–2, 2–5, … ms, ≥ 500 ms."""
        self._select_ns = 0
        self._callbacks = 0
        self._bytes = 0
        self._gc_ns = 0
        self._gc_start = 0
        self._slowest_ns = 0
        self._slowest: Any = None

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        run_once = loop._run_once  # type: ignore[attr-defined]
        selector = loop._selector  # type: ignore[attr-defined]
        select = selector.select
        log = self

        def timed_select(timeout: float | None = None) -> Any:
            t0 = time.monotonic_ns()
            try:
                return select(timeout)
            finally:
                log._select_ns += time.monotonic_ns() - t0

        def timed_run_once() -> None:
            log._select_ns = log._callbacks = log._bytes = log._gc_ns = log._slowest_ns = 0
            log._slowest = None
            t0, c0 = time.monotonic_ns(), time.thread_time_ns()
            run_once()
            t1, c1 = time.monotonic_ns(), time.thread_time_ns()
            work = t1 - t0 - log._select_ns
            bucket = 0
            while bucket < len(_BUCKETS_MS) and work >= _BUCKETS_MS[bucket] * 1_000_000:
                bucket += 1
            log.histogram[bucket] += 1
            if work >= log.threshold_ns:
                log.turns.append(
                    [
                        t1,
                        work / 1e6,
                        (c1 - c0) / 1e6,
                        log._callbacks,
                        log._bytes,
                        log._gc_ns / 1e6,
                        log._slowest_ns / 1e6,
                        _describe(log._slowest),
                    ]
                )

        handle_run = asyncio.events.Handle._run

        def timed_handle_run(handle: asyncio.events.Handle) -> None:
            t0 = time.monotonic_ns()
            handle_run(handle)
            spent = time.monotonic_ns() - t0
            log._callbacks += 1
            if spent > log._slowest_ns:
                log._slowest_ns, log._slowest = spent, handle._callback  # type: ignore[attr-defined]

        transport_cls: Any = getattr(asyncio.selector_events, "_SelectorSocketTransport")  # noqa: B009
        transport_write = transport_cls.write

        def counted_write(transport: Any, data: Any) -> None:
            log._bytes += len(data)
            transport_write(transport, data)

        def on_gc(phase: str, _info: dict[str, Any]) -> None:
            if phase == "start":
                self._gc_start = time.monotonic_ns()
            else:
                self._gc_ns += time.monotonic_ns() - self._gc_start

        selector.select = timed_select
        loop._run_once = timed_run_once  # type: ignore[attr-defined]
        setattr(asyncio.events.Handle, "_run", timed_handle_run)  # noqa: B010
        transport_cls.write = counted_write
        gc.callbacks.append(on_gc)

    def dump(self) -> dict[str, Any]:
        return {
            "threshold_ms": self.threshold_ns / 1e6,
            "buckets_ms": list(_BUCKETS_MS),
            "histogram": self.histogram,
            "turns": self.turns,
        }
