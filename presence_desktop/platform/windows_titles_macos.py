"""Window titles on macOS from ``CGWindowListCopyWindowInfo`` (written, not run in CI).

Since macOS 10.15 other apps' window names are only visible with the
Screen Recording permission; without it ``kCGWindowName`` is missing and
the lister reports just that VS Code runs.
"""

from __future__ import annotations

import ctypes
import ctypes.util

from .top_window import TopWindow

_kCGWindowListOptionOnScreenOnly = 1
_kCGWindowListExcludeDesktopElements = 16
_UTF8 = 0x08000100
_OWNERS = {
    "Code": "Visual Studio Code",
    "Code - Insiders": "VS Code Insiders",
    "VSCodium": "VSCodium",
}


class QuartzLister:
    def __init__(self, quartz: ctypes.CDLL, cf: ctypes.CDLL) -> None:
        self._quartz = quartz
        self._cf = cf
        make = cf.CFStringCreateWithCString
        self._owner_key = make(None, b"kCGWindowOwnerName", _UTF8)
        self._name_key = make(None, b"kCGWindowName", _UTF8)
        self._number_key = make(None, b"kCGWindowNumber", _UTF8)
        self._layer_key = make(None, b"kCGWindowLayer", _UTF8)

    @classmethod
    def open(cls) -> QuartzLister | None:
        try:
            quartz = ctypes.CDLL(
                ctypes.util.find_library("ApplicationServices") or "ApplicationServices"
            )
            cf = ctypes.CDLL(ctypes.util.find_library("CoreFoundation") or "CoreFoundation")
        except OSError:
            return None
        vp = ctypes.c_void_p
        quartz.CGWindowListCopyWindowInfo.argtypes = [ctypes.c_uint32, ctypes.c_uint32]
        quartz.CGWindowListCopyWindowInfo.restype = vp
        cf.CFStringCreateWithCString.argtypes = [vp, ctypes.c_char_p, ctypes.c_uint32]
        cf.CFStringCreateWithCString.restype = vp
        cf.CFArrayGetCount.argtypes = [vp]
        cf.CFArrayGetCount.restype = ctypes.c_long
        cf.CFArrayGetValueAtIndex.argtypes = [vp, ctypes.c_long]
        cf.CFArrayGetValueAtIndex.restype = vp
        cf.CFDictionaryGetValue.argtypes = [vp, vp]
        cf.CFDictionaryGetValue.restype = vp
        cf.CFStringGetCString.argtypes = [vp, ctypes.c_char_p, ctypes.c_long, ctypes.c_uint32]
        cf.CFStringGetCString.restype = ctypes.c_bool
        cf.CFNumberGetValue.argtypes = [vp, ctypes.c_int, vp]
        cf.CFNumberGetValue.restype = ctypes.c_bool
        cf.CFRelease.argtypes = [vp]
        return cls(quartz, cf)

    def _text(self, ref: int | None) -> str:
        if not ref:
            return ""
        buffer = ctypes.create_string_buffer(1024)
        if not self._cf.CFStringGetCString(ref, buffer, len(buffer), _UTF8):
            return ""
        return buffer.value.decode("utf-8", "replace")

    def _int(self, ref: int | None) -> int:
        value = ctypes.c_int64()
        if ref and self._cf.CFNumberGetValue(ref, 4, ctypes.byref(value)):
            return value.value
        return -1

    def list_windows(self) -> list[TopWindow] | None:
        info = self._quartz.CGWindowListCopyWindowInfo(
            _kCGWindowListOptionOnScreenOnly | _kCGWindowListExcludeDesktopElements, 0
        )
        if not info:
            return None
        found: list[TopWindow] = []
        try:
            first_normal = True
            for i in range(self._cf.CFArrayGetCount(info)):
                entry = self._cf.CFArrayGetValueAtIndex(info, i)
                get = self._cf.CFDictionaryGetValue
                if self._int(get(entry, self._layer_key)) != 0:
                    continue
                # The list is front to back: the first normal window has focus.
                focused, first_normal = first_normal, False
                owner = self._text(get(entry, self._owner_key))
                if owner not in _OWNERS:
                    continue
                title = self._text(get(entry, self._name_key)) or _OWNERS[owner]
                number = self._int(get(entry, self._number_key))
                found.append(TopWindow(number, title, focused))
        finally:
            self._cf.CFRelease(info)
        return found
