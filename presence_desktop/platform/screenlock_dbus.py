"""Screen lock on Linux desktops from D-Bus signals.

Session bus: ``ActiveChanged(bool)`` of ``org.freedesktop.ScreenSaver``
(KDE, Xfce, Cinnamon, …) and ``org.gnome.ScreenSaver`` (GNOME). System bus:
logind's ``LockedHint`` property of my session, which lockers such as
swaylock set. The screen counts as locked while any source says so.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from PySide6.QtCore import SLOT, QObject, Slot
from PySide6.QtDBus import QDBusConnection, QDBusMessage, QDBusObjectPath

from ..core.events import Signal
from .dbus_call import call

log = logging.getLogger(__name__)

_SCREENSAVERS = (
    ("org.freedesktop.ScreenSaver", "/org/freedesktop/ScreenSaver"),
    ("org.gnome.ScreenSaver", "/org/gnome/ScreenSaver"),
)
_LOGIN1 = "org.freedesktop.login1"
_SESSION_IFACE = "org.freedesktop.login1.Session"
_PROPS_IFACE = "org.freedesktop.DBus.Properties"
_ON_ACTIVE = SLOT("_on_active(bool,QDBusMessage)")
_ON_PROPERTIES = SLOT("_on_properties(QDBusMessage)")


class DBusLockMonitor(QObject):
    def __init__(
        self,
        session_bus: QDBusConnection | None = None,
        system_bus: QDBusConnection | None = None,
    ) -> None:
        super().__init__()
        self._session = session_bus if session_bus is not None else QDBusConnection.sessionBus()
        self._system = system_bus if system_bus is not None else QDBusConnection.systemBus()
        self._states: dict[str, bool] = {}
        self._session_path: str | None = None
        self._connected: list[tuple[QDBusConnection, tuple[str, str, str, str, str]]] = []
        self.locked = False
        self.changed = Signal[bool]()

    def start(self) -> bool:
        """Subscribe to every source available; False when there is none."""
        any_source = False
        if self._session.isConnected():
            for iface, _path in _SCREENSAVERS:
                # Any sender, any path: lockers differ in which they use.
                if self._subscribe(self._session, ("", "", iface, "ActiveChanged", _ON_ACTIVE)):
                    any_source = True
            for iface, path in _SCREENSAVERS:
                reply = call(self._session, iface, path, iface, "GetActive")
                if reply and isinstance(reply[0], bool):
                    self._states[iface] = reply[0]
        if self._system.isConnected():
            self._session_path = self._find_session()
            if self._session_path is not None and self._subscribe(
                self._system,
                (_LOGIN1, self._session_path, _PROPS_IFACE, "PropertiesChanged", _ON_PROPERTIES),
            ):
                any_source = True
                self._read_locked_hint()
        self._announce()
        return any_source

    def stop(self) -> None:
        for bus, (service, path, iface, name, slot) in self._connected:
            bus.disconnect(service, path, iface, name, self, slot)  # type: ignore[call-overload]
        self._connected.clear()

    def _subscribe(self, bus: QDBusConnection, spec: tuple[str, str, str, str, str]) -> bool:
        service, path, iface, name, slot = spec
        # The stubs say bytes; PySide6 accepts only the str that SLOT() returns.
        ok = bus.connect(service, path, iface, name, self, slot)  # type: ignore[call-overload]
        if ok:
            self._connected.append((bus, spec))
        return bool(ok)

    def _find_session(self) -> str | None:
        manager = ("/org/freedesktop/login1", "org.freedesktop.login1.Manager")
        reply = call(self._system, _LOGIN1, manager[0], manager[1], "GetSessionByPID", os.getpid())
        session_id = os.environ.get("XDG_SESSION_ID")
        if not reply and session_id:
            reply = call(self._system, _LOGIN1, manager[0], manager[1], "GetSession", session_id)
        if reply and isinstance(reply[0], QDBusObjectPath):
            return str(reply[0].path())
        return None

    def _read_locked_hint(self) -> None:
        if self._session_path is None:
            return
        reply = call(
            self._system, _LOGIN1, self._session_path, _PROPS_IFACE, "Get",
            _SESSION_IFACE, "LockedHint",
        )  # fmt: skip
        value = _unwrap(reply[0]) if reply else None
        if isinstance(value, bool):
            self._states["logind"] = value
            self._announce()

    @Slot(bool, QDBusMessage)
    def _on_active(self, active: bool, message: QDBusMessage) -> None:
        self._states[message.interface()] = bool(active)
        self._announce()

    @Slot(QDBusMessage)
    def _on_properties(self, message: QDBusMessage) -> None:
        args = message.arguments()
        if not args or args[0] != _SESSION_IFACE:
            return
        changed = args[1] if len(args) > 1 and isinstance(args[1], dict) else {}
        invalidated = args[2] if len(args) > 2 else []
        if "LockedHint" in changed:
            value = _unwrap(changed["LockedHint"])
            if isinstance(value, bool):
                self._states["logind"] = value
                self._announce()
        elif "LockedHint" in invalidated:
            self._read_locked_hint()

    def _announce(self) -> None:
        locked = any(self._states.values())
        if locked != self.locked:
            self.locked = locked
            self.changed.emit(locked)


def _unwrap(value: Any) -> Any:
    variant = getattr(value, "variant", None)
    return variant() if callable(variant) else value
