"""Opens the sign-in window whenever the core starts a GitHub sign-in attempt.

Apart from ``ui.sign_in`` because the tray creates this at start-up and a
signed-in start never shows the window: the window's module (and the OAuth
flow it imports) loads with the first attempt (issue 18: RSS).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject

from presence_desktop.core.events import Signal as CoreSignal

if TYPE_CHECKING:
    from presence_desktop.net.oauth import GitHubSignIn
    from presence_desktop.ui.sign_in import SignInWindow

    from .menus import EditorSignIn


class SignInWindows(QObject):
    """Shows the sign-in window whenever the core starts an attempt; one window, reused."""

    def __init__(
        self,
        started: CoreSignal[GitHubSignIn],
        retry: Callable[[], None],
        parent: QObject | None = None,
        *,
        editor_sign_in: EditorSignIn | None = None,
    ) -> None:
        super().__init__(parent)
        self._retry = retry
        self._editor_sign_in = editor_sign_in
        self.window: SignInWindow | None = None
        started.connect(self.show_attempt)

    def show_attempt(self, sign_in: GitHubSignIn) -> None:
        from presence_desktop.net.oauth import Phase
        from presence_desktop.ui.sign_in import SignInWindow

        if self.window is None:
            self.window = SignInWindow(sign_in, editor_sign_in=self._editor_sign_in)
            self.window.retry_requested.connect(self._retry)
        else:
            self.window.attach(sign_in)
        if sign_in.current.phase is not Phase.DONE:
            self.window.show()
            self.window.raise_()
            self.window.activateWindow()

    def close(self) -> None:
        if self.window is not None:
            self.window.close()
