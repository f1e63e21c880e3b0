"""Start-up preflight: find out whether Qt can open a window *before* Qt tries.

When Qt's platform plugin cannot load (no display, or a system library of
the xcb plugin missing) Qt prints its own advice ("Reinstalling the
application may fix this problem"), names a library that may not be the
missing one, and aborts the process with SIGABRT (exit code 134). Nothing in
Python can catch that. So before the first ``QApplication`` exists this
module checks, the way the dynamic linker and the X server would, what Qt is
about to need, and returns a ``Problem`` a person can act on: what is
missing, in plain words, and the packages that provide it on Debian/Ubuntu
and Fedora. The entry point prints it and exits with ``EXIT_NO_DISPLAY``.

Only Linux (and other ELF systems using the xcb or wayland plugins) is
checked; on Windows and macOS Qt's platform plugins ship with the app.
"""

from __future__ import annotations

import ctypes
import dataclasses
import mmap
import os
import struct
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

EXIT_NO_DISPLAY = 3
"""Exit code when the app cannot show anything: no display, or Qt's platform
libraries missing (documented in docs/install.md)."""

HEADLESS_PLATFORMS = frozenset({"offscreen", "minimal", "vnc", "linuxfb", "eglfs", "minimalegl"})
"""Qt platforms that need no display server and no extra system libraries."""

PACKAGES: Mapping[str, tuple[str, str]] = {
    # soname: (Debian/Ubuntu package, Fedora package)
    "libxcb.so.1": ("libxcb1", "libxcb"),
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-util.so.1": ("libxcb-util1", "xcb-util"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-render.so.0": ("libxcb-render0", "libxcb"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb"),
    "libxcb-shm.so.0": ("libxcb-shm0", "libxcb"),
    "libxcb-sync.so.1": ("libxcb-sync1", "libxcb"),
    "libxcb-xfixes.so.0": ("libxcb-xfixes0", "libxcb"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libX11.so.6": ("libx11-6", "libX11"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb"),
    "libGL.so.1": ("libgl1", "libglvnd-glx"),
    "libEGL.so.1": ("libegl1", "libglvnd-egl"),
    "libfontconfig.so.1": ("libfontconfig1", "fontconfig"),
    "libfreetype.so.6": ("libfreetype6", "freetype"),
    "libglib-2.0.so.0": ("libglib2.0-0", "glib2"),
    "libgthread-2.0.so.0": ("libglib2.0-0", "glib2"),
    "libdbus-1.so.3": ("libdbus-1-3", "dbus-libs"),
    "libwayland-client.so.0": ("libwayland-client0", "libwayland-client"),
    "libwayland-cursor.so.0": ("libwayland-cursor0", "libwayland-cursor"),
    "libwayland-egl.so.1": ("libwayland-egl1", "libwayland-egl"),
    "libz.so.1": ("zlib1g", "zlib"),
    "libzstd.so.1": ("libzstd1", "libzstd"),
}
"""Where the libraries Qt's platform plugins load come from, for the advice text."""

_C_RUNTIME = ("libc.so", "libm.so", "libstdc++.so", "libgcc_s.so", "ld-linux", "libpthread.so")


@dataclasses.dataclass(frozen=True, slots=True)
class Problem:
    """Why Qt could not start, and what to do about it."""

    title: str
    message: str
    missing: tuple[str, ...] = ()
    """Sonames of missing system libraries (empty for a display problem)."""

    def render(self) -> str:
        return f"presence-desktop: {self.title}\n\n{self.message}\n"


Loader = Callable[[str], None]
"""Loads a shared library by soname; raises OSError when the linker cannot."""

DisplayProbe = Callable[[str], str | None]
"""Tries to reach the X display named; returns None or why not."""


def check(
    environ: Mapping[str, str] | None = None,
    *,
    plugin_dir: Path | None = None,
    load: Loader | None = None,
    probe_display: DisplayProbe | None = None,
    platform: str = sys.platform,
) -> Problem | None:
    """None when Qt can open its platform plugin, else the reason in plain words."""
    env = os.environ if environ is None else environ
    if not platform.startswith("linux") and "bsd" not in platform:
        return None
    wanted = _platform_name(env)
    if wanted in HEADLESS_PLATFORMS:
        return None
    load = load or _dlopen
    plugins = plugin_dir if plugin_dir is not None else _qt_plugin_dir()
    if wanted == "wayland" or (wanted == "" and _wayland_session(env)):
        missing = _missing_libraries(plugins, "libqwayland.so", load)
        if not missing:
            return None
        if wanted == "wayland":
            return _libraries_problem(missing, "Wayland")
        # Qt falls back to xcb when its wayland plugin cannot start.
    display = env.get("DISPLAY", "")
    if not display:
        return Problem(
            "no display to show a window on",
            "DISPLAY is not set, so there is no X11 (or XWayland) display to draw the\n"
            "tray icon and windows on. Start Presence from your desktop session, or\n"
            "run it under a virtual display, e.g.\n"
            "    xvfb-run -a presence-desktop --demo\n"
            "(package xvfb on Debian/Ubuntu, xorg-x11-server-Xvfb on Fedora).\n"
            "To check an installation without any display:\n"
            "    QT_QPA_PLATFORM=offscreen presence-desktop --self-test",
        )
    missing = _missing_libraries(plugins, "libqxcb.so", load)
    if missing:
        return _libraries_problem(missing, "X11 (xcb)")
    why = (probe_display or _probe_x11)(display)
    if why is not None:
        return Problem(
            f"cannot connect to the display {display!r}",
            f"The X server for DISPLAY={display} did not accept a connection ({why}).\n"
            "Check that the desktop session is still running and that this user may\n"
            "use it (xauth / XAUTHORITY), or unset DISPLAY and use a virtual display\n"
            "(xvfb-run -a presence-desktop).",
        )
    return None


def _libraries_problem(missing: Iterable[str], kind: str) -> Problem:
    names = sorted(set(missing))
    debian = sorted({PACKAGES.get(n, (f"<package with {n}>", ""))[0] for n in names})
    fedora = sorted({PACKAGES[n][1] for n in names if n in PACKAGES})
    lines = [
        f"Qt's {kind} display support needs system libraries that are not installed:",
        *(f"    {n}" for n in names),
        "",
        "Install them, then start Presence again:",
        f"    Debian/Ubuntu: sudo apt install {' '.join(debian)}",
    ]
    if fedora:
        lines.append(f"    Fedora:        sudo dnf install {' '.join(fedora)}")
    lines.append("The full list for a fresh system is in docs/install.md.")
    return Problem(f"missing system libraries for {kind} windows", "\n".join(lines), tuple(names))


def _platform_name(env: Mapping[str, str]) -> str:
    """The first platform of QT_QPA_PLATFORM ("xcb;wayland", "vnc:size=…"), lower-case."""
    raw = env.get("QT_QPA_PLATFORM", "").split(";")[0]
    return raw.split(":")[0].strip().lower()


def _wayland_session(env: Mapping[str, str]) -> bool:
    return env.get("XDG_SESSION_TYPE", "").lower() == "wayland" and bool(env.get("WAYLAND_DISPLAY"))


def _qt_plugin_dir() -> Path | None:
    try:
        from PySide6.QtCore import QLibraryInfo
    except ImportError:
        return None
    return Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath))


def _missing_libraries(plugins: Path | None, plugin: str, load: Loader) -> list[str]:
    """System libraries the platform plugin (and Qt's own libraries) need but cannot load.

    Qt's libraries ship with PySide6 (found next to each other, by rpath);
    anything else must come from the system. Each needed system library is
    loaded the way the dynamic linker will load it; when one fails because
    *its* dependency is missing, the linker's message names that one.
    """
    if plugins is None:
        return []
    start = plugins / "platforms" / plugin
    if not start.is_file():
        return []
    bundled = [start.parent, plugins.parent / "lib", plugins.parent.parent / "lib"]
    seen: set[str] = set()
    missing: list[str] = []
    queue = [start]
    while queue:
        for name in needed(queue.pop()):
            if name in seen or name.startswith(_C_RUNTIME):
                continue
            seen.add(name)
            local = next((d / name for d in bundled if (d / name).is_file()), None)
            if local is not None:
                queue.append(local)
                continue
            try:
                load(name)
            except OSError as exc:
                missing.append(_named_in(str(exc)) or name)
    return sorted(set(missing))


def _named_in(error: str) -> str | None:
    """ "libxcb-icccm.so.4: cannot open shared object file" → "libxcb-icccm.so.4"."""
    head = error.split(":", 1)[0].strip()
    return head if ".so" in head and "/" not in head else None


def _dlopen(name: str) -> None:
    ctypes.CDLL(name)


def needed(path: Path) -> list[str]:
    """The DT_NEEDED entries of an ELF shared object (what the linker will load for it).

    A small reader instead of running ``ldd``: ``ldd`` may be missing, and it
    would resolve through the same linker whose failure we want to explain.
    Returns [] for anything that is not a readable 64- or 32-bit ELF file.
    """
    try:
        with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            # Mapped, not read: only the headers and the dynamic section are paged in
            # (Qt's ICU data library alone is 30 MB).
            return _needed_in(data)
    except (OSError, ValueError):
        return []


def _needed_in(data: mmap.mmap) -> list[str]:
    if len(data) < 0x40 or data[:4] != b"\x7fELF":
        return []
    is64 = data[4] == 2
    end = "<" if data[5] == 1 else ">"
    try:
        if is64:
            shoff, shentsize, shnum = (
                struct.unpack_from(end + "Q", data, 0x28)[0],
                struct.unpack_from(end + "H", data, 0x3A)[0],
                struct.unpack_from(end + "H", data, 0x3C)[0],
            )
        else:
            shoff, shentsize, shnum = (
                struct.unpack_from(end + "I", data, 0x20)[0],
                struct.unpack_from(end + "H", data, 0x2E)[0],
                struct.unpack_from(end + "H", data, 0x30)[0],
            )
        sections = []
        for i in range(shnum):
            base = shoff + i * shentsize
            if is64:
                _name, sh_type, _f, _a, off, size, link = struct.unpack_from(
                    end + "IIQQQQI", data, base
                )
            else:
                _name, sh_type, _f, _a, off, size, link = struct.unpack_from(
                    end + "IIIIIII", data, base
                )
            sections.append((sh_type, off, size, link))
        names: list[str] = []
        for sh_type, off, size, link in sections:
            if sh_type != 6:  # SHT_DYNAMIC
                continue
            strtab = sections[link][1]
            entry = 16 if is64 else 8
            for pos in range(off, off + size, entry):
                tag, value = struct.unpack_from(end + ("qQ" if is64 else "iI"), data, pos)
                if tag == 0:
                    break
                if tag == 1:  # DT_NEEDED
                    stop = data.find(b"\0", strtab + value)
                    if stop < 0:
                        break
                    names.append(data[strtab + value : stop].decode("utf-8", "replace"))
        return names
    except (struct.error, IndexError, ValueError):
        return []


def _probe_x11(display: str) -> str | None:
    """Open and close one X connection through libxcb, as Qt's xcb plugin will."""
    try:
        xcb = ctypes.CDLL("libxcb.so.1")
    except OSError as exc:
        return str(exc)
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
    xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
    conn = xcb.xcb_connect(display.encode(), None)
    try:
        code = int(xcb.xcb_connection_has_error(conn)) if conn else 1
    finally:
        if conn:
            xcb.xcb_disconnect(conn)
    if code == 0:
        return None
    return {
        1: "connection refused or the display does not exist",
        2: "extension not supported",
        3: "out of memory",
        4: "request too long",
        5: "cannot parse the display name",
        6: "no such screen",
        7: "file descriptor passing failed",
    }.get(code, f"xcb error {code}")
