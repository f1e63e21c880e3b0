"""Idle time on Windows from ``GetLastInputInfo`` (written, not run in CI)."""

from __future__ import annotations

import ctypes
import sys

if sys.platform == "win32":  # pragma: no cover - not run on Linux CI
    from ctypes import wintypes

    class _LastInputInfo(ctypes.Structure):
        _fields_ = [("cbSize", wintypes.UINT), ("dwTime", wintypes.DWORD)]

    class WindowsIdle:
        """Milliseconds since the last input in this session, from the tick counter.

        Both values are 32-bit tick counts that wrap after 49.7 days; the
        difference is taken modulo 2**32 so a wrap does not look like input.
        """

        def __init__(self) -> None:
            self._user32 = ctypes.WinDLL("user32", use_last_error=True)
            self._kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
            self._user32.GetLastInputInfo.argtypes = [ctypes.POINTER(_LastInputInfo)]
            self._user32.GetLastInputInfo.restype = wintypes.BOOL
            self._kernel32.GetTickCount.restype = wintypes.DWORD

        def idle_seconds(self) -> float | None:
            info = _LastInputInfo(cbSize=ctypes.sizeof(_LastInputInfo))
            if not self._user32.GetLastInputInfo(ctypes.byref(info)):
                return None
            now = self._kernel32.GetTickCount()
            return ((now - info.dwTime) % 2**32) / 1000.0
