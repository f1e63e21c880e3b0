"""System-wide input idle time, one interface for every platform.

Idle time means "since the last keyboard or mouse input anywhere", not
editor focus: reading documentation in a browser is not being away. Each
platform module has one class with ``idle_seconds() -> float | None``
(the ``core.idle.IdleSource`` protocol); ``system_idle_source`` picks the
one that works in this session, or None when nothing does (then the app
never turns away by itself, which is the safe failure).
"""

from __future__ import annotations

import logging
import os
import sys

from ..core.idle import IdleSource

log = logging.getLogger(__name__)


def is_wayland_session() -> bool:
    return os.environ.get("XDG_SESSION_TYPE") == "wayland" or bool(
        os.environ.get("WAYLAND_DISPLAY")
    )


def system_idle_source() -> IdleSource | None:
    """The best idle source for this session."""
    if sys.platform == "win32":
        from .idle_windows import WindowsIdle

        return WindowsIdle()
    if sys.platform == "darwin":
        from .idle_macos import MacIdle

        return MacIdle.open()
    # On Wayland an X11 answer would only count input to XWayland windows:
    # ask the compositor over D-Bus instead, and use X11 only on X11.
    if is_wayland_session():
        from .idle_dbus import DBusIdle

        return DBusIdle.open()
    if os.environ.get("DISPLAY"):
        from .idle_x11 import X11Idle

        source = X11Idle.open()
        if source is not None:
            return source
    from .idle_dbus import DBusIdle

    return DBusIdle.open()
