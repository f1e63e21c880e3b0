"""Away when I am away, back when I am back, and never against my own choice.

The status friends see follows two inputs: what I chose by hand, and what
the machine observes (system-wide input idle time and screen lock). A status
chosen by hand always wins; choosing "online" hands control back to the
automatic rules. Automatically, I am away after ``away_after_minutes``
without input or while the screen is locked, and online otherwise.

``IdleWatcher`` asks an idle-time source only when an answer can change
something: while I am present, once at the moment the threshold would be
reached; while I am away, every ``away_poll`` seconds to notice input, which
no platform announces cheaply.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

import msgspec

from presence_protocol import Status

from .activity import Scheduler, TimerHandle
from .events import Signal

log = logging.getLogger(__name__)

DEFAULT_AWAY_MINUTES = 10
_SLACK = 0.05


class IdleSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=False):
    """The idle part of the settings schema."""

    away_after_minutes: float = DEFAULT_AWAY_MINUTES
    """Minutes without keyboard or mouse input before I appear away; 0 = never."""
    away_on_lock: bool = True
    """Appear away while the screen is locked."""

    def __post_init__(self) -> None:
        if not 0 <= self.away_after_minutes <= 24 * 60:
            raise ValueError("away_after_minutes must be between 0 (never) and 1440")

    @property
    def threshold_seconds(self) -> float | None:
        return self.away_after_minutes * 60 if self.away_after_minutes > 0 else None


class StatusRules:
    """My effective status from a manual choice, idleness and the screen lock."""

    def __init__(self, settings: IdleSettings | None = None) -> None:
        self.settings = settings or IdleSettings()
        self.manual: Status | None = None
        """A status chosen by hand; None while the automatic rules decide."""
        self.idle = False
        self.locked = False
        self.changed = Signal[Status]()
        self._status = Status.ONLINE

    @property
    def status(self) -> Status:
        return self._status

    @property
    def automatic_away(self) -> bool:
        """Away because of the rules (not by hand): the popup can say why."""
        return self.manual is None and self._status is Status.AWAY

    def set_manual(self, status: Status | None) -> None:
        """Choose a status by hand. ``ONLINE`` or None hands back to the rules."""
        self.manual = None if status is Status.ONLINE else status
        self._update()

    def set_idle(self, idle: bool) -> None:
        self.idle = idle
        self._update()

    def set_locked(self, locked: bool) -> None:
        self.locked = locked
        self._update()

    def apply_settings(self, settings: IdleSettings) -> None:
        self.settings = settings
        self._update()

    def _decide(self) -> Status:
        if self.manual is not None:
            return self.manual
        if self.idle or (self.locked and self.settings.away_on_lock):
            return Status.AWAY
        return Status.ONLINE

    def _update(self) -> None:
        status = self._decide()
        if status is not self._status:
            self._status = status
            self.changed.emit(status)


class IdleSource(Protocol):
    """System-wide seconds since the last keyboard or mouse input."""

    def idle_seconds(self) -> float | None:
        """None when the platform cannot tell right now."""
        ...


class IdleWatcher:
    """Feeds ``StatusRules.set_idle`` from an idle source with as few wake-ups as possible."""

    def __init__(
        self,
        rules: StatusRules,
        source: IdleSource,
        scheduler: Scheduler,
        *,
        away_poll: float = 1.0,
        unknown_retry: float = 60.0,
    ) -> None:
        self._rules = rules
        self._source = source
        self._scheduler = scheduler
        self._away_poll = away_poll
        self._unknown_retry = unknown_retry
        self._timer: TimerHandle | None = None
        self._running = False
        self.checks = 0
        """How often the source was asked (for tests and the performance notes)."""

    def start(self) -> None:
        self._running = True
        self.check()

    def stop(self) -> None:
        self._running = False
        self._cancel()
        self._rules.set_idle(False)

    def settings_changed(self) -> None:
        """Re-plan after the threshold changed."""
        if self._running:
            self.check()

    def check(self) -> None:
        """Ask the source now and plan the next question."""
        self._cancel()
        if not self._running:
            return
        threshold = self._rules.settings.threshold_seconds
        if threshold is None:
            self._rules.set_idle(False)
            return
        self.checks += 1
        try:
            idle = self._source.idle_seconds()
        except Exception:
            log.exception("idle time source failed")
            idle = None
        if idle is None:
            self._schedule(self._unknown_retry)
            return
        if idle >= threshold:
            self._rules.set_idle(True)
            self._schedule(self._away_poll)
        else:
            self._rules.set_idle(False)
            # Wake when the threshold would be crossed without input; the slack
            # covers timers that fire a hair early against the system's clock.
            self._schedule(max(threshold - idle, 0.0) + _SLACK)

    def _schedule(self, delay: float) -> None:
        self._timer = self._scheduler.call_later(delay, self.check)

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class LockMonitor(Protocol):
    """Screen lock state, announced as it changes."""

    changed: Signal[bool]

    def start(self) -> bool:
        """Begin watching; False when this monitor cannot work here."""
        ...

    def stop(self) -> None: ...


def connect_lock(monitor: LockMonitor, rules: StatusRules) -> Callable[[bool], None]:
    """Route lock changes into the rules; returns the slot for disconnecting."""

    def slot(locked: bool) -> None:
        rules.set_locked(locked)

    monitor.changed.connect(slot)
    return slot
