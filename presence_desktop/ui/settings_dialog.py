"""Settings: edits a copy of the settings and saves it through ``SettingsStore.update``.

The store validates (server address, ranges); a refusal is shown under the
form and nothing is saved, so the dialog never needs its own rules. Two
pages: "General", and "Privacy & activity" (``privacy_settings.PrivacyPage``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, runtime_checkable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ..core.api import AppActions, UserError
from ..core.events import Signal
from ..core.my_presence import MyPresence
from ..core.settings import OnlineAlerts, Settings, SettingsError, SettingsStore
from ..core.state import PresenceState
from .delete_account import DeleteAccountDialog
from .devices_page import DevicesActions, DevicesPage
from .dialogs import confirm
from .fit import scrolling, tool_dialog
from .privacy_settings import PrivacyPage

_ONLINE_ALERT_LABELS = {
    OnlineAlerts.ALL: "Every friend (except muted)",
    OnlineAlerts.STARRED: "Starred friends only",
    OnlineAlerts.OFF: "Nobody",
}


@runtime_checkable
class AccountActions(Protocol):
    """Export and deletion of my account on the server (the controller has them)."""

    account_exported: Signal[str]
    account_export_failed: Signal[UserError]
    account_deleted: Signal[None]
    account_delete_failed: Signal[UserError]

    def export_account(self, path: str) -> None: ...
    def delete_account(self, confirm_login: str) -> None: ...


@runtime_checkable
class HistoryActions(Protocol):
    """Clearing this computer's conversation history (the controller has it; issue 17)."""

    def clear_history(self) -> None: ...


class SettingsDialog(QDialog):
    def __init__(
        self,
        store: SettingsStore,
        state: PresenceState | None = None,
        actions: AppActions | None = None,
        *,
        server_locked: str = "",
        presence: MyPresence | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Presence settings")
        self._store = store
        self._state = state
        self._actions = actions
        outer = QVBoxLayout(self)
        self.tabs = QTabWidget()
        # The pages scroll, Save and Cancel stay put: at a large scale factor the
        # settings are taller than the screen (tool_dialog fits the window to it).
        outer.addWidget(scrolling(self.tabs))
        tool_dialog(self)
        general = QWidget()
        layout = QVBoxLayout(general)
        self.tabs.addTab(general, "&General")
        self.privacy = PrivacyPage(presence)
        """Rules, idle and the "What friends see" preview (``presence`` feeds the preview)."""
        self.tabs.addTab(self.privacy, "&Privacy && activity")
        self.devices: DevicesPage | None = None
        """My signed-in devices; only with a controller that can list them."""
        if isinstance(actions, DevicesActions):
            self.devices = DevicesPage(actions)
            self.tabs.addTab(self.devices, "&Devices")

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

        # Conversations (issue 17): read receipts are a choice, off by default.
        self.conversations_box = QGroupBox("Conversations")
        cform = QVBoxLayout(self.conversations_box)
        self.read_receipts = QCheckBox("Send read receipts")
        self.read_receipts.setToolTip(
            "Friends see ✓✓ read when you have read their messages. Your own devices"
            " always sync what you have read."
        )
        cform.addWidget(self.read_receipts)
        self.share_typing = QCheckBox("Show friends when I am typing to them")
        cform.addWidget(self.share_typing)
        history_row = QHBoxLayout()
        history_note = QLabel("Messages are kept on this computer only.")
        history_note.setWordWrap(True)
        history_row.addWidget(history_note, 1)
        self._history = actions if isinstance(actions, HistoryActions) else None
        self.clear_history_button = QPushButton("&Clear history…")
        self.clear_history_button.setToolTip(
            "Delete every conversation stored on this computer (friends keep their copies)"
        )
        self.clear_history_button.setEnabled(self._history is not None)
        self.clear_history_button.clicked.connect(self._clear_history)
        history_row.addWidget(self.clear_history_button)
        cform.addLayout(history_row)
        self.clear_history_box: QWidget | None = None
        layout.addWidget(self.conversations_box)

        self.blocked_box = QGroupBox("Blocked users")
        self._blocked_layout = QVBoxLayout(self.blocked_box)
        layout.addWidget(self.blocked_box)

        self.ask_export_path: Callable[[QWidget, str], str] | None = None
        self.ask_delete_confirmation: Callable[[QWidget, str], str] | None = None
        """Synchronous answers to the file and confirmation prompts, for tests that
        skip the windows; None (the app) opens the non-blocking dialogs below."""
        self.export_file_dialog: QFileDialog | None = None
        self.delete_dialog: DeleteAccountDialog | None = None
        self._account = actions if isinstance(actions, AccountActions) else None
        self.account_box = QGroupBox("Your account on this server")
        aform = QVBoxLayout(self.account_box)
        row = QHBoxLayout()
        self.export_button = QPushButton("E&xport my data…")
        self.export_button.setToolTip("Save everything the server keeps about you as a JSON file")
        self.export_button.clicked.connect(self._export)
        self.delete_button = QPushButton("De&lete my account…")
        self.delete_button.setToolTip("Delete your account and everything about it on the server")
        self.delete_button.setStyleSheet("color: #e5534b;")
        self.delete_button.clicked.connect(self._delete)
        row.addWidget(self.export_button)
        row.addWidget(self.delete_button)
        row.addStretch(1)
        aform.addLayout(row)
        self.account_status = QLabel()
        self.account_status.setWordWrap(True)
        self.account_status.hide()
        aform.addWidget(self.account_status)
        self.account_box.setVisible(self._account is not None and state is not None)
        if self._account is not None:
            self._account.account_exported.connect(self._exported)
            self._account.account_export_failed.connect(self._export_failed)
        layout.addWidget(self.account_box)
        layout.addStretch(1)

        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #e5534b;")
        self.error.hide()
        outer.addWidget(self.error)

        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)
        outer.addWidget(self.buttons)

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
        self.read_receipts.setChecked(settings.read_receipts)
        self.share_typing.setChecked(settings.share_typing)
        self.flap_minutes.setValue(settings.flap_minutes)
        self.privacy.load(settings)
        self._update_enabled()

    def changes(self) -> dict[str, object]:
        changes: dict[str, object] = {
            "notifications": self.notifications.isChecked(),
            "online_alerts": OnlineAlerts(self.online_alerts.currentData()),
            "notify_on_requests": self.notify_on_requests.isChecked(),
            "notify_on_messages": self.notify_on_messages.isChecked(),
            "read_receipts": self.read_receipts.isChecked(),
            "share_typing": self.share_typing.isChecked(),
            "flap_minutes": self.flap_minutes.value(),
        }
        if self.server_url.isEnabled():
            changes["server_url"] = self.server_url.text()
        if self.autostart.isEnabled():
            changes["autostart"] = self.autostart.isChecked()
        changes.update(self.privacy.changes())  # SettingsError for rules it cannot save
        return changes

    def show_privacy(self) -> None:
        self.tabs.setCurrentWidget(self.privacy)

    def show_devices(self) -> None:
        if self.devices is not None:
            self.tabs.setCurrentWidget(self.devices)

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

    def _clear_history(self) -> None:
        history = self._history
        if history is None:
            return
        self.clear_history_box = confirm(
            self,
            "Clear history",
            "Delete every conversation stored on this computer? Your friends keep"
            " their copies; this cannot be undone here.",
            "Clear history",
            history.clear_history,
        )

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

    def _export(self) -> None:
        me = self._state.me if self._state is not None else None
        if self._account is None or me is None:
            self._show_account_status("Sign in first: the data live on the server.")
            return
        suggested = str(Path.home() / f"presence-{me.login}.json")
        if self.ask_export_path is not None:
            self._export_to(self.ask_export_path(self, suggested))
            return
        if self.export_file_dialog is not None:
            self.export_file_dialog.raise_()
            return
        # open(), not the static getSaveFileName: that one runs a nested event loop.
        chooser = QFileDialog(self, "Export my data", suggested, "JSON files (*.json)")
        chooser.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        chooser.setFileMode(QFileDialog.FileMode.AnyFile)
        chooser.setDefaultSuffix("json")
        chooser.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        chooser.fileSelected.connect(self._export_to)
        chooser.finished.connect(lambda _result: self._forget_export_dialog())
        self.export_file_dialog = chooser
        chooser.open()

    def _forget_export_dialog(self) -> None:
        self.export_file_dialog = None

    def _export_to(self, path: str) -> None:
        if path and self._account is not None:
            self._account.export_account(path)
            self._show_account_status("Exporting…")

    def _exported(self, path: str) -> None:
        self._show_account_status(f"Your data were saved to {path}.")

    def _export_failed(self, error: UserError) -> None:
        self._show_account_status(f"Nothing was exported. {error.message}", error=True)

    def _delete(self) -> None:
        me = self._state.me if self._state is not None else None
        if self._account is None or me is None:
            self._show_account_status("Sign in first: the account lives on the server.")
            return
        if self.ask_delete_confirmation is not None:
            typed = self.ask_delete_confirmation(self, me.login)
            if typed:
                self._account.delete_account(typed)
            return
        if self.delete_dialog is not None:
            self.delete_dialog.raise_()
            self.delete_dialog.activateWindow()
            return
        server = getattr(self._account, "server_url", "") or self._store.settings.server_url
        dialog = DeleteAccountDialog(self._account, me.login, str(server), self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.finished.connect(lambda _result: self._forget_delete_dialog())
        self.delete_dialog = dialog
        dialog.open()

    def _forget_delete_dialog(self) -> None:
        self.delete_dialog = None

    def _show_account_status(self, text: str, *, error: bool = False) -> None:
        self.account_status.setText(text)
        self.account_status.setStyleSheet("color: #e5534b;" if error else "")
        self.account_status.show()

    def _disconnect(self, _result: int) -> None:
        if self.devices is not None:
            self.devices.detach()
        if self._state is not None:
            with contextlib.suppress(ValueError):
                self._state.requests_changed.disconnect(self._on_requests_changed)
        if self._account is not None:
            with contextlib.suppress(ValueError):
                self._account.account_exported.disconnect(self._exported)
            with contextlib.suppress(ValueError):
                self._account.account_export_failed.disconnect(self._export_failed)
