"""Desktop notifications through an adapter chain with fallback.

The core decides *whether* to alert (``controller.alerts``); this module only
decides *where* it can be shown: the platform's notification service through
desktop-notifier (freedesktop Notifications over D-Bus, the macOS and Windows
centres), else the tray icon's balloon, else the log. A back-end that fails
is skipped for a while so a missing D-Bus service does not cost a timeout per
alert. Clicking a notification, wherever it was shown, emits ``clicked``.

Notifications act (issue 17): a message shows the friend's avatar and a
Reply field where the notification service has one (desktop-notifier reports
its capabilities), else a Reply button that opens the conversation; a friend
request has Accept and Decline. Each friend has at most one notification of a
kind on screen: a newer one replaces it instead of piling up. What to offer is
decided by ``plan_actions`` (pure), so it is tested without a service.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import functools
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QSystemTrayIcon

from ..core.api import Alert, AlertKind

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


class Offer(enum.Enum):
    """An action a notification carries besides a click on its body."""

    REPLY_FIELD = "reply_field"
    """Type the answer in the notification itself."""
    REPLY_BUTTON = "reply_button"
    """A Reply button that opens the conversation (no reply field on this platform)."""
    ACCEPT_DECLINE = "accept_decline"


def plan_actions(alert: Alert, *, can_reply: bool, can_buttons: bool) -> Offer | None:
    """What a notification for ``alert`` offers, given what the service supports.

    Only alerts about one person act: "3 messages from alice and bob" has no
    single conversation to answer, so a click opens the list instead.
    """
    if len(alert.user_ids) != 1:
        return None
    if alert.kind is AlertKind.MESSAGE:
        if can_reply:
            return Offer.REPLY_FIELD
        return Offer.REPLY_BUTTON if can_buttons else None
    if alert.kind is AlertKind.FRIEND_REQUEST and can_buttons:
        return Offer.ACCEPT_DECLINE
    return None


@dataclasses.dataclass(frozen=True, slots=True)
class AlertHandlers:
    """What the notification's own controls do (the ui wires them to the core)."""

    reply: Callable[[int, str], None]
    """Send this text to this friend (the Reply field)."""
    open_conversation: Callable[[int], None]
    accept: Callable[[int], None]
    decline: Callable[[int], None]
    avatar: Callable[[int], Path | None] = lambda _user_id: None
    """A local image file of the person's avatar, if one is cached."""


class DesktopNotifierBackend:
    """The platform's own notification centre, via the desktop-notifier package."""

    name = "desktop-notifier"
    retry_after_failure = RETRY_AFTER_FAILURE

    def __init__(
        self,
        icon_path: Path | None = None,
        app_name: str = APP_NAME,
        handlers: AlertHandlers | None = None,
    ) -> None:
        self._icon_path = icon_path
        self._app_name = app_name
        self._notifier: Any = None
        self._handlers = handlers
        self._on_screen: dict[tuple[AlertKind, int], str] = {}
        """The notification shown per (kind, friend): a newer one replaces it."""
        self.last_offer: Offer | None = None
        """What the last notification offered (tests and logs)."""

    @staticmethod
    def supported() -> bool:
        """False where desktop-notifier would only pretend (its dummy back-end)."""
        if sys.platform.startswith("linux"):
            # Its Linux back-end is always the D-Bus one: say so without importing
            # it (and dbus_fast) at start-up; it loads with the first notification.
            return True
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
        from desktop_notifier import Button, Capability, Icon, Notification, ReplyField

        notifier = self._get()
        dispatched = asyncio.Event()
        extra: dict[str, Any] = {}
        handlers = self._handlers
        offer = None
        uid = alert.user_ids[0] if alert.user_ids else None
        if handlers is not None and uid is not None:
            caps = await asyncio.wait_for(notifier.get_capabilities(), SEND_TIMEOUT)
            offer = plan_actions(
                alert,
                can_reply=Capability.REPLY_FIELD in caps,
                can_buttons=Capability.BUTTONS in caps,
            )
            avatar = handlers.avatar(uid)
            if avatar is not None and avatar.exists():
                extra["icon"] = Icon(path=avatar)
            if offer is Offer.REPLY_FIELD:
                extra["reply_field"] = ReplyField(
                    title="Reply",
                    button_title="Send",
                    on_replied=functools.partial(_reply, handlers, uid),
                )
            elif offer is Offer.REPLY_BUTTON:
                extra["buttons"] = (
                    Button("Reply", on_pressed=functools.partial(handlers.open_conversation, uid)),
                )
            elif offer is Offer.ACCEPT_DECLINE:
                extra["buttons"] = (
                    Button("Accept", on_pressed=functools.partial(handlers.accept, uid)),
                    Button("Decline", on_pressed=functools.partial(handlers.decline, uid)),
                )
        self.last_offer = offer
        notification = Notification(
            title=alert.title,
            message=alert.body,
            on_clicked=on_click,
            on_dispatched=dispatched.set,
            **extra,
        )
        key = (alert.kind, uid) if uid is not None and len(alert.user_ids) == 1 else None
        previous = self._on_screen.pop(key, None) if key is not None else None
        if previous is not None:
            # desktop-notifier cannot pass the service's replaces_id; closing the
            # old one right before showing the new one looks the same: one per friend.
            await asyncio.wait_for(notifier.clear(previous), SEND_TIMEOUT)
        # desktop-notifier logs and swallows failures; "dispatched" is the only
        # reliable sign that the service accepted the notification.
        identifier = await asyncio.wait_for(notifier.send_notification(notification), SEND_TIMEOUT)
        if key is not None and dispatched.is_set():
            self._on_screen[key] = str(identifier)
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


def _reply(handlers: AlertHandlers, user_id: int, text: str) -> None:
    text = text.strip()
    if text:
        handlers.reply(user_id, text)
    else:
        handlers.open_conversation(user_id)  # an empty reply: let them write it there


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
