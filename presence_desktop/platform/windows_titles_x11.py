"""Top-level window titles on X11 from the window manager's EWMH properties.

``_NET_CLIENT_LIST`` on the root window lists managed windows,
``_NET_ACTIVE_WINDOW`` the focused one, ``_NET_WM_NAME`` (UTF-8) each title.
Read through ctypes on libX11 with our own display connection.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading

from .top_window import TopWindow

log = logging.getLogger(__name__)

_Success = 0
_AnyPropertyType = 0
_MAX_WINDOWS = 4096


class X11Lister:
    def __init__(self, x11: ctypes.CDLL, display: int) -> None:
        self._x11 = x11
        self._display: int | None = display
        self._root = x11.XDefaultRootWindow(display)
        self._lock = threading.Lock()
        atom = x11.XInternAtom
        self._client_list = atom(display, b"_NET_CLIENT_LIST", False)
        self._active = atom(display, b"_NET_ACTIVE_WINDOW", False)
        self._wm_name = atom(display, b"_NET_WM_NAME", False)
        self._utf8 = atom(display, b"UTF8_STRING", False)
        self._legacy_name = atom(display, b"WM_NAME", False)

    @classmethod
    def open(cls, display_name: str | None = None) -> X11Lister | None:
        try:
            x11 = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
        except OSError:
            return None
        vp, ul = ctypes.c_void_p, ctypes.c_ulong
        x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
        x11.XOpenDisplay.restype = vp
        x11.XCloseDisplay.argtypes = [vp]
        x11.XDefaultRootWindow.argtypes = [vp]
        x11.XDefaultRootWindow.restype = ul
        x11.XInternAtom.argtypes = [vp, ctypes.c_char_p, ctypes.c_int]
        x11.XInternAtom.restype = ul
        x11.XFree.argtypes = [vp]
        x11.XGetWindowProperty.argtypes = [
            vp, ul, ul, ctypes.c_long, ctypes.c_long, ctypes.c_int, ul,
            ctypes.POINTER(ul), ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ul),
            ctypes.POINTER(ul), ctypes.POINTER(ctypes.c_void_p),
        ]  # fmt: skip
        x11.XGetWindowProperty.restype = ctypes.c_int
        display = x11.XOpenDisplay(display_name.encode() if display_name else None)
        if not display:
            return None
        return cls(x11, display)

    def _property(self, window: int, prop: int, kind: int) -> tuple[int, int, bytes] | None:
        """(format, item count, raw bytes) of a window property, or None."""
        assert self._display is not None
        actual_type, actual_format = ctypes.c_ulong(), ctypes.c_int()
        items, after, data = ctypes.c_ulong(), ctypes.c_ulong(), ctypes.c_void_p()
        status = self._x11.XGetWindowProperty(
            self._display, window, prop, 0, 1 << 16, False, kind,
            ctypes.byref(actual_type), ctypes.byref(actual_format), ctypes.byref(items),
            ctypes.byref(after), ctypes.byref(data),
        )  # fmt: skip
        if status != _Success or not data.value:
            return None
        try:
            fmt = actual_format.value
            # Xlib hands 32-bit items back as C longs.
            size = {8: 1, 16: ctypes.sizeof(ctypes.c_short), 32: ctypes.sizeof(ctypes.c_long)}
            length = items.value * size.get(fmt, 1)
            return fmt, items.value, ctypes.string_at(data.value, length)
        finally:
            self._x11.XFree(data)

    def _windows(self, prop: int) -> list[int]:
        got = self._property(self._root, prop, _AnyPropertyType)
        if got is None or got[0] != 32:
            return []
        count = min(got[1], _MAX_WINDOWS)
        array = (ctypes.c_ulong * count).from_buffer_copy(
            got[2][: count * ctypes.sizeof(ctypes.c_ulong)]
        )
        return list(array)

    def _title(self, window: int) -> str:
        got = self._property(window, self._wm_name, self._utf8)
        if got is None:
            got = self._property(window, self._legacy_name, _AnyPropertyType)
        if got is None:
            return ""
        return got[2].decode("utf-8", "replace")

    def list_windows(self) -> list[TopWindow] | None:
        with self._lock:
            if self._display is None:
                return None
            clients = self._windows(self._client_list)
            active = self._windows(self._active)
            focused = active[0] if active else None
            return [TopWindow(w, self._title(w), w == focused) for w in clients]

    def close(self) -> None:
        with self._lock:
            if self._display is not None:
                self._x11.XCloseDisplay(self._display)
                self._display = None
