"""Idle and lock on real services: Xvfb with xdotool input, and a private D-Bus."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest

from presence_desktop.core.idle import IdleSettings, IdleWatcher, StatusRules, connect_lock
from presence_desktop.platform.idle_x11 import X11Idle
from presence_protocol import Status
from tests.support.services import require

from .services import dbus_daemon, xvfb

pytestmark = pytest.mark.slow  # a real X server (Xvfb) and xdotool


@pytest.fixture
def display() -> Iterator[str]:
    require(shutil.which("xdotool") is not None, "xdotool not installed (apt-get install xdotool)")
    with xvfb() as name:
        yield name


def xdotool(display: str, *args: str) -> None:
    subprocess.run(["xdotool", *args], env={**os.environ, "DISPLAY": display}, check=True)


def next_status(rules: StatusRules, timeout: float = 15) -> asyncio.Future[Status]:
    """The next status change, listened for from this moment on."""
    future: asyncio.Future[Status] = asyncio.get_running_loop().create_future()

    def slot(status: Status) -> None:
        if not future.done():
            future.set_result(status)

    rules.changed.connect(slot)
    future.add_done_callback(lambda _: rules.changed.disconnect(slot))
    return asyncio.ensure_future(asyncio.wait_for(future, timeout))


IDLE_MARGIN = 3.0
"""Seconds of idleness before each input: 10x and more the time an input and a read take."""


@pytest.mark.display
def test_x11_input_resets_idle(display: str) -> None:
    source = X11Idle.open(display)
    assert source is not None, "Xvfb has MIT-SCREEN-SAVER; libXss must load"
    try:
        start = time.monotonic()
        first = source.idle_seconds()
        assert first is not None
        # Idle grows with real time while nobody touches the server...
        # IDLE_MARGIN of idleness first: input must bring it below that, so the
        # check tolerates a stall of that long between the input and the read
        # (the input itself takes milliseconds).
        while (source.idle_seconds() or 0) < first + IDLE_MARGIN:
            assert time.monotonic() - start < 30, "idle time does not grow"  # hang guard
            time.sleep(0.05)  # the X server's counter: nothing to wait on but time
        # ...and input resets it: afterwards it is less than just before.
        before = source.idle_seconds() or 0
        xdotool(display, "mousemove", "200", "200")
        after = source.idle_seconds()
        assert after is not None and after < before
        while (source.idle_seconds() or 0) < after + IDLE_MARGIN:
            assert time.monotonic() - start < 60, "idle time does not grow"  # hang guard
            time.sleep(0.05)  # the X server's counter: nothing to wait on but time
        before = source.idle_seconds() or 0
        xdotool(display, "key", "shift")
        assert (source.idle_seconds() or 99) < before
    finally:
        source.close()
    assert source.idle_seconds() is None


@pytest.mark.display
async def test_short_threshold_turns_away_and_input_brings_me_back(display: str) -> None:
    source = X11Idle.open(display)
    assert source is not None
    rules = StatusRules(IdleSettings(away_after_minutes=1.5 / 60))  # 1.5 s
    watcher = IdleWatcher(rules, source, asyncio.get_running_loop(), away_poll=0.1)
    xdotool(display, "mousemove", "10", "10")
    try:
        away = next_status(rules)
        begun = time.monotonic()
        watcher.start()
        assert rules.status is Status.ONLINE
        assert await away is Status.AWAY
        waited = time.monotonic() - begun
        assert waited >= 1.0, waited  # not before the 1.5 s threshold (less a timer's slack)
        assert rules.automatic_away
        checks_to_away = watcher.checks
        back = next_status(rules)
        xdotool(display, "mousemove", "300", "300")
        assert await back is Status.ONLINE
        # A manual status survives idleness: nothing changes when idle passes again.
        rules.set_manual(Status.DND)
        with pytest.raises(TimeoutError):
            await next_status(rules, timeout=2.5)
        assert rules.status is Status.DND
        # While present the source is asked when the threshold could be reached,
        # not in a loop: polling at away_poll would have asked 15 times by now.
        assert checks_to_away <= 4, checks_to_away
    finally:
        watcher.stop()
        source.close()


@pytest.fixture
def session_bus() -> Iterator[str]:
    require(shutil.which("dbus-send") is not None, "dbus-send not installed (apt-get install dbus)")
    with dbus_daemon() as address:
        yield address


async def test_screensaver_signal_locks_and_unlocks(session_bus: str) -> None:
    from PySide6.QtDBus import QDBusConnection

    from presence_desktop.platform.screenlock_dbus import DBusLockMonitor

    bus = QDBusConnection.connectToBus(session_bus, f"lock-test-{id(session_bus)}")
    assert bus.isConnected()
    monitor = DBusLockMonitor(session_bus=bus, system_bus=QDBusConnection("no-system-bus"))
    assert monitor.start()
    rules = StatusRules()
    connect_lock(monitor, rules)

    async def emit(interface: str, path: str, active: bool) -> None:
        proc = await asyncio.create_subprocess_exec(
            "dbus-send", f"--bus={session_bus}", "--type=signal", path,
            f"{interface}.ActiveChanged", f"boolean:{str(active).lower()}",
        )  # fmt: skip
        assert await proc.wait() == 0

    try:
        waiting = next_status(rules)
        await emit("org.gnome.ScreenSaver", "/org/gnome/ScreenSaver", True)
        assert await waiting is Status.AWAY
        waiting = next_status(rules)
        await emit("org.gnome.ScreenSaver", "/org/gnome/ScreenSaver", False)
        assert await waiting is Status.ONLINE
        # Locked by one screensaver, the other one saying "inactive" does not unlock.
        waiting = next_status(rules)
        await emit("org.freedesktop.ScreenSaver", "/org/freedesktop/ScreenSaver", True)
        assert await waiting is Status.AWAY
        await emit("org.gnome.ScreenSaver", "/org/gnome/ScreenSaver", False)
        waiting = next_status(rules)
        await emit("org.freedesktop.ScreenSaver", "/org/freedesktop/ScreenSaver", False)
        assert await waiting is Status.ONLINE
    finally:
        monitor.stop()
        QDBusConnection.disconnectFromBus(bus.name())
