"""Starting tray apps on a virtual desktop and seeing, from outside, when their icon shows.

"Icon shown" is read from the X server, the same way for the bare baseline
and for the real app, without changing either: a window owned by the
process (``_NET_WM_PID``, which Qt sets on its windows) has been reparented
out of the root window into the tray host, is viewable, and has been painted
(its pixels hold more than the tray's flat background). Polling is a walk of
the (small) window tree through libX11 every few milliseconds, far cheaper
than starting ``xwininfo`` or ``import``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from ._common import ROOT

BASELINE_TRAY = ROOT / "benchmarks" / "baseline_tray.py"
IS_VIEWABLE = 2


class _XWindowAttributes(ctypes.Structure):
    _fields_ = [
        ("x", ctypes.c_int),
        ("y", ctypes.c_int),
        ("width", ctypes.c_int),
        ("height", ctypes.c_int),
        ("border_width", ctypes.c_int),
        ("depth", ctypes.c_int),
        ("visual", ctypes.c_void_p),
        ("root", ctypes.c_ulong),
        ("class_", ctypes.c_int),
        ("bit_gravity", ctypes.c_int),
        ("win_gravity", ctypes.c_int),
        ("backing_store", ctypes.c_int),
        ("backing_planes", ctypes.c_ulong),
        ("backing_pixel", ctypes.c_ulong),
        ("save_under", ctypes.c_int),
        ("colormap", ctypes.c_ulong),
        ("map_installed", ctypes.c_int),
        ("map_state", ctypes.c_int),
        ("all_event_masks", ctypes.c_long),
        ("your_event_mask", ctypes.c_long),
        ("do_not_propagate_mask", ctypes.c_long),
        ("override_redirect", ctypes.c_int),
        ("screen", ctypes.c_void_p),
    ]


class _XImage(ctypes.Structure):
    """The leading fields of Xlib's XImage (enough to read a ZPixmap)."""

    _fields_ = [
        ("width", ctypes.c_int),
        ("height", ctypes.c_int),
        ("xoffset", ctypes.c_int),
        ("format", ctypes.c_int),
        ("data", ctypes.c_void_p),
        ("byte_order", ctypes.c_int),
        ("bitmap_unit", ctypes.c_int),
        ("bitmap_bit_order", ctypes.c_int),
        ("bitmap_pad", ctypes.c_int),
        ("depth", ctypes.c_int),
        ("bytes_per_line", ctypes.c_int),
        ("bits_per_pixel", ctypes.c_int),
    ]


Z_PIXMAP = 2
ALL_PLANES = 0xFFFFFFFF
MIN_COLOURS = 3
"""A painted icon has its art plus antialiasing; an unpainted one is one flat colour."""

_ERROR_HANDLER = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
_ignore_errors = _ERROR_HANDLER(lambda _d, _e: 0)
"""Windows vanish between two requests; Xlib's default handler would exit the process."""


class XProbe:
    """A libX11 connection used only to read the window tree."""

    def __init__(self, display: str) -> None:
        path = ctypes.util.find_library("X11") or "libX11.so.6"
        x = self.x = ctypes.cdll.LoadLibrary(path)
        x.XOpenDisplay.restype = ctypes.c_void_p
        x.XOpenDisplay.argtypes = [ctypes.c_char_p]
        x.XDefaultRootWindow.restype = ctypes.c_ulong
        x.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
        x.XInternAtom.restype = ctypes.c_ulong
        x.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
        x.XQueryTree.argtypes = [
            ctypes.c_void_p,
            ctypes.c_ulong,
            ctypes.POINTER(ctypes.c_ulong),
            ctypes.POINTER(ctypes.c_ulong),
            ctypes.POINTER(ctypes.POINTER(ctypes.c_ulong)),
            ctypes.POINTER(ctypes.c_uint),
        ]
        x.XGetWindowProperty.argtypes = [
            ctypes.c_void_p,
            ctypes.c_ulong,
            ctypes.c_ulong,
            ctypes.c_long,
            ctypes.c_long,
            ctypes.c_int,
            ctypes.c_ulong,
            ctypes.POINTER(ctypes.c_ulong),
            ctypes.POINTER(ctypes.c_int),
            ctypes.POINTER(ctypes.c_ulong),
            ctypes.POINTER(ctypes.c_ulong),
            ctypes.POINTER(ctypes.c_void_p),
        ]
        x.XGetWindowAttributes.argtypes = [
            ctypes.c_void_p,
            ctypes.c_ulong,
            ctypes.POINTER(_XWindowAttributes),
        ]
        x.XGetImage.restype = ctypes.POINTER(_XImage)
        x.XGetImage.argtypes = [
            ctypes.c_void_p,
            ctypes.c_ulong,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_ulong,
            ctypes.c_int,
        ]
        x.XFree.argtypes = [ctypes.c_void_p]
        x.XCloseDisplay.argtypes = [ctypes.c_void_p]
        x.XSetErrorHandler(_ignore_errors)
        self.dpy = x.XOpenDisplay(display.encode())
        if not self.dpy:
            raise RuntimeError(f"cannot open display {display}")
        self.root = x.XDefaultRootWindow(self.dpy)
        self.pid_atom = x.XInternAtom(self.dpy, b"_NET_WM_PID", 0)

    def close(self) -> None:
        self.x.XCloseDisplay(self.dpy)

    def _children(self, window: int) -> tuple[int, list[int]]:
        root, parent = ctypes.c_ulong(), ctypes.c_ulong()
        children = ctypes.POINTER(ctypes.c_ulong)()
        count = ctypes.c_uint()
        if not self.x.XQueryTree(
            self.dpy,
            window,
            ctypes.byref(root),
            ctypes.byref(parent),
            ctypes.byref(children),
            ctypes.byref(count),
        ):
            return 0, []
        found = [children[i] for i in range(count.value)]
        if children:
            self.x.XFree(children)
        return parent.value, found

    def _pid(self, window: int) -> int | None:
        actual_type, actual_format = ctypes.c_ulong(), ctypes.c_int()
        items, after = ctypes.c_ulong(), ctypes.c_ulong()
        data = ctypes.c_void_p()
        status = self.x.XGetWindowProperty(
            self.dpy,
            window,
            self.pid_atom,
            0,
            1,
            0,
            0,  # AnyPropertyType
            ctypes.byref(actual_type),
            ctypes.byref(actual_format),
            ctypes.byref(items),
            ctypes.byref(after),
            ctypes.byref(data),
        )
        if status != 0 or not data.value:
            return None
        try:
            if items.value < 1 or actual_format.value != 32:
                return None
            return int(ctypes.cast(data, ctypes.POINTER(ctypes.c_long))[0])
        finally:
            self.x.XFree(data)

    def _painted(self, window: int) -> bool:
        """Viewable, and its pixels show more than one flat colour."""
        attrs = _XWindowAttributes()
        if not self.x.XGetWindowAttributes(self.dpy, window, ctypes.byref(attrs)):
            return False
        if attrs.map_state != IS_VIEWABLE or attrs.width < 2 or attrs.height < 2:
            return False
        image = self.x.XGetImage(
            self.dpy, window, 0, 0, attrs.width, attrs.height, ALL_PLANES, Z_PIXMAP
        )
        if not image:
            return False
        try:
            img = image.contents
            if img.bits_per_pixel != 32 or not img.data:
                return True  # cannot judge the pixels; viewable is the best we know
            raw = ctypes.string_at(img.data, img.bytes_per_line * img.height)
            colours: set[bytes] = set()
            for row in range(img.height):
                line = raw[row * img.bytes_per_line : row * img.bytes_per_line + img.width * 4]
                colours.update(line[i : i + 3] for i in range(0, len(line), 4))
                if len(colours) >= MIN_COLOURS:
                    return True
            return False
        finally:
            if img.data:
                self.x.XFree(img.data)
            self.x.XFree(image)

    def docked_icon(self, pid: int) -> bool:
        """A painted window of ``pid`` sits inside another client's window (the tray)."""
        stack = [(self.root, 0)]
        while stack:
            window, depth = stack.pop()
            _parent, children = self._children(window)
            for child in children:
                if depth >= 1 and self._pid(child) == pid and self._painted(child):
                    return True
                stack.append((child, depth + 1))
        return False


def app_env(base: Mapping[str, str], home: Path, token: str | None = None) -> dict[str, str]:
    """A private HOME and XDG dirs; the benchmark keyring holding ``token``."""
    env = dict(base)
    for name, sub in (
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_DATA_HOME", "data"),
        ("XDG_STATE_HOME", "state"),
        ("XDG_CACHE_HOME", "cache"),
    ):
        path = home / sub
        path.mkdir(parents=True, exist_ok=True)
        env[name] = str(path)
    env["HOME"] = str(home)
    env["PYTHON_KEYRING_BACKEND"] = "benchmarks._keyring.EnvKeyring"
    env["PYTHONPATH"] = str(ROOT)
    if token is not None:
        env["BENCH_SESSION_TOKEN"] = token
    return env


def baseline_argv() -> list[str]:
    return [sys.executable, str(BASELINE_TRAY)]


def app_argv(server_url: str) -> list[str]:
    return [sys.executable, "-m", "presence_desktop", "--server", server_url]


def launch(argv: list[str], env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv, cwd=ROOT, env=dict(env), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def wait_docked(probe: XProbe, proc: subprocess.Popen[bytes], t0: float, timeout: float) -> float:
    """Seconds from ``t0`` until the process's tray icon shows; raises on timeout or exit."""
    deadline = t0 + timeout
    while time.perf_counter() < deadline:
        if probe.docked_icon(proc.pid):
            return time.perf_counter() - t0
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited ({proc.returncode}) before its icon showed")
        time.sleep(0.003)
    raise TimeoutError(f"no tray icon from {proc.args!r} within {timeout} s")


def stop(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def pid_alive(pid: int) -> bool:
    return os.path.exists(f"/proc/{pid}")
