"""Top-level window titles on Windows via ``EnumWindows`` (written, not run in CI)."""

from __future__ import annotations

import ctypes
import sys

from .top_window import TopWindow

if sys.platform == "win32":  # pragma: no cover - not run on Linux CI
    from ctypes import wintypes

    _EnumProc = ctypes.WINFUNCTYPE(wintypes.BOOL, wintypes.HWND, wintypes.LPARAM)

    class Win32Lister:
        def __init__(self) -> None:
            self._user32 = ctypes.WinDLL("user32", use_last_error=True)

        def list_windows(self) -> list[TopWindow] | None:
            user32 = self._user32
            foreground = user32.GetForegroundWindow()
            found: list[TopWindow] = []

            def visit(hwnd: int, _: int) -> bool:
                if not user32.IsWindowVisible(hwnd):
                    return True
                length = user32.GetWindowTextLengthW(hwnd)
                if length <= 0:
                    return True
                buffer = ctypes.create_unicode_buffer(length + 1)
                user32.GetWindowTextW(hwnd, buffer, length + 1)
                found.append(TopWindow(int(hwnd), buffer.value, hwnd == foreground))
                return True

            if not user32.EnumWindows(_EnumProc(visit), 0):
                return None
            return found
