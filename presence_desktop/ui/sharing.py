"""The "Friends see: …" line, and the words for share levels and rules.

Everything shown here is rendered by ``core.privacy.preview`` from the
``set_presence`` message the app sends (or, in the settings window, would
send with the rules being edited), so the preview can never promise more
privacy than the wire delivers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, Protocol

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QMouseEvent, QPalette, QResizeEvent
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

from presence_protocol import Status

from ..core.events import Signal as CoreSignal
from ..core.my_presence import MyPresence
from ..core.privacy import (
    Preview,
    PrivacyRule,
    PrivacySettings,
    ShareLevel,
    matching_rule,
    normalize_remote,
)

LEVEL_LABELS: dict[ShareLevel, str] = {
    ShareLevel.NOTHING: "Status only",
    ShareLevel.CODING: "Coding",
    ShareLevel.LANGUAGE: "Coding · language",
    ShareLevel.PROJECT: "Coding · language · project",
    ShareLevel.FILE: "Coding · language · project · file",
}
"""What each level lets friends read, in the words of the preview line."""

PREFIX = "Friends see: "


class SharingService(Protocol):
    """The editor activity service as the ui needs it (``net.editor_activity.EditorActivity``)."""

    me: MyPresence


def rule_target(rule: PrivacyRule) -> str:
    """The rule's patterns in one cell: ``github.com/acme/*``, ``~/work``, or both."""
    return " + ".join(p.strip() for p in (rule.remote, rule.folder) if p.strip())


def project_where(presence: MyPresence) -> str:
    """The project open now, as the rules see it (local only: a folder may be a path)."""
    current = presence.current
    if current is None:
        return ""
    report = current.report
    remote = normalize_remote(report.git_remote) if report.git_remote else None
    return remote or report.folder or report.workspace or report.editor


def decided_by(privacy: PrivacySettings, presence: MyPresence) -> str:
    """Why the preview is what it is, in one sentence for the settings window."""
    if presence.status is Status.INVISIBLE:
        return "You are invisible: friends see you offline and no activity."
    if presence.status is Status.AWAY:
        return "While you are away, no activity is sent."
    current = presence.current
    if current is None:
        return "No editor is reporting activity right now, so friends see only your status."
    where = project_where(presence) or "the project open now"
    rule = matching_rule(privacy, current.report.folder, current.report.git_remote)
    if rule is None:
        return f"Open now: {where}. No rule matches it, so the default applies."
    number = privacy.rules.index(rule) + 1
    return f"Open now: {where}. Rule {number} ({rule_target(rule)}) decides."


def connect_while(widget: QWidget, signal: CoreSignal[Any], slot: Callable[[Any], object]) -> None:
    """Connect a core signal to a widget's slot until the widget is destroyed.

    Core signals hold their slots strongly; a slot of a deleted widget would
    fail on the next emit.
    """
    signal.connect(slot)
    widget.destroyed.connect(lambda _o=None: _quietly_disconnect(signal, slot))


def _quietly_disconnect(signal: CoreSignal[Any], slot: Callable[[Any], object]) -> None:
    with contextlib.suppress(ValueError):
        signal.disconnect(slot)


class SharingLine(QLabel):
    """One line in the popup header: what friends see right now. Click to change it."""

    clicked = Signal()

    def __init__(self, presence: MyPresence, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("SharingLine")
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setAccessibleName("What friends see")
        # The text is elided to the width the layout gives, never the reverse.
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.full_text = ""
        self.preview: Preview | None = None
        connect_while(self, presence.preview_changed, self.show_preview)
        self.show_preview(presence.preview())

    def show_preview(self, preview: Preview) -> None:
        self.preview = preview
        self.full_text = PREFIX + preview.line
        self.setToolTip(
            "What friends receive from this computer:\n"
            + "\n".join(f"{name}: {value}" for name, value in preview.details)
            + "\n\nClick to change what you share."
        )
        self._elide()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._elide()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit()
        super().mouseReleaseEvent(event)

    def _elide(self) -> None:
        width = self.width() if self.isVisible() else 10_000
        self.setText(
            self.fontMetrics().elidedText(self.full_text, Qt.TextElideMode.ElideRight, width)
        )
