"""The one place that decides the ``set_presence`` I send.

It joins the three inputs of my presence — the merged editor activity, the
status rules (manual choice, idle, lock) and the privacy rules — and
announces a new message only when the bytes on the wire would change, so
switching between two files of a project that shares no file names sends
nothing at all.
"""

from __future__ import annotations

from presence_protocol import SetPresence, Status, encode

from .activity import ActivityMerger, ActivitySettings, Current
from .events import Signal
from .idle import StatusRules
from .privacy import Preview, PrivacySettings, outgoing_presence, preview


class MyPresence:
    def __init__(
        self,
        merger: ActivityMerger,
        rules: StatusRules,
        privacy: PrivacySettings | None = None,
        activity_settings: ActivitySettings | None = None,
    ) -> None:
        self.merger = merger
        self.rules = rules
        self.privacy = privacy or PrivacySettings()
        self.activity_settings = activity_settings or ActivitySettings()
        self.changed = Signal[SetPresence]()
        """A different ``set_presence`` should be sent (the net client listens)."""
        self.preview_changed = Signal[Preview]()
        self.message = self._build()
        self._wire = encode(self.message)
        merger.changed.connect(self._on_input)
        rules.changed.connect(self._on_input)

    @property
    def status(self) -> Status:
        return self.rules.status

    @property
    def current(self) -> Current | None:
        return self.merger.current

    def set_manual_status(self, status: Status | None) -> None:
        self.rules.set_manual(status)

    def set_privacy(self, privacy: PrivacySettings) -> None:
        self.privacy = privacy
        self._on_input(None)

    def set_activity_settings(self, settings: ActivitySettings) -> None:
        self.activity_settings = settings
        self.merger.set_quiet_after(settings.quiet_minutes * 60)
        self._on_input(None)

    def preview(self) -> Preview:
        """What friends see now; the same message ``changed`` last announced."""
        return preview(
            self.privacy,
            self.rules.status,
            self.merger.current,
            share_activity=self.activity_settings.share_activity,
        )

    def _build(self) -> SetPresence:
        return outgoing_presence(
            self.privacy,
            self.rules.status,
            self.merger.current,
            share_activity=self.activity_settings.share_activity,
        )

    def _on_input(self, _: object) -> None:
        message = self._build()
        wire = encode(message)
        if wire == self._wire:
            return
        self.message, self._wire = message, wire
        self.changed.emit(message)
        self.preview_changed.emit(self.preview())
