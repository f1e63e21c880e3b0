"""A throwaway desktop on a virtual screen: Xvfb, a tray host, optionally D-Bus
with a notification daemon. Shared by the display tests and
``scripts/screenshots.py``.

Xvfb picks a free display itself (``-displayfd``); trayer is an XEmbed tray
host that gives tray icons a real place and geometry. Everything started is
stopped (terminate, then kill) when the context exits.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

SCREEN = "1280x800x24"
PANEL_COLOUR = "0x2e3440"
READY_TIMEOUT = 15.0

NEEDED = {
    "desktop": ("Xvfb", "trayer", "xwininfo"),
    "dbus": ("dbus-run-session", "dunst", "dbus-monitor"),
}


def missing(*groups: str) -> list[str]:
    """Programs of the named groups that are not installed."""
    return [p for g in groups for p in NEEDED[g] if shutil.which(p) is None]


@dataclasses.dataclass
class Desktop:
    display: str
    env: dict[str, str]
    processes: list[subprocess.Popen[bytes]]

    def screenshot(self, path: Path, crop: tuple[int, int, int, int] | None = None) -> None:
        """The whole screen (or ``crop`` = x, y, w, h of it) as PNG, via ImageMagick."""
        cmd = ["import", "-window", "root"]
        if crop is not None:
            x, y, w, h = crop
            cmd += ["-crop", f"{w}x{h}+{x}+{y}", "+repage"]
        subprocess.run([*cmd, str(path)], env=self.env, check=True, timeout=30)

    def windows(self) -> str:
        return subprocess.run(
            ["xwininfo", "-root", "-tree"], env=self.env, capture_output=True, text=True, timeout=10
        ).stdout


def _wait(predicate: object, what: str, timeout: float = READY_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)  # an external process: nothing to await but its effect
    raise TimeoutError(f"{what} did not become ready within {timeout:.0f} s")


def _start_xvfb(screen: str) -> tuple[subprocess.Popen[bytes], str]:
    read, write = os.pipe()
    try:
        proc = subprocess.Popen(
            # -noreset: a server that resets when its last client (a readiness
            # probe) leaves refuses a client connecting meanwhile, such as trayer.
            [
                "Xvfb",
                "-displayfd",
                str(write),
                "-screen",
                "0",
                screen,
                "-nolisten",
                "tcp",
                "-noreset",
            ],
            pass_fds=(write,),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    finally:
        os.close(write)
    number = b""
    deadline = time.monotonic() + READY_TIMEOUT
    with os.fdopen(read, "rb", buffering=0) as pipe:
        while not number.endswith(b"\n"):
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("Xvfb did not report a display")
            chunk = pipe.read(16)
            if not chunk:
                break
            number += chunk
    return proc, f":{number.decode().strip()}"


def _start_trayer(desktop: Desktop, attempts: int = 3) -> None:
    """trayer now and then failed to come up on a just-started server (most
    likely the server's reset after a probe left, which ``-noreset`` removes):
    try again all the same."""
    for attempt in range(1, attempts + 1):
        proc = subprocess.Popen(
            [
                "trayer", "--edge", "top", "--align", "right",
                "--widthtype", "request", "--SetDockType", "true",
                "--height", "28", "--transparent", "true",
                "--alpha", "0", "--tint", PANEL_COLOUR,
            ],
            env=desktop.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        desktop.processes.append(proc)
        try:
            _wait(lambda: '("panel" "trayer")' in desktop.windows(), "trayer", timeout=8.0)
            return
        except TimeoutError:
            proc.kill()
            proc.wait()
            desktop.processes.remove(proc)
            if attempt == attempts:
                raise


@contextlib.contextmanager
def virtual_desktop(
    screen: str = SCREEN, *, tray: bool = True, keep_bus: bool = False
) -> Iterator[Desktop]:
    """``keep_bus``: keep the caller's D-Bus session (e.g. one from dbus-run-session)."""
    processes: list[subprocess.Popen[bytes]] = []
    runtime = tempfile.mkdtemp(prefix="presence-xdg-")
    os.chmod(runtime, 0o700)
    try:
        xvfb, display = _start_xvfb(screen)
        processes.append(xvfb)
        env = dict(os.environ)
        env.update(DISPLAY=display, QT_QPA_PLATFORM="xcb", XDG_RUNTIME_DIR=runtime)
        env.pop("WAYLAND_DISPLAY", None)
        if not keep_bus:
            env.pop("DBUS_SESSION_BUS_ADDRESS", None)
        desktop = Desktop(display, env, processes)
        if tray:
            _start_trayer(desktop)
        yield desktop
    finally:
        for proc in reversed(processes):
            if proc.poll() is None:
                proc.terminate()
        for proc in reversed(processes):
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(runtime, ignore_errors=True)
