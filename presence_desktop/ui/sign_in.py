"""The sign-in window: shows where a GitHub sign-in stands and relays the person's choices.

It decides nothing. It renders each ``SignInStatus`` of a ``GitHubSignIn``
and turns buttons into calls on it (open the browser again, switch to a
code, cancel), or hands over to VS Code's GitHub account when that is on
offer (``EditorSignIn``). "Copy the link" is always there, because a browser that
opens on another desktop or not at all is common on Linux. Modeless, like
every dialog here: ``exec`` would nest a Qt loop inside the asyncio loop.
"""

from __future__ import annotations

import html
from collections.abc import Callable

from PySide6.QtCore import Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QCloseEvent, QDesktopServices, QFont, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QLayout,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from presence_desktop.net.oauth import GitHubSignIn, Phase, SignInStatus
from presence_desktop.ui.fit import tool_dialog

from .menus import EDITOR_SIGN_IN_TEXT, EditorSignIn

_WAITING = {Phase.STARTING, Phase.READY, Phase.WAITING_FOR_BROWSER, Phase.BROWSER_NOT_OPENED}
_OPENABLE = {Phase.READY, Phase.WAITING_FOR_BROWSER, Phase.BROWSER_NOT_OPENED}
_ENDED = {Phase.DONE, Phase.FAILED, Phase.CANCELLED}


def _open_url(url: str) -> None:
    QDesktopServices.openUrl(QUrl(url))


class SignInWindow(QDialog):
    """Progress of one sign-in attempt; ``retry_requested`` asks the app for a new one."""

    retry_requested = Signal()

    def __init__(
        self,
        sign_in: GitHubSignIn,
        parent: QWidget | None = None,
        *,
        open_url: Callable[[str], object] = _open_url,
        editor_sign_in: EditorSignIn | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Sign in to Presence")
        tool_dialog(self)
        self._editor_sign_in = editor_sign_in
        self._open_url = open_url
        self._sign_in: GitHubSignIn | None = None
        self._verification_uri = ""

        layout = QVBoxLayout(self)
        # Grow and shrink with the wrapped text of each phase instead of clipping it.
        layout.setSizeConstraint(QLayout.SizeConstraint.SetFixedSize)
        self.heading = QLabel()
        heading_font = self.heading.font()
        heading_font.setBold(True)
        heading_font.setPointSizeF(heading_font.pointSizeF() * 1.2)
        self.heading.setFont(heading_font)
        layout.addWidget(self.heading)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setMinimumWidth(400)  # one width for every phase: no jumping window
        self.message.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
            | Qt.TextInteractionFlag.LinksAccessibleByMouse
        )
        self.message.setOpenExternalLinks(False)
        self.message.linkActivated.connect(self._open_url)
        layout.addWidget(self.message)
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)  # busy: we cannot know how long the person takes
        self.progress.setTextVisible(False)
        layout.addWidget(self.progress)

        # The device code, big enough to read out and type on another machine.
        self.code_row = QWidget()
        code_layout = QHBoxLayout(self.code_row)
        code_layout.setContentsMargins(0, 0, 0, 0)
        self.user_code = QLabel()
        code_font = QFont("monospace")
        code_font.setStyleHint(QFont.StyleHint.Monospace)
        code_font.setPointSizeF(self.font().pointSizeF() * 2)
        code_font.setBold(True)
        self.user_code.setFont(code_font)
        self.user_code.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        code_layout.addWidget(self.user_code, 1)
        self.copy_code = QPushButton("Copy code")
        self.copy_code.clicked.connect(lambda: self._copy(self.user_code.text(), self.copy_code))
        code_layout.addWidget(self.copy_code)
        self.open_page = QPushButton("Open the page")
        self.open_page.clicked.connect(self._on_open_page)
        code_layout.addWidget(self.open_page)
        layout.addWidget(self.code_row)

        # The authorize link, for when no browser opened (or it opened elsewhere).
        self.link_row = QWidget()
        link_layout = QHBoxLayout(self.link_row)
        link_layout.setContentsMargins(0, 0, 0, 0)
        self.link = QLineEdit()
        self.link.setReadOnly(True)
        link_layout.addWidget(self.link, 1)
        self.copy_link = QPushButton("Copy the link")
        self.copy_link.clicked.connect(lambda: self._copy(self.link.text(), self.copy_link))
        link_layout.addWidget(self.copy_link)
        layout.addWidget(self.link_row)

        buttons = QHBoxLayout()
        self.open_again = QPushButton("Open browser again")
        self.open_again.clicked.connect(self._on_open_again)
        buttons.addWidget(self.open_again)
        self.use_code = QPushButton("Use a code instead")
        self.use_code.clicked.connect(self._on_use_code)
        buttons.addWidget(self.use_code)
        self.use_editor = QPushButton(EDITOR_SIGN_IN_TEXT)
        self.use_editor.setToolTip("VS Code asks you first; no browser needed")
        self.use_editor.clicked.connect(self._on_use_editor)
        buttons.addWidget(self.use_editor)
        if editor_sign_in is not None:
            editor_sign_in.offer_changed.connect(lambda _offered: self._show_editor_choice())
        buttons.addStretch(1)
        self.retry = QPushButton("Try again")
        self.retry.clicked.connect(self.retry_requested.emit)
        buttons.addWidget(self.retry)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self._on_cancel)
        buttons.addWidget(self.cancel_button)
        layout.addLayout(buttons)

        self.attach(sign_in)

    # ------------------------------------------------------------ wiring

    def attach(self, sign_in: GitHubSignIn) -> None:
        """Follow a (new) attempt; the window is reused for "Try again"."""
        if self._sign_in is not None:
            self._sign_in.status.disconnect(self.show_status)
        self._sign_in = sign_in
        sign_in.status.connect(self.show_status)
        self.show_status(sign_in.current)

    def show_status(self, status: SignInStatus) -> None:
        phase = status.phase
        heading, text = _WORDS.get(phase, ("", ""))
        if phase is Phase.FAILED and status.error is not None:
            heading, text = status.error.title, status.error.message
        elif phase is Phase.READY and status.error is not None:
            heading, text = status.error.title, status.error.message or text
        self.heading.setText(heading)
        self.message.setText(text)
        self.progress.setVisible(
            phase in _WAITING - {Phase.READY} or phase in (Phase.DEVICE_CODE, Phase.FINISHING)
        )
        self.code_row.setVisible(phase is Phase.DEVICE_CODE)
        if phase is Phase.DEVICE_CODE:
            self.user_code.setText(status.user_code)
            self._verification_uri = status.verification_uri
            self.message.setText(
                f"Open <a href='{html.escape(status.verification_uri)}'>"
                f"{html.escape(status.verification_uri)}</a> on any device and enter this code:"
            )
            self.message.setTextFormat(Qt.TextFormat.RichText)
        else:
            self.message.setTextFormat(Qt.TextFormat.PlainText)
        if status.url:
            self.link.setText(status.url)
            self.link.setCursorPosition(0)
        self.link_row.setVisible(phase in _WAITING and bool(self.link.text()))
        self.open_again.setVisible(phase in _OPENABLE)
        self.open_again.setText("Open browser" if phase is Phase.READY else "Open browser again")
        if phase is Phase.READY:
            self.open_again.setDefault(True)
        self.use_code.setVisible(status.device_flow_available and phase in _OPENABLE)
        self.retry.setVisible(phase in (Phase.FAILED, Phase.CANCELLED))
        self._show_editor_choice()
        self.cancel_button.setText("Close" if phase in _ENDED else "Cancel")
        if phase is Phase.BROWSER_NOT_OPENED:
            self.copy_link.setDefault(True)
        if phase is Phase.DONE:
            self.accept()

    def _show_editor_choice(self) -> None:
        phase = self._sign_in.current.phase if self._sign_in is not None else Phase.CANCELLED
        offered = self._editor_sign_in is not None and self._editor_sign_in.can_offer_editor_sign_in
        self.use_editor.setVisible(
            offered and (phase in _OPENABLE or phase in (Phase.FAILED, Phase.CANCELLED))
        )

    # ------------------------------------------------------------ buttons

    def _on_use_editor(self) -> None:
        """Hand over to VS Code: this browser attempt ends, VS Code asks the person."""
        if self._editor_sign_in is None:
            return
        if self._sign_in is not None and self._sign_in.current.phase not in _ENDED:
            self._sign_in.cancel()
        if self._editor_sign_in.request_editor_sign_in():
            self.reject()

    def _copy(self, text: str, button: QPushButton) -> None:
        QGuiApplication.clipboard().setText(text)
        label = button.text()
        button.setText("Copied")
        QTimer.singleShot(1500, lambda: button.setText(label))

    def _on_open_page(self) -> None:
        if self._verification_uri:
            self._open_url(self._verification_uri)

    def _on_open_again(self) -> None:
        if self._sign_in is not None:
            self._sign_in.open_browser_again()

    def _on_use_code(self) -> None:
        if self._sign_in is not None:
            self._sign_in.use_device_flow()

    def _on_cancel(self) -> None:
        if self._sign_in is not None and self._sign_in.current.phase not in _ENDED:
            self._sign_in.cancel()
        self.reject()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._sign_in is not None and self._sign_in.current.phase not in _ENDED:
            self._sign_in.cancel()
        super().closeEvent(event)


_WORDS: dict[Phase, tuple[str, str]] = {
    Phase.STARTING: ("Starting sign-in…", ""),
    Phase.READY: ("Sign in again", "Sign in with GitHub to reconnect."),
    Phase.WAITING_FOR_BROWSER: (
        "Continue in your browser",
        "GitHub opened in your browser. Approve Presence there; this window closes "
        "by itself. If no browser appeared, copy the link into one.",
    ),
    Phase.BROWSER_NOT_OPENED: (
        "Open this link in a browser",
        "No browser could be started. Copy the link below, open it in a browser on "
        "this computer and approve Presence.",
    ),
    Phase.DEVICE_CODE: ("Enter the code on GitHub", ""),
    Phase.FINISHING: ("Finishing sign-in…", "GitHub said yes; connecting to the server."),
    Phase.DONE: ("Signed in", ""),
    Phase.FAILED: ("Sign-in failed", ""),
    Phase.CANCELLED: ("Sign-in cancelled", "You can try again whenever you like."),
}
