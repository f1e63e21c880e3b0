"""A reply typed in a notification arrives (issue 17): two whole apps on a real
server; alice's app shows bob's message through desktop-notifier on a private
D-Bus session bus, and the notification service sends back what she typed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from presence_desktop.ui.app import DesktopUi
from presence_desktop.ui.notifications import DesktopNotifierBackend
from tests.desktop.net.helpers import until
from tests.integration.apps import App, befriend

from .dbus_notifications import FakeNotifications, private_session_bus, serve
from .realapps import start_server, stop_all


@pytest.fixture
async def session_bus(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    async with private_session_bus(monkeypatch) as address:
        yield address


pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("app_stays_open")]


async def notified(service: FakeNotifications, summary: str) -> dict[str, Any]:
    """The first notification with this summary, waiting for Notify calls to arrive."""
    async with asyncio.timeout(30):
        while True:
            for n in service.notified:
                if n["summary"] == summary:
                    return n
            service.arrived.clear()
            await service.arrived.wait()


async def test_a_reply_typed_in_the_notification_reaches_the_friend(
    session_bus: str,
    tmp_path: Path,
) -> None:
    service = FakeNotifications(["body", "actions", "inline-reply"])
    bus = await serve(session_bus, service)
    server = await start_server(tmp_path / "server")
    alice = App(tmp_path / "alice", server.url, "alice")
    bob = App(tmp_path / "bob", server.url, "bob")
    ui = DesktopUi(
        alice.controller,
        alice.controller,
        cache_dir=tmp_path / "cache",
        settings=alice.settings,
        tray_available=False,
        chat=alice.controller,
    )
    try:
        assert isinstance(ui.notifier.backends[0], DesktopNotifierBackend)
        await alice.start()
        await bob.start()
        await befriend(alice, bob)
        # The person replies once the notification is on screen: after desktop-notifier
        # has the service's id for it (Notifier.shown), not while Notify is in flight.
        on_screen: asyncio.Future[object] = asyncio.get_running_loop().create_future()

        def note(_backend: str, alert: object) -> None:
            if getattr(alert, "title", "") == "Message from bob" and not on_screen.done():
                on_screen.set_result(alert)

        ui.notifier.shown.connect(note)
        bob.controller.send_message(alice.me, "lunch?")
        await asyncio.wait_for(on_screen, 30)
        shown = await notified(service, "Message from bob")
        assert "inline-reply" in shown["actions"]
        assert shown["icon"].startswith("file://")  # bob's (initials) avatar
        service.NotificationReplied(shown["id"], "on my way")
        bob_thread = bob.controller.conversations
        await until(
            lambda: [e.text for e in bob_thread.messages(alice.me)] == ["lunch?", "on my way"],
            bob_thread.changed,
        )
        mine = alice.controller.conversations.messages(bob.me)
        assert [(e.outgoing, e.text) for e in mine] == [(False, "lunch?"), (True, "on my way")]
    finally:
        await ui.aclose()
        await stop_all([server], [alice, bob])
        bus.disconnect()
