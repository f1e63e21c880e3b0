"""Idle time from the desktop session over D-Bus (Wayland, or X11 without libXss).

GNOME (Mutter) answers ``org.gnome.Mutter.IdleMonitor.GetIdletime``; KDE
Plasma answers ``org.freedesktop.ScreenSaver.GetSessionIdleTime``. Both
reply in milliseconds. Other Wayland compositors expose idle only to
Wayland clients (ext-idle-notify), which Qt does not surface: there the app
never turns away by itself, and the screen lock still works.
"""

from __future__ import annotations

import logging

from PySide6.QtDBus import QDBusConnection

from .dbus_call import call

log = logging.getLogger(__name__)

_METHODS = (
    (
        "org.gnome.Mutter.IdleMonitor",
        "/org/gnome/Mutter/IdleMonitor/Core",
        "org.gnome.Mutter.IdleMonitor",
        "GetIdletime",
    ),
    (
        "org.freedesktop.ScreenSaver",
        "/org/freedesktop/ScreenSaver",
        "org.freedesktop.ScreenSaver",
        "GetSessionIdleTime",
    ),
)


class DBusIdle:
    def __init__(self, bus: QDBusConnection, method: tuple[str, str, str, str]) -> None:
        self._bus = bus
        self._method = method

    @classmethod
    def open(cls, bus: QDBusConnection | None = None) -> DBusIdle | None:
        """The first method that answers on ``bus`` (default: the session bus)."""
        bus = bus if bus is not None else QDBusConnection.sessionBus()
        for method in _METHODS:
            reply = call(bus, *method)
            if reply and isinstance(reply[0], int):
                log.info("idle time from %s", method[0])
                return cls(bus, method)
        log.info("no D-Bus idle time service in this session")
        return None

    def idle_seconds(self) -> float | None:
        reply = call(self._bus, *self._method)
        if not reply or not isinstance(reply[0], int):
            return None
        return reply[0] / 1000.0
