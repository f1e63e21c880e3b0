"""The reconnect countdown ticks once a second only while it is visible."""

from __future__ import annotations

import time

from pytestqt.qtbot import QtBot

from presence_desktop.core.api import ConnectionEvents, ConnectionInfo, Link
from presence_desktop.ui.countdown import Countdown


def test_ticks_while_reconnecting_and_stops_otherwise(qtbot: QtBot) -> None:
    events = ConnectionEvents()
    countdown = Countdown(events)
    events.set(ConnectionInfo(Link.ONLINE))
    assert not countdown.timer.isActive()
    events.set(ConnectionInfo(Link.RECONNECTING, retry_at=time.monotonic() + 2.5))
    assert countdown.timer.isActive()
    assert countdown.timer.remainingTime() <= 1000
    with qtbot.waitSignal(countdown.tick, timeout=10_000):  # ticks each second; a hang guard
        pass
    events.set(ConnectionInfo(Link.ONLINE))
    assert not countdown.timer.isActive()
    events.set(ConnectionInfo(Link.RECONNECTING, retry_at=None))
    assert not countdown.timer.isActive()
    events.set(ConnectionInfo(Link.RECONNECTING, retry_at=time.monotonic() - 1))
    assert not countdown.timer.isActive()
