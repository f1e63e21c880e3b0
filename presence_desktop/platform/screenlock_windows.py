"""Screen lock on Windows (written, not run in CI).

While the workstation is locked the input desktop is Winlogon's secure
desktop, which a normal process cannot open; an openable input desktop not
named "Default" (UAC prompt, lock screen) also counts as locked.
"""

from __future__ import annotations

import ctypes
import sys

if sys.platform == "win32":  # pragma: no cover - not run on Linux CI
    from ctypes import wintypes

    _DESKTOP_READOBJECTS = 0x0001
    _UOI_NAME = 2

    def windows_locked() -> bool | None:
        user32 = ctypes.WinDLL("user32", use_last_error=True)
        user32.OpenInputDesktop.argtypes = [wintypes.DWORD, wintypes.BOOL, wintypes.DWORD]
        user32.OpenInputDesktop.restype = wintypes.HANDLE
        user32.CloseDesktop.argtypes = [wintypes.HANDLE]
        user32.GetUserObjectInformationW.argtypes = [
            wintypes.HANDLE,
            ctypes.c_int,
            ctypes.c_void_p,
            wintypes.DWORD,
            ctypes.POINTER(wintypes.DWORD),
        ]
        desktop = user32.OpenInputDesktop(0, False, _DESKTOP_READOBJECTS)
        if not desktop:
            return True
        try:
            name = ctypes.create_unicode_buffer(256)
            needed = wintypes.DWORD()
            if not user32.GetUserObjectInformationW(
                desktop, _UOI_NAME, name, ctypes.sizeof(name), ctypes.byref(needed)
            ):
                return None
            return name.value.lower() != "default"
        finally:
            user32.CloseDesktop(desktop)
