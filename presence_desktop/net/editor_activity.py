"""Everything that observes what I do, wired into one outgoing presence.

Owns the editor bridge, the window-title fallback, the idle watcher and the
lock monitor; joins them in ``core.my_presence.MyPresence``; and hands the
result to a sink — in the app, ``Controller.set_editor_presence``. Each
source that cannot start here (no X server, no D-Bus, another instance
holds the socket) is logged and skipped: the app then shares less, never
crashes, and ``problems`` says what is missing so the ui can tell.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from presence_protocol import Activity, SetPresence, Status

from ..core.activity import ActivityMerger, ActivitySettings, Source
from ..core.idle import IdleSettings, IdleSource, IdleWatcher, LockMonitor, StatusRules
from ..core.my_presence import MyPresence
from ..core.privacy import Preview, PrivacySettings
from ..core.state import PresenceState
from ..platform.idle import system_idle_source
from ..platform.screenlock import system_lock_monitor
from ..platform.windows_titles import TitleDetector, system_window_lister
from .bridge import BridgeError, EditorBridge

log = logging.getLogger(__name__)

Sink = Callable[[Activity | None, bool], None]
"""Receives the filtered activity and whether I am away automatically."""


class EditorActivity:
    def __init__(
        self,
        state: PresenceState,
        sink: Sink,
        *,
        privacy: PrivacySettings | None = None,
        idle: IdleSettings | None = None,
        activity: ActivitySettings | None = None,
        bridge_address: str | None = None,
        idle_source: IdleSource | None = None,
        lock_monitor: LockMonitor | None = None,
        use_system_sources: bool = True,
    ) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        activity = activity or ActivitySettings()
        self.merger = ActivityMerger(loop, quiet_after=activity.quiet_minutes * 60)
        self.rules = StatusRules(idle or IdleSettings())
        self.me = MyPresence(self.merger, self.rules, privacy, activity)
        self.bridge = EditorBridge(self.merger, bridge_address)
        self._state = state
        self._sink = sink
        self._idle_source = idle_source
        self._lock = lock_monitor
        self._system = use_system_sources
        self._watcher: IdleWatcher | None = None
        self._titles: TitleDetector | None = None
        self.problems: list[BridgeError] = []
        self.rules.set_manual(state.my_status)
        state.my_status_changed.connect(self._on_my_status)
        self.me.changed.connect(self._on_message)

    @property
    def preview(self) -> Preview:
        """What friends see right now, from the exact message that would be sent."""
        return self.me.preview()

    def start(self) -> None:
        try:
            self.bridge.start()
        except BridgeError as exc:
            log.warning("%s", exc)
            self.problems.append(exc)
        source = self._idle_source
        if source is None and self._system:
            source = system_idle_source()
        if source is not None:
            self._watcher = IdleWatcher(self.rules, source, self._loop)
            self._watcher.start()
        if self._lock is None and self._system:
            self._lock = system_lock_monitor(self._loop)
        if self._lock is not None:
            self._lock.changed.connect(self.rules.set_locked)
            if not self._lock.start():
                log.info("no screen lock source in this session")
        if self._system and self.me.activity_settings.window_titles:
            self._start_titles()
        self._deliver(self.me.message)

    def _start_titles(self) -> None:
        lister = system_window_lister()
        if lister is not None:
            detector = TitleDetector(lister, self.merger, self._loop)
            detector.start()
            self._titles = detector

    def apply_settings(
        self, privacy: PrivacySettings, idle: IdleSettings, activity: ActivitySettings
    ) -> None:
        self.rules.apply_settings(idle)
        if self._watcher is not None:
            self._watcher.settings_changed()
        self.me.set_activity_settings(activity)
        self.me.set_privacy(privacy)
        if self._titles is not None and not activity.window_titles:
            self._titles.stop()
            self._titles = None
            self.merger.remove_source(Source.TITLE)
        elif self._titles is None and activity.window_titles and self._system:
            self._start_titles()

    async def aclose(self) -> None:
        # Going away is not news to send: disconnecting makes me offline anyway.
        self.me.changed.disconnect(self._on_message)
        if self._titles is not None:
            self._titles.stop()
        if self._watcher is not None:
            self._watcher.stop()
        if self._lock is not None:
            self._lock.stop()
        self.bridge.close()
        self.merger.clear()
        self._state.my_status_changed.disconnect(self._on_my_status)

    def _on_my_status(self, status: Status) -> None:
        self.rules.set_manual(status)

    def _on_message(self, message: SetPresence) -> None:
        self._deliver(message)

    def _deliver(self, message: SetPresence) -> None:
        self._sink(message.activity, self.rules.automatic_away)
