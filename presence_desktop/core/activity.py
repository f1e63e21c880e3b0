"""Many editor windows, one answer to "what am I doing".

Every window that talks to the desktop (a bridge connection, or a window the
title fallback found) reports on its own. Friends should see one activity,
so the windows are merged: the focused window that was active most recently
wins; without a focused window, the most recently active one does. A window
that disconnects drops out at once; one that stays quiet for ``quiet_after``
seconds drops out through a timer of its own, so nothing polls.

Reports hold local facts (folders, paths, remotes) and never leave this
module unfiltered: ``core.privacy`` turns the winner into the payload.
"""

from __future__ import annotations

import dataclasses
import enum
import time
from collections.abc import Callable, Hashable
from typing import Protocol

import msgspec

from presence_protocol import ActivityKind

from .events import Signal

DEFAULT_QUIET_SECONDS = 15 * 60
"""A window with no editor event for this long is not where I am working."""


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Scheduler(Protocol):
    """The part of an event loop the rules need; ``asyncio`` loops fit."""

    def call_later(self, delay: float, callback: Callable[[], object]) -> TimerHandle: ...


class Source(enum.Enum):
    BRIDGE = "bridge"
    """An editor plugin speaking the bridge protocol: precise and first choice."""
    TITLE = "title"
    """The window-title fallback: used only when no bridge window exists."""


@dataclasses.dataclass(frozen=True, slots=True)
class EditorReport:
    """What one editor window says it is doing, before any privacy rule.

    These are local facts: ``folder`` and ``file`` may be absolute paths and
    ``git_remote`` may hold credentials. Only ``core.privacy`` reads them.
    """

    editor: str = ""
    workspace: str = ""
    """The name the editor shows for the workspace."""
    folder: str = ""
    """Local root folder of the workspace; matched by folder rules."""
    git_remote: str = ""
    """Remote URL of the workspace repository; matched by remote rules."""
    file: str = ""
    language: str = ""
    """Editor language id, e.g. ``python``."""
    kind: ActivityKind | None = None
    focused: bool = False

    def project_key(self) -> tuple[str, str, str]:
        """Identity of the project, so switching files keeps ``since``."""
        return (self.editor, self.folder or self.workspace, self.git_remote)


@dataclasses.dataclass(frozen=True, slots=True)
class Current:
    """The winning window's report and when work on its project began."""

    report: EditorReport
    since: int
    """Unix seconds; unchanged while the same project stays in front."""
    window: Hashable


@dataclasses.dataclass(slots=True)
class _Window:
    report: EditorReport
    source: Source
    last_active: float
    timer: TimerHandle | None


class ActivitySettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=False):
    """Where my activity may come from (embedded in the settings schema)."""

    share_activity: bool = True
    """Off: friends only ever see a status, no matter what editors report."""
    window_titles: bool = True
    """Read editor window titles when no editor plugin is connected."""
    quiet_minutes: float = msgspec.field(default=DEFAULT_QUIET_SECONDS / 60)

    def __post_init__(self) -> None:
        if not 1 <= self.quiet_minutes <= 24 * 60:
            raise ValueError("quiet_minutes must be between 1 and 1440")


class ActivityMerger:
    """Keeps every window's latest report and announces the winner."""

    def __init__(
        self,
        scheduler: Scheduler,
        *,
        quiet_after: float = DEFAULT_QUIET_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._scheduler = scheduler
        self._quiet_after = quiet_after
        self._clock = clock
        self._wall = wall_clock
        self._windows: dict[Hashable, _Window] = {}
        self._stamp = 0
        self.current: Current | None = None
        self.changed = Signal[Current | None]()
        """The winner or its report changed; None when no window is left."""

    @property
    def windows(self) -> int:
        return len(self._windows)

    def has_bridge_windows(self) -> bool:
        return any(w.source is Source.BRIDGE for w in self._windows.values())

    def set_quiet_after(self, seconds: float) -> None:
        """Change the timeout; running timers keep theirs until the next report."""
        self._quiet_after = seconds

    def update(
        self, window: Hashable, report: EditorReport, source: Source = Source.BRIDGE
    ) -> None:
        """A window reported something: it is active now."""
        entry = self._windows.get(window)
        if entry is not None and entry.timer is not None:
            entry.timer.cancel()
        timer = self._scheduler.call_later(self._quiet_after, lambda: self._expire(window, timer))
        self._windows[window] = _Window(report, source, self._now(), timer)
        self._recompute()

    def remove(self, window: Hashable) -> None:
        """The window closed or its connection dropped."""
        entry = self._windows.pop(window, None)
        if entry is None:
            return
        if entry.timer is not None:
            entry.timer.cancel()
        self._recompute()

    def remove_source(self, source: Source) -> None:
        """Forget every window of one source (e.g. the title fallback was turned off)."""
        for key in [k for k, w in self._windows.items() if w.source is source]:
            self.remove(key)

    def clear(self) -> None:
        for key in list(self._windows):
            self.remove(key)

    def _now(self) -> float:
        # Two reports within one clock tick must still be ordered.
        self._stamp += 1
        return self._clock() + self._stamp * 1e-9

    def _expire(self, window: Hashable, timer: TimerHandle) -> None:
        entry = self._windows.get(window)
        if entry is not None and entry.timer is timer:
            del self._windows[window]
            self._recompute()

    def _winner(self) -> tuple[Hashable, _Window] | None:
        items = list(self._windows.items())
        if any(w.source is Source.BRIDGE for _, w in items):
            items = [(k, w) for k, w in items if w.source is Source.BRIDGE]
        if not items:
            return None
        return max(items, key=lambda kw: (kw[1].report.focused, kw[1].last_active))

    def _recompute(self) -> None:
        winner = self._winner()
        if winner is None:
            if self.current is not None:
                self.current = None
                self.changed.emit(None)
            return
        key, entry = winner
        old = self.current
        if old is not None and old.report.project_key() == entry.report.project_key():
            since = old.since
        else:
            since = int(self._wall())
        new = Current(entry.report, since, key)
        if new != old:
            self.current = new
            self.changed.emit(new)
