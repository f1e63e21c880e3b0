"""Deleting my account: say what goes, make the person type their login, show the outcome.

The dialog is opened with ``open()`` and never runs its own event loop: a
nested loop (``exec``, ``QInputDialog.getText``) would run the qasync loop's
callbacks re-entrantly and stall the network while it is up. The request
goes out through ``AccountActions.delete_account``; the answer comes back as
``account_deleted`` or ``account_delete_failed`` and is shown here, in the
same window, so a refusal (offline, wrong login) never gets lost behind it.
"""

from __future__ import annotations

import contextlib
from typing import Protocol

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..core.api import UserError
from ..core.events import Signal
from .fit import tool_dialog

WHAT_GOES = (
    "Deleting your account on {server} removes:",
    "your friendships and friend requests, sent and received",
    "your messages, delivered or waiting",
    "your sessions: every device you signed in on is signed out",
    "your presence and last-seen time",
)


class AccountDeletion(Protocol):
    """The controller's side of the deletion (``presence_desktop.controller``)."""

    account_deleted: Signal[None]
    account_delete_failed: Signal[UserError]

    def delete_account(self, confirm_login: str) -> None: ...


class DeleteAccountDialog(QDialog):
    """Delete stays disabled until the typed text is exactly the login."""

    def __init__(
        self,
        actions: AccountDeletion,
        login: str,
        server: str,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Delete my account")
        tool_dialog(self)
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self._actions = actions
        self.login = login
        self.deleted = False

        layout = QVBoxLayout(self)
        heading, *items = WHAT_GOES
        bullets = "".join(f"<li>{_escape(item)}</li>" for item in items)
        self.explanation = QLabel(
            f"<p>{_escape(heading.format(server=server or 'this server'))}</p>"
            f"<ul style='margin-left: -20px'>{bullets}</ul>"
            "<p>This happens on every device at once and cannot be undone. Export your "
            "data first if you want to keep a copy.</p>"
        )
        self.explanation.setTextFormat(Qt.TextFormat.RichText)
        self.explanation.setWordWrap(True)
        self.explanation.setMinimumWidth(380)
        layout.addWidget(self.explanation)
        prompt = QLabel(f"Type <b>{_escape(login)}</b> to confirm:")
        layout.addWidget(prompt)
        self.confirm = QLineEdit()
        self.confirm.setPlaceholderText(login)
        self.confirm.setAccessibleName("Your login, to confirm")
        prompt.setBuddy(self.confirm)
        layout.addWidget(self.confirm)

        self.progress = QProgressBar()
        self.progress.setRange(0, 0)  # busy: the server answers in one step
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(6)
        self.progress.hide()
        layout.addWidget(self.progress)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.hide()
        layout.addWidget(self.status)

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.cancel_button = self.buttons.button(QDialogButtonBox.StandardButton.Cancel)
        self.delete_button = QPushButton("Delete my account")
        self.delete_button.setObjectName("DeleteAccount")
        self.delete_button.setStyleSheet(
            "QPushButton:enabled { color: #ffffff; background: #cf222e; padding: 4px 10px; }"
        )
        self.delete_button.setAutoDefault(False)
        self.buttons.addButton(self.delete_button, QDialogButtonBox.ButtonRole.DestructiveRole)
        self.delete_button.clicked.connect(self._on_delete)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)

        # Enter in the field means "delete" once the login matches, never "cancel".
        self.cancel_button.setAutoDefault(False)
        self.confirm.returnPressed.connect(self._on_delete)
        self.confirm.textChanged.connect(self._update)
        on_deleted, on_failed = self._on_deleted, self._on_failed
        actions.account_deleted.connect(on_deleted)
        actions.account_delete_failed.connect(on_failed)

        def disconnect(*_args: object) -> None:
            with contextlib.suppress(ValueError):
                actions.account_deleted.disconnect(on_deleted)
            with contextlib.suppress(ValueError):
                actions.account_delete_failed.disconnect(on_failed)

        # Closed, or destroyed with the settings window: either way stop listening.
        self.finished.connect(disconnect)
        self.destroyed.connect(disconnect)
        self._busy = False
        self._update()

    def matches(self) -> bool:
        """Exactly the login, as shown: a deliberate act, not a near miss."""
        return self.confirm.text() == self.login

    def _update(self) -> None:
        if self.deleted:
            self.delete_button.setEnabled(False)
            self.confirm.setEnabled(False)
            return
        self.delete_button.setEnabled(self.matches() and not self._busy and not self.deleted)
        self.confirm.setEnabled(not self._busy and not self.deleted)

    def _on_delete(self) -> None:
        if not self.matches() or self._busy:
            return
        self._busy = True
        self.progress.show()
        self._show("Deleting your account…", error=False)
        self._update()
        self._actions.delete_account(self.confirm.text())

    def _on_deleted(self, _none: None) -> None:
        self._busy = False
        self.deleted = True
        self.progress.hide()
        self._show(
            "Your account was deleted. This app is signed out; every other device was "
            "signed out too.",
            error=False,
        )
        self.delete_button.hide()
        self.cancel_button.setText("Close")
        self._update()

    def _on_failed(self, error: UserError) -> None:
        if not self._busy:
            return  # a failure of an attempt made elsewhere
        self._busy = False
        self.progress.hide()
        self._show(error.message, error=True)
        self._update()

    def _show(self, text: str, *, error: bool) -> None:
        self.status.setText(text)
        self.status.setStyleSheet("color: #cf222e;" if error else "")
        self.status.show()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
