"""The notification adapter chain: order, fallback, cool-down, clicks."""

from __future__ import annotations

from collections.abc import Callable

from presence_desktop.core.api import Alert, AlertKind
from presence_desktop.ui.notifications import LogBackend, Notifier, TrayMessageBackend

from .helpers import next_emit

ALERT = Alert(AlertKind.FRIEND_ONLINE, "alice is online", "Coding · Rust", (2,))


class Scripted:
    """A back-end that answers from a script and remembers what it was given."""

    def __init__(self, name: str, *answers: bool | Exception, retry: float = 0.0) -> None:
        self.name = name
        self.retry_after_failure = retry
        self.answers = list(answers)
        self.seen: list[Alert] = []
        self.click: Callable[[], None] | None = None
        self.closed = False

    async def show(self, alert: Alert, on_click: Callable[[], None]) -> bool:
        self.seen.append(alert)
        self.click = on_click
        answer = self.answers.pop(0) if self.answers else True
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def aclose(self) -> None:
        self.closed = True


async def test_first_backend_that_accepts_wins() -> None:
    native, tray = Scripted("native", True), Scripted("tray", True)
    notifier = Notifier([native, tray])
    assert await notifier.deliver(ALERT) == "native"
    assert native.seen == [ALERT]
    assert tray.seen == []


async def test_failure_falls_back_and_failing_backend_cools_down() -> None:
    clock = [100.0]
    native = Scripted("native", ConnectionError("no bus"), retry=300.0)
    tray = Scripted("tray", False)
    log = LogBackend()
    notifier = Notifier([native, tray, log], monotonic=lambda: clock[0])
    assert await notifier.deliver(ALERT) == "log"
    assert len(native.seen) == 1 and len(tray.seen) == 1
    # Within the cool-down the native back-end is not asked again.
    assert await notifier.deliver(ALERT) == "tray"
    assert len(native.seen) == 1
    clock[0] += 301
    assert await notifier.deliver(ALERT) == "native"
    assert len(native.seen) == 2


async def test_show_runs_on_the_loop_and_reports_shown_then_clicked() -> None:
    native = Scripted("native", True)
    notifier = Notifier([native])
    notifier.show(ALERT)
    name, alert = await next_emit(notifier.shown)
    assert (name, alert) == ("native", ALERT)
    assert native.click is not None
    clicked = []
    notifier.clicked.connect(clicked.append)
    native.click()
    assert clicked == [ALERT]
    await notifier.aclose()
    assert native.closed
    notifier.show(ALERT)  # after close: ignored, no task, no error
    assert len(native.seen) == 1


async def test_tray_backend_declines_without_a_visible_tray() -> None:
    backend = TrayMessageBackend(lambda: None, icon=None)  # type: ignore[arg-type]
    assert await backend.show(ALERT, lambda: None) is False
