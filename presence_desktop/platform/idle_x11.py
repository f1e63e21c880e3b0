"""Idle time on X11 from the MIT-SCREEN-SAVER extension, through libXss.

ctypes on the system's libX11 and libXss (``libxss1`` on Debian) instead of
a Python X binding: both libraries are part of every X desktop, and the
query is four calls. The display connection is our own, separate from Qt's.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading

log = logging.getLogger(__name__)


class _XScreenSaverInfo(ctypes.Structure):
    _fields_ = [
        ("window", ctypes.c_ulong),
        ("state", ctypes.c_int),
        ("kind", ctypes.c_int),
        ("til_or_since", ctypes.c_ulong),
        ("idle", ctypes.c_ulong),
        ("event_mask", ctypes.c_ulong),
    ]


def _load(name: str, fallback: str) -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library(name) or fallback)
    except OSError:
        return None


class X11Idle:
    """``idle_seconds`` from ``XScreenSaverQueryInfo`` on the root window."""

    def __init__(self, x11: ctypes.CDLL, xss: ctypes.CDLL, display: int, root: int) -> None:
        self._x11 = x11
        self._xss = xss
        self._display: int | None = display
        self._root = root
        self._info = xss.XScreenSaverAllocInfo()
        self._lock = threading.Lock()

    @classmethod
    def open(cls, display_name: str | None = None) -> X11Idle | None:
        """Connect to ``display_name`` (default: ``$DISPLAY``); None if impossible."""
        x11 = _load("X11", "libX11.so.6")
        xss = _load("Xss", "libXss.so.1")
        if x11 is None or xss is None:
            log.info("X11 idle time unavailable: libX11 or libXss missing")
            return None
        x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
        x11.XOpenDisplay.restype = ctypes.c_void_p
        x11.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
        x11.XDefaultRootWindow.restype = ctypes.c_ulong
        x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
        x11.XFree.argtypes = [ctypes.c_void_p]
        xss.XScreenSaverQueryExtension.argtypes = [
            ctypes.c_void_p,
            ctypes.POINTER(ctypes.c_int),
            ctypes.POINTER(ctypes.c_int),
        ]
        xss.XScreenSaverQueryExtension.restype = ctypes.c_int
        xss.XScreenSaverAllocInfo.restype = ctypes.POINTER(_XScreenSaverInfo)
        xss.XScreenSaverQueryInfo.argtypes = [
            ctypes.c_void_p,
            ctypes.c_ulong,
            ctypes.POINTER(_XScreenSaverInfo),
        ]
        xss.XScreenSaverQueryInfo.restype = ctypes.c_int

        name = display_name.encode() if display_name else None
        display = x11.XOpenDisplay(name)
        if not display:
            log.info("X11 idle time unavailable: cannot open the display")
            return None
        event_base, error_base = ctypes.c_int(), ctypes.c_int()
        if not xss.XScreenSaverQueryExtension(
            display, ctypes.byref(event_base), ctypes.byref(error_base)
        ):
            log.info("X11 idle time unavailable: no MIT-SCREEN-SAVER extension")
            x11.XCloseDisplay(display)
            return None
        return cls(x11, xss, display, x11.XDefaultRootWindow(display))

    def idle_seconds(self) -> float | None:
        with self._lock:
            if self._display is None:
                return None
            ok = self._xss.XScreenSaverQueryInfo(self._display, self._root, self._info)
            if not ok:
                return None
            return float(self._info.contents.idle) / 1000.0

    def close(self) -> None:
        with self._lock:
            if self._display is None:
                return
            self._x11.XFree(ctypes.cast(self._info, ctypes.c_void_p))
            self._x11.XCloseDisplay(self._display)
            self._display = None
