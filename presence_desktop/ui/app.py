"""Wires the ui to the core: tray (or a window where there is no tray), popup,
menus, notifications and dialogs.

``DesktopUi`` receives everything it shows and calls from outside — the
presence state, the connection events, the actions, the alerts — so the same
ui runs against the real controller, the demo, or a test fake.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from PySide6.QtCore import QObject, QRect, Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QMessageBox, QSystemTrayIcon, QWidget

from ..core.api import Alert, AlertKind, AppActions, ConnectionEvents, ConversationActions
from ..core.events import Signal as CoreSignal
from ..core.format import activity_line
from ..core.settings import SettingsStore, WindowGeometry
from ..core.state import PresenceState
from ..platform.bundle import resources_dir
from ..platform.vscode import InstallResult
from .avatars import AvatarStore
from .countdown import Countdown
from .extension import ExtensionInstaller
from .friends_model import FriendsModel
from .icons import IconFactory
from .menus import AppMenu, EditorSignIn
from .notifications import (
    AlertHandlers,
    Backend,
    DesktopNotifierBackend,
    LogBackend,
    Notifier,
    TrayMessageBackend,
)
from .notify_avatar import initials_avatar
from .present import Badge
from .sharing import SharingService
from .sign_in_windows import SignInWindows
from .tray import Tray

if TYPE_CHECKING:
    import httpx

    from .panel import FriendsPanel
    from .popup import MainWindow, PopupWindow
    from .settings_dialog import SettingsDialog

log = logging.getLogger(__name__)

MAIN_WINDOW = "main"
"""Key of the fallback window's geometry in the runtime state."""

NO_TRAY_NOTICE = (
    "This desktop has no system tray, so Presence runs as a window. Closing it quits the app."
)


class Core(Protocol):
    """What the ui needs from the controller besides ``AppActions``."""

    state: PresenceState
    connection: ConnectionEvents
    alerts: CoreSignal[Alert]


def early_tray_icon(icons: IconFactory, tooltip: str) -> QSystemTrayIcon | None:
    """A tray icon to show before the core is ready (hand it to ``DesktopUi``)."""
    if not QSystemTrayIcon.isSystemTrayAvailable():
        return None
    icon = QSystemTrayIcon(icons.icon(Badge.DISCONNECTED))
    icon.setToolTip(tooltip)
    icon.show()
    return icon


class DesktopUi(QObject):
    quit_requested = Signal()
    """Quit was chosen (menu, or closing the window where there is no tray)."""

    def __init__(
        self,
        core: Core,
        actions: AppActions,
        *,
        cache_dir: Path,
        settings: SettingsStore | None = None,
        tray_available: bool | None = None,
        backends: list[Backend] | None = None,
        icons: IconFactory | None = None,
        tray_icon: QSystemTrayIcon | None = None,
        editors: SharingService | None = None,
        extension: ExtensionInstaller | None = None,
        editor_sign_in: EditorSignIn | None = None,
        avatar_client: Callable[[], httpx.AsyncClient] | None = None,
        server_locked: str = "",
        chat: ConversationActions | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.core = core
        self.actions = actions
        self.settings = settings
        self.editors = editors
        """The editor activity service (issue 5): the "Friends see" previews read it."""
        self.extension = extension
        self._server_locked = server_locked
        self._message_boxes: set[QMessageBox] = set()
        state, connection = core.state, core.connection
        if tray_available is None:
            tray_available = QSystemTrayIcon.isSystemTrayAvailable()
        self.tray_available = tray_available

        self.icons = icons or IconFactory()
        self.avatars = AvatarStore(cache_dir, client_factory=avatar_client, parent=self)
        self._cache_dir = cache_dir
        self.model = FriendsModel(
            state,
            activity_line,
            is_starred=actions.is_starred,
            is_muted=actions.is_muted,
            clock=clock,
            parent=self,
        )
        self.avatars.ready.connect(self.model.refresh)
        self.menu = AppMenu(
            state,
            connection,
            actions,
            self,
            clock=clock,
            extension=extension,
            editor_sign_in=editor_sign_in,
        )
        if extension is not None:
            extension.finished.connect(self.show_install_result)
        self._state, self._connection = state, connection
        self._editors_presence = editors.me if editors is not None else None
        self._chat = chat
        self._clock, self._monotonic = clock, monotonic
        self._panel: FriendsPanel | None = None
        self._popup: PopupWindow | None = None
        self.countdown = Countdown(connection, monotonic=monotonic, parent=self)
        self.countdown.tick.connect(self._on_countdown)

        self.tray: Tray | None = None
        self.window: MainWindow | None = None
        if tray_available:
            self.tray = Tray(
                state,
                connection,
                self.icons,
                self.menu,
                icon=tray_icon,
                clock=clock,
                monotonic=monotonic,
                parent=self,
            )
            self.tray.activated.connect(self.toggle_popup)
            self.countdown.tick.connect(self.tray.update)
            # The popup (panel, list, pages) is built when first opened: a tray
            # app may run for days without it (issue 18: several MiB at start).
        else:
            from .popup import MainWindow

            self.window = MainWindow(self.panel)
            self.window.setWindowIcon(self.icons.icon(None))
            self.window.close_requested.connect(self.request_quit)
            self.panel.set_notice(NO_TRAY_NOTICE)

        if backends is None:
            backends = default_backends(self)
        self.notifier = Notifier(backends, monotonic=monotonic, parent=self)
        self.notifier.clicked.connect(self.on_alert_clicked)
        core.alerts.connect(self.notifier.show)
        self._settings_dialog: SettingsDialog | None = None
        # GitHub sign-in (issue 4): its window opens whenever the core starts an attempt.
        started = getattr(core, "sign_in_started", None)
        self.sign_in_windows = (
            SignInWindows(started, actions.sign_in, parent=self, editor_sign_in=editor_sign_in)
            if started is not None
            else None
        )

    @property
    def panel(self) -> FriendsPanel:
        """The popup's content, built on first use."""
        if self._panel is None:
            # Imported here, with the popup: the panel's modules (list, pages,
            # conversation, first run) are not needed until it first opens.
            from .delegate import FriendDelegate
            from .panel import FriendsPanel

            delegate = FriendDelegate(self.avatars)
            panel = FriendsPanel(
                self._state,
                self._connection,
                self.actions,
                self.model,
                delegate,
                app_menu=self.menu,
                presence=self._editors_presence,
                chat=self._chat,
                clock=self._clock,
                monotonic=self._monotonic,
            )
            panel.settings_requested.connect(lambda: self.open_settings(privacy=True))
            delegate.setParent(panel)
            self._panel = panel
        return self._panel

    @property
    def popup(self) -> PopupWindow | None:
        """The popup next to the tray icon (None where there is no tray), built on first use."""
        if self.tray is None:
            return None
        if self._popup is None:
            from .popup import PopupWindow

            self._popup = PopupWindow(self.panel, monotonic=self._monotonic)
            self._popup.setWindowIcon(self.icons.icon(None))
        return self._popup

    def _on_countdown(self) -> None:
        if self._panel is not None:
            self._panel.update_connection()

    # ---------------------------------------------------------- start / stop

    def start(self) -> None:
        """Make the app visible: the tray icon, or the window where there is no tray."""
        if self.tray is not None:
            self.tray.show()
        else:
            log.info("no system tray available: running as a window")
            self._restore_window()
            self.open_friends()

    def host(self) -> QWidget:
        """The window that currently shows the panel."""
        host = self.popup if self.popup is not None else self.window
        assert host is not None
        return host

    async def aclose(self) -> None:
        self._save_window()
        await self.notifier.aclose()
        await self.avatars.aclose()
        if self.tray is not None:
            self.tray.hide()
        if self.window is not None:
            self.window.allow_close()
            self.window.close()
        if self._popup is not None:
            self._popup.hide()
        if self._settings_dialog is not None:
            self._settings_dialog.close()
        for box in list(self._message_boxes):
            box.close()
        if self.extension is not None and self.extension.task is not None:
            self.extension.task.cancel()
        if self.sign_in_windows is not None:
            self.sign_in_windows.close()

    # ---------------------------------------------------------- navigation (menus)

    def show_panel(self) -> None:
        if self.popup is not None:
            if not self.popup.isVisible():
                self.popup.open_near(self.tray.geometry() if self.tray else None)
            else:
                self.popup.raise_()
                self.popup.activateWindow()
        elif self.window is not None:
            self.window.open()

    async def open_friends_when_placed(self, within: float = 3.0) -> None:
        """Open the popup once the tray host has given the icon a place (start-up)."""
        for _ in range(round(within / 0.05)):
            if self.tray is None or self.tray.geometry() is not None:
                break
            await asyncio.sleep(0.05)  # docking has no signal; bounded to start-up
        self.open_friends()

    def toggle_popup(self) -> None:
        if self.popup is not None:
            self.popup.toggle(self.tray.geometry() if self.tray else None)
        else:
            self.show_panel()

    def open_friends(self) -> None:
        self.panel.show_friends()
        self.show_panel()

    def open_inbox(self) -> None:
        self.show_panel()
        self.panel.show_inbox()

    def open_conversation(self, user_id: int) -> None:
        """From a notification (or its Reply button): the conversation, composer focused."""
        self.show_panel()
        self.panel.open_conversation(user_id)

    def avatar_file(self, user_id: int) -> Path | None:
        """The cached avatar image of a friend or requester, for a notification's icon."""
        state = self.core.state
        friend = state.friends.get(user_id)
        requester = state.incoming.get(user_id)
        if friend is not None:
            url, login, name = friend.avatar_url, friend.login, friend.display_name
        elif requester is not None:
            url, login = requester.avatar_url, requester.login
            name = requester.name or requester.login
        else:
            return None
        if url:
            path = self.avatars.path_for(url)
            if path.exists():
                return path
        try:
            return initials_avatar(self._cache_dir / "notify-avatars", login, name)
        except OSError as exc:
            log.info("no avatar file for a notification: %s", exc)
            return None

    def open_add_friend(self) -> None:
        self.show_panel()
        self.panel.show_add_friend()

    def open_settings(self, *, privacy: bool = False) -> None:
        """Show the settings window; ``privacy`` turns to the "Privacy & activity" page."""
        if self.settings is None:
            return
        if self._settings_dialog is None:
            # Imported when first opened: Settings, its privacy page and the
            # account dialogs are not part of the first screen (issue 18, memory).
            from .settings_dialog import SettingsDialog

            dialog = SettingsDialog(
                self.settings,
                self.core.state,
                self.actions,
                server_locked=self._server_locked,
                presence=self.editors.me if self.editors is not None else None,
            )
            dialog.setWindowIcon(self.icons.icon(None))
            dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            dialog.destroyed.connect(lambda _o=None: self._forget_settings_dialog())
            self._settings_dialog = dialog
        if privacy:
            self._settings_dialog.show_privacy()
        self._settings_dialog.show()
        self._settings_dialog.raise_()
        self._settings_dialog.activateWindow()

    def show_install_result(self, result: InstallResult) -> QMessageBox:
        """A modeless box with the outcome: the menu closed long ago, so say it here."""
        icon = QMessageBox.Icon.Information if result.ok else QMessageBox.Icon.Warning
        box = QMessageBox(icon, result.title, result.message, QMessageBox.StandardButton.Ok)
        box.setWindowIcon(self.icons.icon(None))
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self._message_boxes.add(box)
        box.destroyed.connect(lambda _o=None, b=box: self._message_boxes.discard(b))
        box.show()
        return box

    def request_quit(self) -> None:
        self.actions.quit()
        self.quit_requested.emit()

    def on_show_requested(self) -> None:
        """Another launch asked this instance to come forward."""
        self.open_friends()

    def on_alert_clicked(self, alert: Alert) -> None:
        if alert.kind is AlertKind.MESSAGE and alert.user_ids:
            self.open_conversation(alert.user_ids[0])
        elif alert.kind is AlertKind.MESSAGE:
            self.open_inbox()
        else:
            self.open_friends()

    def _restore_window(self) -> None:
        """Put the window back where it was last time, if that place is still on a screen."""
        if self.window is None or self.settings is None:
            return
        saved = self.settings.runtime.windows.get(MAIN_WINDOW)
        if saved is None or saved.width < 200 or saved.height < 200:
            return
        rect = QRect(saved.x, saved.y, saved.width, saved.height)
        if any(s.availableGeometry().intersects(rect) for s in QGuiApplication.screens()):
            self.window.setGeometry(rect)

    def _save_window(self) -> None:
        if self.window is None or self.settings is None or not self.window.isVisible():
            return
        g = self.window.geometry()
        windows = dict(self.settings.runtime.windows)
        windows[MAIN_WINDOW] = WindowGeometry(g.x(), g.y(), g.width(), g.height())
        try:
            self.settings.update_runtime(windows=windows)
        except Exception:
            log.warning("could not remember the window position", exc_info=True)

    def _forget_settings_dialog(self) -> None:
        self._settings_dialog = None

    @property
    def badge(self) -> Badge | None:
        return self.tray.badge if self.tray is not None else None


def default_backends(ui: DesktopUi) -> list[Backend]:
    """Platform centre → tray balloon → log, skipping what this platform lacks."""
    chain: list[Backend] = []
    if DesktopNotifierBackend.supported():
        icon = resources_dir() / "icons" / "presence-128.png"
        handlers = AlertHandlers(
            reply=ui.actions.send_message,
            open_conversation=ui.open_conversation,
            accept=ui.actions.accept_friend,
            decline=ui.actions.decline_friend,
            avatar=ui.avatar_file,
        )
        chain.append(DesktopNotifierBackend(icon if icon.exists() else None, handlers=handlers))
    chain.append(TrayMessageBackend(lambda: ui.tray.icon if ui.tray else None, ui.icons.icon(None)))
    chain.append(LogBackend())
    return chain
