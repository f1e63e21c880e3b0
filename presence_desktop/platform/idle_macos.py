"""Idle time on macOS from IOKit's ``HIDIdleTime`` (written, not run in CI).

``IOHIDSystem`` publishes nanoseconds since the last HID event; reading it
needs no permission, unlike event taps.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

_kCFNumberSInt64Type = 4
_kCFStringEncodingUTF8 = 0x08000100


class MacIdle:
    def __init__(self, iokit: ctypes.CDLL, cf: ctypes.CDLL) -> None:
        self._iokit = iokit
        self._cf = cf
        self._key = cf.CFStringCreateWithCString(None, b"HIDIdleTime", _kCFStringEncodingUTF8)

    @classmethod
    def open(cls) -> MacIdle | None:
        try:
            iokit = ctypes.CDLL(ctypes.util.find_library("IOKit") or "IOKit")
            cf = ctypes.CDLL(ctypes.util.find_library("CoreFoundation") or "CoreFoundation")
        except OSError:
            log.info("IOKit not available: no idle time")
            return None
        vp, u32 = ctypes.c_void_p, ctypes.c_uint32
        iokit.IOServiceMatching.argtypes = [ctypes.c_char_p]
        iokit.IOServiceMatching.restype = vp
        iokit.IOServiceGetMatchingService.argtypes = [u32, vp]
        iokit.IOServiceGetMatchingService.restype = u32
        iokit.IORegistryEntryCreateCFProperty.argtypes = [u32, vp, vp, u32]
        iokit.IORegistryEntryCreateCFProperty.restype = vp
        iokit.IOObjectRelease.argtypes = [u32]
        cf.CFStringCreateWithCString.argtypes = [vp, ctypes.c_char_p, u32]
        cf.CFStringCreateWithCString.restype = vp
        cf.CFNumberGetValue.argtypes = [vp, ctypes.c_int, vp]
        cf.CFNumberGetValue.restype = ctypes.c_bool
        cf.CFRelease.argtypes = [vp]
        return cls(iokit, cf)

    def idle_seconds(self) -> float | None:
        matching = self._iokit.IOServiceMatching(b"IOHIDSystem")
        # 0 is kIOMainPortDefault; the call consumes ``matching``.
        service = self._iokit.IOServiceGetMatchingService(0, matching)
        if not service:
            return None
        try:
            number = self._iokit.IORegistryEntryCreateCFProperty(service, self._key, None, 0)
            if not number:
                return None
            try:
                nanos = ctypes.c_int64()
                if not self._cf.CFNumberGetValue(number, _kCFNumberSInt64Type, ctypes.byref(nanos)):
                    return None
                return nanos.value / 1e9
            finally:
                self._cf.CFRelease(number)
        finally:
            self._iokit.IOObjectRelease(service)
