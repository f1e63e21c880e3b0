"""The periodic retention sweep of this instance (the rules are ``domain.retention``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from presence_protocol import encode

from ..cluster.fanout import Event
from ..domain.retention import SweepResult, sweep

if TYPE_CHECKING:
    from .hub import Hub

log = logging.getLogger(__name__)


class Sweeper:
    """Runs ``sweep`` every ``policy.sweep_interval`` and tells senders at once.

    One timer per interval, whether the round swept or skipped: a skipped
    round is not retried early, the instance holding the turn did the work.
    """

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.policy = hub.config.retention
        self._task: asyncio.Task[None] | None = None
        self.swept = asyncio.Event()
        """Set after each sweep (tests wait on it instead of sleeping)."""
        self.last: SweepResult | None = None
        """The latest round's result; None before the first and after a skipped one."""

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="retention")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def run_once(self) -> SweepResult | None:
        """One round; None when another instance's sweep had the turn."""
        hub = self.hub
        live = frozenset(
            c.session_id
            for c in list(hub.connections)
            if c.session_id is not None and not c.closing
        )
        result = await sweep(hub.store, self.policy, hub.now(), live)
        self.last = result
        if result is None:
            log.debug("retention: another instance is sweeping; skipping this round")
        else:
            await self._report(result)
        self.swept.set()
        return result

    async def _report(self, result: SweepResult) -> None:
        for expired in result.expired:
            await self.hub.fanout.publish(
                [expired.sender_id], Event(frame=encode(expired.notice()))
            )
        if result != SweepResult():
            log.info(
                "retention: %d delivered and %d expired messages, %d notices, %d sessions removed",
                result.delivered_deleted,
                len(result.expired),
                result.tombstones_deleted,
                result.sessions_deleted,
            )

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("retention sweep failed; trying again next interval")
            await asyncio.sleep(self.policy.sweep_interval)
