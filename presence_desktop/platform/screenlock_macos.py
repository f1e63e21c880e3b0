"""Screen lock on macOS from the Quartz session dictionary (written, not run in CI).

``CGSessionCopyCurrentDictionary`` carries ``CGSSessionScreenIsLocked`` =
true while the login window covers the session.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable

_kCFStringEncodingUTF8 = 0x08000100


def macos_locked_check() -> Callable[[], bool | None] | None:
    try:
        quartz = ctypes.CDLL(
            ctypes.util.find_library("ApplicationServices") or "ApplicationServices"
        )
        cf = ctypes.CDLL(ctypes.util.find_library("CoreFoundation") or "CoreFoundation")
    except OSError:
        return None
    vp = ctypes.c_void_p
    quartz.CGSessionCopyCurrentDictionary.restype = vp
    cf.CFStringCreateWithCString.argtypes = [vp, ctypes.c_char_p, ctypes.c_uint32]
    cf.CFStringCreateWithCString.restype = vp
    cf.CFDictionaryGetValue.argtypes = [vp, vp]
    cf.CFDictionaryGetValue.restype = vp
    cf.CFBooleanGetValue.argtypes = [vp]
    cf.CFBooleanGetValue.restype = ctypes.c_bool
    cf.CFRelease.argtypes = [vp]
    key = cf.CFStringCreateWithCString(None, b"CGSSessionScreenIsLocked", _kCFStringEncodingUTF8)

    def locked() -> bool | None:
        session = quartz.CGSessionCopyCurrentDictionary()
        if not session:
            return None  # not in a GUI session
        try:
            value = cf.CFDictionaryGetValue(session, key)
            return bool(value) and bool(cf.CFBooleanGetValue(value))
        finally:
            cf.CFRelease(session)

    return locked
