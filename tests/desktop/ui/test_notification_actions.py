"""Notifications that act (issue 17): what each alert offers, and the real
desktop-notifier against a notification service on a private D-Bus session bus
(a small org.freedesktop.Notifications implementation that records calls and
sends the signals a person's click or reply would)."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from presence_desktop.core.api import Alert, AlertKind
from presence_desktop.ui.notifications import (
    AlertHandlers,
    DesktopNotifierBackend,
    Notifier,
    Offer,
    plan_actions,
)

from .dbus_notifications import FakeNotifications, private_session_bus, serve


@pytest.fixture
async def session_bus(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    async with private_session_bus(monkeypatch) as address:
        yield address


MESSAGE = Alert(AlertKind.MESSAGE, "Message from alice", "lunch?", (2,))
REQUEST = Alert(AlertKind.FRIEND_REQUEST, "frank wants to be friends", "", (7,))


def test_what_each_alert_offers() -> None:
    assert plan_actions(MESSAGE, can_reply=True, can_buttons=True) is Offer.REPLY_FIELD
    assert plan_actions(MESSAGE, can_reply=False, can_buttons=True) is Offer.REPLY_BUTTON
    assert plan_actions(MESSAGE, can_reply=False, can_buttons=False) is None
    assert plan_actions(REQUEST, can_reply=True, can_buttons=True) is Offer.ACCEPT_DECLINE
    assert plan_actions(REQUEST, can_reply=True, can_buttons=False) is None
    several = Alert(AlertKind.MESSAGE, "3 messages", "", (2, 3))
    assert plan_actions(several, can_reply=True, can_buttons=True) is None
    online = Alert(AlertKind.FRIEND_ONLINE, "alice is online", "", (2,))
    assert plan_actions(online, can_reply=True, can_buttons=True) is None


class Recorder:
    def __init__(self, avatar: Path | None = None) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.event = asyncio.Event()
        self.handlers = AlertHandlers(
            reply=lambda uid, text: self._note("reply", (uid, text)),
            open_conversation=lambda uid: self._note("open", uid),
            accept=lambda uid: self._note("accept", uid),
            decline=lambda uid: self._note("decline", uid),
            avatar=lambda uid: avatar if uid == 2 else None,
        )

    def _note(self, name: str, arg: Any) -> None:
        self.calls.append((name, arg))
        self.event.set()

    async def next(self) -> tuple[str, Any]:
        await asyncio.wait_for(self.event.wait(), 15)
        self.event.clear()
        return self.calls[-1]


@pytest.mark.slow
async def test_reply_in_the_notification_avatar_and_one_per_friend(
    session_bus: str, tmp_path: Path
) -> None:
    service = FakeNotifications(["body", "actions", "inline-reply"])
    bus = await serve(session_bus, service)
    avatar = tmp_path / "alice.png"
    avatar.write_bytes(b"\x89PNG\r\n\x1a\n")
    recorder = Recorder(avatar)
    backend = DesktopNotifierBackend(handlers=recorder.handlers)
    notifier = Notifier([backend])
    try:
        assert await notifier.deliver(MESSAGE) == "desktop-notifier"
        first = service.notified[-1]
        assert backend.last_offer is Offer.REPLY_FIELD
        assert "inline-reply" in first["actions"]
        assert first["icon"] == avatar.as_uri()  # the friend's avatar, not the app icon
        # A second message from alice replaces the first instead of piling up.
        assert await notifier.deliver(Alert(AlertKind.MESSAGE, "Message from alice", "?", (2,)))
        second = service.notified[-1]
        assert service.closed == [first["id"]]
        service.NotificationReplied(second["id"], "  sure, 12:30 ")
        assert await recorder.next() == ("reply", (2, "sure, 12:30"))
    finally:
        await notifier.aclose()
        bus.disconnect()


@pytest.mark.slow
async def test_reply_button_opens_the_conversation_and_requests_accept_or_decline(
    session_bus: str,
) -> None:
    service = FakeNotifications(["body", "actions"])  # no inline reply (e.g. dunst)
    bus = await serve(session_bus, service)
    recorder = Recorder()
    backend = DesktopNotifierBackend(handlers=recorder.handlers)
    notifier = Notifier([backend])
    try:
        assert await notifier.deliver(MESSAGE) == "desktop-notifier"
        shown = service.notified[-1]
        assert backend.last_offer is Offer.REPLY_BUTTON and shown["icon"] == ""
        reply_key = next(k for k, title in shown["actions"].items() if title == "Reply")
        service.ActionInvoked(shown["id"], reply_key)
        assert await recorder.next() == ("open", 2)

        assert await notifier.deliver(REQUEST) == "desktop-notifier"
        shown = service.notified[-1]
        titles = sorted(t for t in shown["actions"].values() if t)
        assert titles == ["Accept", "Decline"]
        accept_key = next(k for k, title in shown["actions"].items() if title == "Accept")
        service.ActionInvoked(shown["id"], accept_key)
        assert await recorder.next() == ("accept", 7)
    finally:
        await notifier.aclose()
        bus.disconnect()


async def test_a_friend_without_a_picture_gets_an_initials_avatar_file(
    tmp_path: Path,
) -> None:
    from PySide6.QtGui import QImage

    from presence_desktop.ui.app import DesktopUi
    from presence_desktop.ui.notifications import LogBackend

    from .fakes import FakeCore, friend, snapshot

    core = FakeCore()
    core.state.apply_snapshot(snapshot(friend(2, "alice", name="Alice Liddell")))
    ui = DesktopUi(core, core.actions, cache_dir=tmp_path, backends=[LogBackend()])  # type: ignore[arg-type]
    try:
        path = ui.avatar_file(2)
        assert path is not None and path.is_relative_to(tmp_path)
        image = QImage(str(path))
        assert image.width() == image.height() > 0
        assert ui.avatar_file(99) is None  # nobody we know
    finally:
        await ui.aclose()
