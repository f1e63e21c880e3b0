"""Settings: edits a copy of the settings and saves it through ``SettingsStore.update``.

The store validates (server address, ranges); a refusal is shown under the
form and nothing is saved, so the dialog never needs its own rules.
"""

from __future__ import annotations

import contextlib

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..core.api import AppActions
from ..core.settings import OnlineAlerts, Settings, SettingsError, SettingsStore
from ..core.state import PresenceState

_ONLINE_ALERT_LABELS = {
    OnlineAlerts.ALL: "Every friend (except muted)",
    OnlineAlerts.STARRED: "Starred friends only",
    OnlineAlerts.OFF: "Nobody",
}


class SettingsDialog(QDialog):
    def __init__(
        self,
        store: SettingsStore,
        state: PresenceState | None = None,
        actions: AppActions | None = None,
        *,
        server_locked: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Presence settings")
        self._store = store
        self._state = state
        self._actions = actions
        layout = QVBoxLayout(self)

        form = QFormLayout()
        self.server_url = QLineEdit()
        self.server_url.setPlaceholderText("wss://presence.example.org")
        form.addRow("Server address", self.server_url)
        if server_locked:
            self.server_url.setEnabled(False)
            self.server_url.setToolTip(server_locked)
        self.autostart = QCheckBox("Start Presence when I log in")
        form.addRow(self.autostart)
        if server_locked:
            # The demo's settings live in a temporary folder; a login entry would outlive it.
            self.autostart.setEnabled(False)
            self.autostart.setToolTip("The demo does not start at login.")
        layout.addLayout(form)

        notify = QGroupBox("Notifications")
        nform = QFormLayout(notify)
        self.notifications = QCheckBox("Show desktop notifications")
        nform.addRow(self.notifications)
        self.online_alerts = QComboBox()
        for value, label in _ONLINE_ALERT_LABELS.items():
            self.online_alerts.addItem(label, value.value)
        nform.addRow("Friend comes online", self.online_alerts)
        self.notify_on_requests = QCheckBox("Friend requests")
        self.notify_on_messages = QCheckBox("Messages")
        nform.addRow(self.notify_on_requests)
        nform.addRow(self.notify_on_messages)
        self.flap_minutes = QSpinBox()
        self.flap_minutes.setRange(0, 24 * 60)
        self.flap_minutes.setSuffix(" min")
        self.flap_minutes.setToolTip(
            "A friend back after a shorter time offline is not announced again"
        )
        nform.addRow("Ignore reconnects shorter than", self.flap_minutes)
        self.notifications.toggled.connect(self._update_enabled)
        layout.addWidget(notify)

        self.blocked_box = QGroupBox("Blocked users")
        self._blocked_layout = QVBoxLayout(self.blocked_box)
        layout.addWidget(self.blocked_box)

        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #e5534b;")
        self.error.hide()
        layout.addWidget(self.error)

        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)

        self.load(store.settings)
        self._rebuild_blocked()
        if state is not None:
            state.requests_changed.connect(self._on_requests_changed)
        self.finished.connect(self._disconnect)

    def load(self, settings: Settings) -> None:
        self.server_url.setText(settings.server_url)
        self.autostart.setChecked(settings.autostart)
        self.notifications.setChecked(settings.notifications)
        self.online_alerts.setCurrentIndex(
            self.online_alerts.findData(settings.online_alerts.value)
        )
        self.notify_on_requests.setChecked(settings.notify_on_requests)
        self.notify_on_messages.setChecked(settings.notify_on_messages)
        self.flap_minutes.setValue(settings.flap_minutes)
        self._update_enabled()

    def changes(self) -> dict[str, object]:
        changes: dict[str, object] = {
            "notifications": self.notifications.isChecked(),
            "online_alerts": OnlineAlerts(self.online_alerts.currentData()),
            "notify_on_requests": self.notify_on_requests.isChecked(),
            "notify_on_messages": self.notify_on_messages.isChecked(),
            "flap_minutes": self.flap_minutes.value(),
        }
        if self.server_url.isEnabled():
            changes["server_url"] = self.server_url.text()
        if self.autostart.isEnabled():
            changes["autostart"] = self.autostart.isChecked()
        return changes

    def save(self) -> bool:
        try:
            self._store.update(**self.changes())
        except SettingsError as exc:
            self.error.setText(str(exc))
            self.error.show()
            return False
        self.error.hide()
        self.accept()
        return True

    def _update_enabled(self) -> None:
        on = self.notifications.isChecked()
        for widget in (
            self.online_alerts,
            self.notify_on_requests,
            self.notify_on_messages,
            self.flap_minutes,
        ):
            widget.setEnabled(on)

    def _rebuild_blocked(self) -> None:
        while self._blocked_layout.count():
            item = self._blocked_layout.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        blocked = sorted(
            (self._state.blocked.values() if self._state else []), key=lambda u: u.login.lower()
        )
        self.blocked_box.setVisible(bool(blocked) and self._actions is not None)
        for user in blocked:
            row = QWidget()
            h = QHBoxLayout(row)
            h.setContentsMargins(0, 0, 0, 0)
            h.addWidget(QLabel(user.login), 1)
            button = QPushButton("Unblock")
            button.setObjectName(f"unblock-{user.id}")
            button.clicked.connect(lambda _c=False, uid=user.id: self._unblock(uid))
            h.addWidget(button)
            self._blocked_layout.addWidget(row)

    def _unblock(self, user_id: int) -> None:
        if self._actions is not None:
            self._actions.unblock(user_id)

    def _on_requests_changed(self, _none: None) -> None:
        self._rebuild_blocked()

    def _disconnect(self, _result: int) -> None:
        if self._state is not None:
            with contextlib.suppress(ValueError):
                self._state.requests_changed.disconnect(self._on_requests_changed)
