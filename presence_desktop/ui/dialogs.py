"""Small dialogs: send a message, confirm a destructive action.

All of them are modeless (``show``/``open``), never ``exec``: a nested Qt
event loop would run asyncio callbacks re-entrantly on the qasync loop.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from presence_protocol import limits

from .fit import fit_on_show, tool_dialog


class SendMessageDialog(QDialog):
    """One message to one friend; Send stays disabled while the text is empty or too long."""

    def __init__(
        self,
        login: str,
        send: Callable[[str], None],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Message to {login}")
        tool_dialog(self)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self._send = send
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"To <b>{_escape(login)}</b>"))
        self.text = QPlainTextEdit()
        self.text.setPlaceholderText("Write a message…")
        self.text.setMinimumSize(320, 110)
        layout.addWidget(self.text)
        self.counter = QLabel()
        self.counter.setAlignment(Qt.AlignmentFlag.AlignRight)
        layout.addWidget(self.counter)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.send_button = QPushButton("Send")
        self.send_button.setDefault(True)
        self.buttons.addButton(self.send_button, QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.accepted.connect(self._on_send)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.text.textChanged.connect(self._update)
        self._update()

    def _update(self) -> None:
        n = len(self.text.toPlainText().strip())
        over = n > limits.MAX_MESSAGE_CHARS
        self.counter.setText(f"{n} / {limits.MAX_MESSAGE_CHARS}")
        self.counter.setStyleSheet("color: #e5534b;" if over else "")
        self.send_button.setEnabled(n > 0 and not over)

    def _on_send(self) -> None:
        text = self.text.toPlainText().strip()
        if not text or len(text) > limits.MAX_MESSAGE_CHARS:
            return
        self._send(text)
        self.accept()


def confirm(
    parent: QWidget | None,
    title: str,
    text: str,
    action: str,
    on_yes: Callable[[], None],
) -> QMessageBox:
    """Ask before something that cannot be undone from the app; returns the open box.

    Cancel is the default button: Enter, pressed out of habit or meant for the
    window behind, must not sign a device out or clear a history. The action
    takes a deliberate click, its mnemonic or Tab then Space."""
    box = QMessageBox(parent)
    box.setWindowTitle(title)
    box.setText(text)
    box.setIcon(QMessageBox.Icon.Question)
    yes = box.addButton(action, QMessageBox.ButtonRole.DestructiveRole)
    cancel = box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(cancel)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    fit_on_show(box)

    def done(_result: int) -> None:
        if box.clickedButton() is yes:
            on_yes()

    box.finished.connect(done)
    box.open()
    return box


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
