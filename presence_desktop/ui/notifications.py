"""Desktop notifications through an adapter chain with fallback.

The core decides *whether* to alert (``controller.alerts``); this module only
decides *where* it can be shown: the platform's notification service through
desktop-notifier (freedesktop Notifications over D-Bus, the macOS and Windows
centres), else the tray icon's balloon, else the log. A back-end that fails
is skipped for a while so a missing D-Bus service does not cost a timeout per
alert. Clicking a notification, wherever it was shown, emits ``clicked``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QSystemTrayIcon

from ..core.api import Alert

log = logging.getLogger(__name__)

SEND_TIMEOUT = 5.0
RETRY_AFTER_FAILURE = 300.0
APP_NAME = "Presence"


class Backend(Protocol):
    name: str
    retry_after_failure: float
    """Seconds to skip this back-end after it failed (0: try it every time)."""

    async def show(self, alert: Alert, on_click: Callable[[], None]) -> bool:
        """True when the alert reached the person's screen (as far as we can know)."""
        ...

    async def aclose(self) -> None: ...


class DesktopNotifierBackend:
    """The platform's own notification centre, via the desktop-notifier package."""

    name = "desktop-notifier"
    retry_after_failure = RETRY_AFTER_FAILURE

    def __init__(self, icon_path: Path | None = None, app_name: str = APP_NAME) -> None:
        self._icon_path = icon_path
        self._app_name = app_name
        self._notifier: Any = None

    @staticmethod
    def supported() -> bool:
        """False where desktop-notifier would only pretend (its dummy back-end)."""
        try:
            from desktop_notifier.main import get_backend_class
        except Exception:  # pragma: no cover - broken install
            return False
        try:
            return get_backend_class().__name__ != "DummyNotificationCenter"
        except Exception:
            return False

    def _get(self) -> Any:
        if self._notifier is None:
            from desktop_notifier import DesktopNotifier, Icon

            icon = Icon(path=self._icon_path) if self._icon_path else None
            self._notifier = DesktopNotifier(app_name=self._app_name, app_icon=icon)
        return self._notifier

    async def show(self, alert: Alert, on_click: Callable[[], None]) -> bool:
        from desktop_notifier import Notification

        dispatched = asyncio.Event()
        notification = Notification(
            title=alert.title,
            message=alert.body,
            on_clicked=on_click,
            on_dispatched=dispatched.set,
        )
        # desktop-notifier logs and swallows failures; "dispatched" is the only
        # reliable sign that the service accepted the notification.
        await asyncio.wait_for(self._get().send_notification(notification), SEND_TIMEOUT)
        return dispatched.is_set()

    async def aclose(self) -> None:
        backend = getattr(self._notifier, "_backend", None)
        bus = getattr(backend, "bus", None)
        if bus is not None:
            bus.disconnect()
            try:
                await asyncio.wait_for(bus.wait_for_disconnect(), 2.0)
            except Exception:
                log.debug("notification bus did not close cleanly", exc_info=True)
        self._notifier = None


class TrayMessageBackend:
    """Qt's tray balloon: works wherever a tray icon is visible."""

    name = "tray"
    retry_after_failure = 0.0

    def __init__(self, tray_icon: Callable[[], QSystemTrayIcon | None], icon: QIcon) -> None:
        self._tray_icon = tray_icon
        self._icon = icon
        self._on_click: Callable[[], None] | None = None
        self._connected: QSystemTrayIcon | None = None

    async def show(self, alert: Alert, on_click: Callable[[], None]) -> bool:
        tray = self._tray_icon()
        if tray is None or not tray.isVisible() or not QSystemTrayIcon.supportsMessages():
            return False
        if self._connected is not tray:
            tray.messageClicked.connect(self._clicked)
            self._connected = tray
        self._on_click = on_click
        tray.showMessage(alert.title, alert.body or alert.title, self._icon, 8000)
        return True

    def _clicked(self) -> None:
        if self._on_click is not None:
            self._on_click()

    async def aclose(self) -> None:
        self._on_click = None


class LogBackend:
    """The last resort: nothing can show it, so at least the log says it happened."""

    name = "log"
    retry_after_failure = 0.0

    async def show(self, alert: Alert, on_click: Callable[[], None]) -> bool:
        log.info("notification (no service to show it): %s", alert.title)
        return True

    async def aclose(self) -> None:
        return None


class Notifier(QObject):
    shown = Signal(str, object)
    """Back-end name and the Alert, once one back-end took it."""
    clicked = Signal(object)
    """The person clicked the notification of this Alert."""

    def __init__(
        self,
        backends: list[Backend],
        *,
        monotonic: Callable[[], float] = time.monotonic,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.backends = backends
        self._monotonic = monotonic
        self._skip_until: dict[str, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    def show(self, alert: Alert) -> None:
        """Start showing ``alert`` on the loop; returns at once."""
        if self._closed:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            log.warning("no event loop: notification dropped: %s", alert.title)
            return
        task = loop.create_task(self._deliver_quietly(alert))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver_quietly(self, alert: Alert) -> None:
        await self.deliver(alert)

    async def deliver(self, alert: Alert) -> str | None:
        """Try each back-end in order; returns the name of the one that showed it."""
        now = self._monotonic()
        for backend in self.backends:
            if self._skip_until.get(backend.name, 0.0) > now:
                continue
            try:
                ok = await backend.show(alert, functools.partial(self.clicked.emit, alert))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.info(
                    "notification back-end %s failed: %s", backend.name, exc or type(exc).__name__
                )
                ok = False
            if ok:
                self.shown.emit(backend.name, alert)
                return backend.name
            if backend.retry_after_failure:
                self._skip_until[backend.name] = now + backend.retry_after_failure
        return None

    async def aclose(self) -> None:
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for backend in self.backends:
            try:
                await backend.aclose()
            except Exception:
                log.debug("closing %s failed", backend.name, exc_info=True)
