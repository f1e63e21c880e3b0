"""Real X servers and D-Bus daemons for tests, started per test and always stopped."""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import subprocess
import time
from collections.abc import Iterator

from tests.support.services import require


def _read_line(fd: int, timeout: float) -> str:
    data = b""
    while not data.endswith(b"\n"):
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            raise TimeoutError("service did not report its address")
        chunk = os.read(fd, 256)
        if not chunk:
            break
        data += chunk
    return data.decode().strip()


@contextlib.contextmanager
def xvfb() -> Iterator[str]:
    """A fresh Xvfb on a free display number; yields ``:N``.

    ``-noreset``: by default an X server resets when its last client leaves,
    and a client connecting during that reset fails to open the display. The
    readiness checks here connect and leave (``xprop``) while the window
    manager is still starting, so on a busy machine Openbox now and then
    lost that race and exited ("Failed to open the display").
    """
    require(shutil.which("Xvfb") is not None, "Xvfb not installed (apt-get install xvfb)")
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        [
            "Xvfb",
            "-displayfd",
            str(write_fd),
            "-nolisten",
            "tcp",
            "-noreset",
            "-screen",
            "0",
            "1024x768x24",
        ],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    try:
        display = f":{_read_line(read_fd, 20)}"
        yield display
    finally:
        os.close(read_fd)
        proc.terminate()
        proc.wait(10)


@contextlib.contextmanager
def window_manager(display: str) -> Iterator[None]:
    """Openbox on ``display``: a real EWMH window manager keeps _NET_CLIENT_LIST."""
    require(shutil.which("openbox") is not None, "openbox not installed (apt-get install openbox)")
    env = {**os.environ, "DISPLAY": display}
    proc = subprocess.Popen(
        ["openbox", "--sm-disable"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # Openbox is ready once it has claimed the EWMH check window on the root
        # (the first start on a machine also writes its configuration: be patient).
        deadline = time.monotonic() + 60
        out = ""
        while time.monotonic() < deadline and proc.poll() is None:
            out = subprocess.run(
                ["xprop", "-root", "_NET_SUPPORTING_WM_CHECK"],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            ).stdout
            if "window id" in out:
                break
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(0.05)
        else:
            raise TimeoutError(f"openbox did not start (exit {proc.poll()}, {out!r})")
        yield
    finally:
        proc.terminate()
        proc.wait(10)


@contextlib.contextmanager
def dbus_daemon() -> Iterator[str]:
    """A private session bus; yields its address."""
    require(
        shutil.which("dbus-daemon") is not None, "dbus-daemon not installed (apt-get install dbus)"
    )
    proc = subprocess.Popen(
        ["dbus-daemon", "--session", "--nofork", "--print-address=1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    try:
        yield _read_line(proc.stdout.fileno(), 20)
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()
