"""Keeping Python's full garbage collections short while connections are held.

A full (generation 2) collection walks every tracked object, and each open
connection holds a few hundred, so with thousands of connections a single
collection stopped the event loop for hundreds of milliseconds and set the
fan-out latency tail (docs/performance.md). ``gc.freeze()`` moves every
tracked object into a permanent generation that collections skip, so the
objects of connections that are already established cost nothing any more.

What stays open is garbage: a cycle among the objects of a connection that
closed after it was frozen is only reclaimed once it is unfrozen. So the
policy has four moves, all on timers of the event loop (nothing polls):

- at start: collect once (nothing is connected yet, so it is cheap) and freeze;
- every ``freeze_every`` seconds, and right after any full collection the
  interpreter ran by itself: freeze again (O(1), no pause) and reset the
  interpreter's trigger for the next full collection (see ``_freeze``), so full
  collections stay frequent and small and each object is walked by about one;
- every ``full_every`` seconds: if the server is quiet (at most
  ``quiet_fraction`` of the most connections seen since the last time) or the
  frozen set has grown by ``growth`` since then, unfreeze, collect everything
  and freeze again. That one pause is paid at a quiet moment, or because
  memory would otherwise keep growing with the churn of connections;
- every ``young_every`` seconds (50 ms) while anyone is connected: collect
  generations 0 and 1, because state replaced in place never triggers the
  interpreter's own young collections (see ``_young``); an idle server with
  nobody connected looks only every ``freeze_every`` seconds.

The garbage collector is process-wide, which is why the server only runs this
when ``ServerConfig.gc_freeze`` is set (the CLI sets it): an embedded server
shares its process with code whose garbage it would keep frozen.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from ..metrics import AnyMetrics

log = logging.getLogger(__name__)

FREEZE_EVERY = 60.0
FULL_EVERY = 3600.0
GROWTH = 0.5
QUIET_FRACTION = 0.5
MAX_PENDING_PAUSES = 10_000
YOUNG_EVERY = 0.05
"""Seconds between the policy's collections of generations 0 and 1 (``_young``)."""


class GcPolicy:
    """Freezes long-lived objects and reclaims frozen garbage at quiet moments."""

    def __init__(
        self,
        metrics: AnyMetrics,
        connections: Callable[[], int],
        *,
        freeze_every: float = FREEZE_EVERY,
        full_every: float = FULL_EVERY,
        growth: float = GROWTH,
        quiet_fraction: float = QUIET_FRACTION,
        young_every: float = YOUNG_EVERY,
    ) -> None:
        self.metrics = metrics
        self.connections = connections
        self.freeze_every = freeze_every
        self.full_every = full_every
        self.growth = growth
        self.quiet_fraction = quiet_fraction
        self.young_every = young_every
        """0 turns the young collections off."""
        self.young_collected = asyncio.Event()
        """Set after each of the policy's young collections (tests await it)."""
        self.freezes = 0
        self.full_collections = 0
        self.full_collected = asyncio.Event()
        """Set after each of the policy's own full collections (tests await it)."""
        self.froze = asyncio.Event()
        """Set after each freeze."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._frozen_after_full = 0
        self._frozen_seen = 0
        self._peak = 0
        self._pauses: list[tuple[int, float]] = []
        self._flush_pending = False
        self._freeze_pending = False
        self._held = False

    @property
    def running(self) -> bool:
        return self._loop is not None

    def start(self) -> GcPolicy:
        """Collect once, freeze, and arm the timers (call on the server's loop)."""
        if self._loop is not None:
            return self
        self._loop = asyncio.get_running_loop()
        _observed.add(self)
        _install_callback()
        _own_collection.set()
        try:
            gc.collect()
        finally:
            _own_collection.clear()
        self._freeze()
        self._frozen_after_full = self._count_frozen()
        self._peak = self.connections()
        self._metrics_frozen()
        self._arm("freeze", self.freeze_every, self._periodic_freeze)
        self._arm("full", self.full_every, self._maintenance)
        if self.young_every > 0:
            self._arm("young", self._young_delay(), self._young)
        return self

    def stop(self) -> None:
        """Cancel the timers and hand every frozen object back to the collector."""
        if self._loop is None:
            return
        self._loop = None
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        _observed.discard(self)
        if not _observed:
            _remove_callback()
            gc.unfreeze()
        if self._held:
            self._held = False
            _holding.discard(self)
            if not _holding:
                gc.enable()
        self._flush()

    def hold(self) -> None:
        """No collections at all until ``stop()``: the server is draining.

        A drain turns every connection into garbage within seconds, so
        automatic collections come one after another, each followed by a
        freeze; all of it is work for objects the process is about to drop
        (the stop of 15,000 connections spent a fifth of its time here). The
        drain is bounded (``--drain-seconds``), so the garbage it leaves is
        too; ``stop()`` turns collection back on.
        """
        if self._loop is None or self._held:
            return
        self._held = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        _holding.add(self)
        gc.disable()

    def collect_now(self) -> int:
        """Unfreeze, collect every generation, freeze again: the maintenance pause.

        Returns the number of unreachable objects found.
        """
        gc.unfreeze()
        _own_collection.set()
        try:
            found = gc.collect()
        finally:
            _own_collection.clear()
        self._freeze()
        self._frozen_after_full = self._count_frozen()
        self._peak = self.connections()
        self.full_collections += 1
        self.metrics.gc_full_collections.inc()
        self.full_collected.set()
        return found

    # -- timers

    def _arm(self, name: str, delay: float, callback: Callable[[], None]) -> None:
        if self._loop is not None:
            self._timers[name] = self._loop.call_later(delay, callback)

    def _periodic_freeze(self) -> None:
        self._peak = max(self._peak, self.connections())
        self._freeze()
        self._arm("freeze", self.freeze_every, self._periodic_freeze)

    def _young(self) -> None:
        """Collect generations 0 and 1, every ``young_every`` seconds.

        The interpreter starts a young collection when allocations minus
        deallocations of tracked objects pass 700, and freeing *any* tracked
        object counts, also an old or frozen one. A server replaces long-lived
        state in place on every update (a new object in, an old one freed),
        so the count hardly moves while every replacement joins the young
        list; the next collection, whenever something else triggers it, then
        walks tens of thousands of objects at once (9–22 ms of CPU in the
        fan-out benchmark, docs/performance.md). On a timer each collection
        walks only what the last ``young_every`` seconds replaced.
        """
        gc.collect(1)
        self.young_collected.set()
        self._arm("young", self._young_delay(), self._young)

    def _young_delay(self) -> float:
        """``young_every`` while anyone is connected, else ``freeze_every``.

        With nobody connected no state is being replaced, and a server left
        idle should not wake twenty times a second: it looks again at the
        pace of the periodic freeze, so young collections resume within
        ``freeze_every`` of the first connection.
        """
        return self.young_every if self.connections() > 0 else self.freeze_every

    def _maintenance(self) -> None:
        now = self.connections()
        frozen = self._count_frozen()
        quiet = now <= self.quiet_fraction * max(self._peak, now)
        grown = frozen >= (1 + self.growth) * self._frozen_after_full
        if quiet or grown:
            started = time.perf_counter()
            found = self.collect_now()
            log.info(
                "full garbage collection: %d unreachable objects, %.0f ms",
                found,
                (time.perf_counter() - started) * 1000,
                extra={
                    "event": "gc_full",
                    "frozen_before": frozen,
                    "frozen_after": self._frozen_after_full,
                    "connections": now,
                    "quiet": quiet,
                },
            )
        self._arm("full", self.full_every, self._maintenance)

    def _freeze(self) -> None:
        gc.freeze()
        # The interpreter starts a full collection once the objects promoted since
        # the last one exceed a quarter of what that one kept, and freezing does not
        # lower that count: the next full collection would walk a quarter of
        # everything frozen. A full collection now walks nothing (all is frozen) and
        # resets the count, so the next one comes soon and walks only what was
        # promoted since; its survivors are frozen right after it, and so on.
        _own_collection.set()
        try:
            gc.collect()
        finally:
            _own_collection.clear()
        self._freeze_pending = False
        self.freezes += 1
        self.metrics.gc_freezes.inc()
        self.froze.set()

    def _count_frozen(self) -> int:
        """Count the frozen objects: at start, hourly and after a maintenance pause.

        Not after every freeze: ``gc.get_freeze_count()`` walks the whole
        frozen list (0.15 s for two million objects here), and during a
        reconnect storm a freeze follows every automatic full collection, so
        counting there was a tenth of the storm's CPU (docs/performance.md).
        """
        self._frozen_seen = gc.get_freeze_count()
        return self._frozen_seen

    def _metrics_frozen(self) -> None:
        # The count as of the policy's last look (see _count_frozen), not a
        # fresh walk per scrape, which would pause the loop just as long.
        self.metrics.gc_frozen_objects.set_function(lambda: float(self._frozen_seen))

    # -- called from the collector (any thread, inside the collection)

    def _collected(self, generation: int, seconds: float) -> None:
        """Note a pause; metrics and the follow-up freeze run later on the loop.

        Nothing here takes a lock: a metric's lock may be held by the very code
        the collection interrupted.
        """
        loop = self._loop
        if loop is None or len(self._pauses) >= MAX_PENDING_PAUSES:
            return
        self._pauses.append((generation, seconds))
        if generation == 2 and not _own_collection.is_set():
            self._freeze_pending = True
        if self._flush_pending:
            return
        self._flush_pending = True
        with contextlib.suppress(RuntimeError):  # a closed loop: nothing left to freeze for
            loop.call_soon_threadsafe(self._after_collection)

    def _after_collection(self) -> None:
        self._flush()
        if self._freeze_pending and self._loop is not None:
            self._freeze()

    def _flush(self) -> None:
        self._flush_pending = False
        pauses, self._pauses = self._pauses, []
        for generation, seconds in pauses:
            self.metrics.gc_pause.labels(str(generation)).observe(seconds)


# One callback for the process, whatever the number of servers in it.
_observed: weakref.WeakSet[GcPolicy] = weakref.WeakSet()
_holding: weakref.WeakSet[GcPolicy] = weakref.WeakSet()
"""Policies of draining servers: collection stays off until the last one stops."""
_own_collection = threading.Event()
"""Set during a policy's own collections (of any policy in the process): they
call for no freeze, or two policies would keep answering each other's."""
_started_at = 0.0


def _on_gc(phase: str, info: dict[str, Any]) -> None:
    """The interpreter calls this around every collection, wherever the program
    is: also a few frames short of the recursion limit (a deeply nested hostile
    frame being parsed). A pause that cannot be recorded there is dropped; an
    exception here would only print "Exception ignored" on stderr."""
    global _started_at
    if phase == "start":
        _started_at = time.perf_counter()
        return
    seconds = time.perf_counter() - _started_at
    generation = int(info.get("generation", 0))
    try:
        for policy in list(_observed):
            policy._collected(generation, seconds)
    except RecursionError:
        pass


def _install_callback() -> None:
    if _on_gc not in gc.callbacks:
        gc.callbacks.append(_on_gc)


def _remove_callback() -> None:
    while _on_gc in gc.callbacks:
        gc.callbacks.remove(_on_gc)
