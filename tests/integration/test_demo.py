"""The demo as a first-time user meets it: friends at once, a notification within seconds."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from presence_desktop.core.api import AlertKind
from presence_desktop.core.credentials import MemoryCredentials
from presence_desktop.demo import DEMO_LOGIN, start_demo
from presence_protocol import SeenStatus

from ..desktop.net.helpers import next_emit, until
from .apps import App

pytestmark = pytest.mark.slow  # the demo's scripted events take seconds

HANG_GUARD = 120.0
"""The demo's scripted events come within about 10 s; this only stops a hang."""


async def test_the_demo_shows_friends_then_a_message_a_request_and_a_friend_online(
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    demo = await start_demo(tmp_path / "demo")
    app = App(tmp_path / "app", demo.server_url, demo.login, credentials=MemoryCredentials())
    try:
        await app.start()
        assert app.state.me is not None and app.state.me.login == DEMO_LOGIN
        friends = app.state.sorted_friends()
        assert len(friends) >= 5
        statuses = {f.status for f in friends}
        assert {SeenStatus.ONLINE, SeenStatus.AWAY, SeenStatus.DND, SeenStatus.OFFLINE} <= statuses
        assert any(f.activity and f.activity.language for f in friends)
        absent = [f for f in friends if f.status is SeenStatus.OFFLINE]
        # Friends who start offline were last seen hours ago, so their return is news.
        assert absent and all(time.time() - (f.last_seen or 0) > 3600 for f in absent)
        ready = time.monotonic() - started

        await until(lambda: app.alerts, app.controller.alerts, within=20)
        first = time.monotonic() - started
        assert app.alerts[0].kind is AlertKind.MESSAGE
        await until(
            lambda: any(a.kind is AlertKind.FRIEND_REQUEST for a in app.alerts),
            app.controller.alerts,
            within=HANG_GUARD,
        )
        assert [a.title for a in app.alerts if a.kind is AlertKind.FRIEND_REQUEST] == [
            "zoe wants to be your friend"
        ]
        assert app.state.incoming
        await until(
            lambda: any(a.kind is AlertKind.FRIEND_ONLINE for a in app.alerts),
            app.controller.alerts,
            within=HANG_GUARD,
        )
        online = [a for a in app.alerts if a.kind is AlertKind.FRIEND_ONLINE]
        assert online[0].title.startswith("erin is online")
        print(f"demo: friends listed after {ready:.2f} s, first notification after {first:.2f} s")
    finally:
        await app.controller.stop()
        await demo.stop()


async def test_the_demo_can_start_twice_in_the_same_directory(tmp_path: Path) -> None:
    for _ in range(2):
        demo = await start_demo(tmp_path)
        app = App(tmp_path / "app", demo.server_url, demo.login)
        try:
            await app.start()
            assert len(app.state.friends) == 6
            # Settings → Devices: the demo user's other devices, each once per directory.
            listed = next_emit(app.controller.devices_listed, within=HANG_GUARD)
            app.controller.list_devices()
            names = [d.name for d in await listed if not d.current]
            assert (names.count("work-desktop"), names.count("old-laptop")) == (1, 1)
            assert "demo" not in names  # the set-up device signed out
        finally:
            await app.controller.stop()
            await demo.stop()
