"""The sign-in window shows each phase and relays the person's clicks (offscreen Qt)."""

from __future__ import annotations

from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot

from presence_desktop.core.api import UserError
from presence_desktop.core.events import Signal
from presence_desktop.net.oauth import GitHubSignIn, Phase, SignInStatus
from presence_desktop.ui.sign_in import SignInWindow
from presence_desktop.ui.sign_in_windows import SignInWindows
from presence_protocol import GitHubConfig

URL = "https://github.example/login/oauth/authorize?client_id=x&state=s"


class ScriptedSignIn(GitHubSignIn):
    """A sign-in whose status the test sets, recording what the window asks for."""

    def __init__(self, device_flow: bool = True) -> None:
        super().__init__(GitHubConfig(client_id="x", device_flow=device_flow))
        self.calls: list[str] = []

    def show(self, status: SignInStatus) -> None:
        self.current = status
        self.status.emit(status)

    def open_browser_again(self) -> None:
        self.calls.append("open_again")

    def use_device_flow(self) -> None:
        self.calls.append("device")

    def cancel(self) -> None:
        self.calls.append("cancel")


def _window(qtbot: QtBot, sign_in: GitHubSignIn, opened: list[str] | None = None) -> SignInWindow:
    window = SignInWindow(sign_in, open_url=(opened.append if opened is not None else print))
    qtbot.addWidget(window)
    window.show()
    return window


def test_waiting_for_browser(qtbot: QtBot) -> None:
    sign_in = ScriptedSignIn()
    window = _window(qtbot, sign_in)
    sign_in.show(SignInStatus(Phase.WAITING_FOR_BROWSER, url=URL, device_flow_available=True))
    assert window.heading.text() == "Continue in your browser"
    assert window.progress.isVisible()
    assert window.link_row.isVisible() and window.link.text() == URL
    assert window.open_again.isVisible() and window.use_code.isVisible()
    assert not window.code_row.isVisible() and not window.retry.isVisible()
    window.open_again.click()
    window.use_code.click()
    assert sign_in.calls == ["open_again", "device"]


def test_no_browser_makes_copy_the_link_the_default(qtbot: QtBot) -> None:
    sign_in = ScriptedSignIn(device_flow=False)
    window = _window(qtbot, sign_in)
    sign_in.show(SignInStatus(Phase.BROWSER_NOT_OPENED, url=URL))
    assert "No browser" in window.message.text()
    assert window.copy_link.isDefault()
    assert not window.use_code.isVisible()
    window.copy_link.click()
    assert QGuiApplication.clipboard().text() == URL
    assert window.copy_link.text() == "Copied"
    # The label comes back after 1.5 s; the wait is a hang guard, not a bound.
    qtbot.waitUntil(lambda: window.copy_link.text() == "Copy the link", timeout=15_000)


def test_device_code_can_be_copied_and_its_page_opened(qtbot: QtBot) -> None:
    sign_in = ScriptedSignIn()
    opened: list[str] = []
    window = _window(qtbot, sign_in, opened)
    sign_in.show(
        SignInStatus(
            Phase.DEVICE_CODE,
            user_code="WDJB-MJHT",
            verification_uri="https://github.example/login/device",
            device_flow_available=True,
        )
    )
    assert window.code_row.isVisible() and window.user_code.text() == "WDJB-MJHT"
    assert "https://github.example/login/device" in window.message.text()
    assert not window.link_row.isVisible() and not window.open_again.isVisible()
    window.copy_code.click()
    assert QGuiApplication.clipboard().text() == "WDJB-MJHT"
    window.open_page.click()
    assert opened == ["https://github.example/login/device"]


def test_failure_shows_the_error_and_offers_retry(qtbot: QtBot) -> None:
    sign_in = ScriptedSignIn()
    window = _window(qtbot, sign_in)
    retries: list[bool] = []
    window.retry_requested.connect(lambda: retries.append(True))
    error = UserError("Access was declined on GitHub", "Sign in again and choose Authorize.")
    sign_in.show(SignInStatus(Phase.FAILED, error=error))
    assert window.heading.text() == error.title and window.message.text() == error.message
    assert not window.progress.isVisible()
    assert window.cancel_button.text() == "Close"
    window.retry.click()
    assert retries == [True]
    window.cancel_button.click()
    assert "cancel" not in sign_in.calls  # nothing left to cancel
    assert not window.isVisible()


def test_cancel_and_closing_cancel_the_attempt(qtbot: QtBot) -> None:
    sign_in = ScriptedSignIn()
    window = _window(qtbot, sign_in)
    sign_in.show(SignInStatus(Phase.WAITING_FOR_BROWSER, url=URL))
    window.cancel_button.click()
    assert sign_in.calls == ["cancel"] and not window.isVisible()

    other = ScriptedSignIn()
    window2 = _window(qtbot, other)
    other.show(SignInStatus(Phase.DEVICE_CODE, user_code="AAAA-BBBB"))
    window2.close()
    assert other.calls == ["cancel"]


def test_done_closes_the_window_and_retry_reattaches(qtbot: QtBot) -> None:
    first = ScriptedSignIn()
    window = _window(qtbot, first)
    first.show(SignInStatus(Phase.CANCELLED))
    assert window.retry.isVisible()
    second = ScriptedSignIn()
    window.attach(second)
    first.show(SignInStatus(Phase.FAILED))  # the old attempt no longer drives the window
    second.show(SignInStatus(Phase.WAITING_FOR_BROWSER, url=URL))
    assert window.heading.text() == "Continue in your browser"
    second.show(SignInStatus(Phase.DONE))
    assert not window.isVisible()


def test_ready_after_a_revoked_session_waits_for_a_click(qtbot: QtBot) -> None:
    sign_in = ScriptedSignIn()
    window = _window(qtbot, sign_in)
    reason = UserError("Signed out", "This device was signed out, perhaps from another device.")
    sign_in.show(SignInStatus(Phase.READY, url=URL, error=reason, device_flow_available=True))
    assert window.heading.text() == "Signed out"
    assert reason.message in window.message.text()
    assert not window.progress.isVisible()
    assert window.open_again.text() == "Open browser" and window.open_again.isDefault()
    assert window.link_row.isVisible() and window.use_code.isVisible()
    window.open_again.click()
    assert sign_in.calls == ["open_again"]


def test_sign_in_windows_follow_the_core(qtbot: QtBot) -> None:
    started = Signal[GitHubSignIn]()
    retries: list[bool] = []
    windows = SignInWindows(started, lambda: retries.append(True))
    first = ScriptedSignIn()
    first.show(SignInStatus(Phase.WAITING_FOR_BROWSER, url=URL))
    started.emit(first)
    window = windows.window
    assert window is not None and window.isVisible()
    qtbot.addWidget(window)
    first.show(SignInStatus(Phase.FAILED, error=UserError("Sign-in failed", "no")))
    window.retry.click()
    assert retries == [True]
    second = ScriptedSignIn()
    started.emit(second)
    assert windows.window is window  # reused, now following the new attempt
    second.show(SignInStatus(Phase.DONE))
    assert not window.isVisible()
    windows.close()


class OfferedEditor:
    """Stands in for ``EditorLink``: VS Code's account can be offered or not."""

    def __init__(self, offered: bool) -> None:
        self.offer_changed = Signal[bool]()
        self.can_offer_editor_sign_in = offered
        self.waiting_for_editor = False
        self.requests = 0

    def request_editor_sign_in(self) -> bool:
        self.requests += 1
        return True


def test_vs_codes_account_is_a_choice_only_while_it_is_on_offer(qtbot: QtBot) -> None:
    sign_in = ScriptedSignIn()
    editor = OfferedEditor(offered=False)
    window = SignInWindow(sign_in, open_url=print, editor_sign_in=editor)
    qtbot.addWidget(window)
    window.show()
    reason = UserError("Signed out", "Your session was revoked.", "signed_out")
    sign_in.show(SignInStatus(Phase.READY, url=URL, error=reason))
    assert not window.use_editor.isVisible()
    editor.can_offer_editor_sign_in = True
    editor.offer_changed.emit(True)
    assert window.use_editor.isVisible()
    assert window.use_editor.text() == "Use VS Code's GitHub account"
    sign_in.show(SignInStatus(Phase.FINISHING))
    assert not window.use_editor.isVisible()  # GitHub already said yes in the browser
    sign_in.show(SignInStatus(Phase.WAITING_FOR_BROWSER, url=URL))
    window.use_editor.click()
    assert sign_in.calls == ["cancel"] and editor.requests == 1
    assert not window.isVisible()
