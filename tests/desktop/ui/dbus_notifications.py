"""A freedesktop notification service on D-Bus for tests: records Notify and
CloseNotification calls and can send the signals a person's click or reply causes.

dbus-fast reads D-Bus type signatures from string annotations, which linters
take for broken forward references; hence the file-wide exemptions.
"""
# ruff: noqa: F722, F821
# mypy: ignore-errors

import asyncio
import contextlib
import shutil
import subprocess
from collections.abc import AsyncIterator
from typing import Any

import pytest
from dbus_fast.aio import MessageBus
from dbus_fast.service import ServiceInterface, method, signal

from tests.support.services import require


class FakeNotifications(ServiceInterface):
    def __init__(self, capabilities: list[str]) -> None:
        super().__init__("org.freedesktop.Notifications")
        self.capabilities = capabilities
        self.notified: list[dict[str, Any]] = []
        self.closed: list[int] = []
        self.arrived = asyncio.Event()

    @method()
    def GetCapabilities(self) -> "as":
        return self.capabilities

    @method()
    def GetServerInformation(self) -> "ssss":
        return ["fake", "tests", "1", "1.2"]

    @method()
    def Notify(
        self,
        app_name: "s",
        replaces_id: "u",
        app_icon: "s",
        summary: "s",
        body: "s",
        actions: "as",
        hints: "a{sv}",
        expire_timeout: "i",
    ) -> "u":
        nid = len(self.notified) + 1
        pairs = dict(zip(actions[::2], actions[1::2], strict=True))
        self.notified.append(
            {"id": nid, "icon": app_icon, "summary": summary, "body": body, "actions": pairs}
        )
        self.arrived.set()
        return nid

    @method()
    def CloseNotification(self, nid: "u") -> None:
        self.closed.append(nid)

    @signal()
    def ActionInvoked(self, nid: int, key: str) -> "us":
        return [nid, key]

    @signal()
    def NotificationReplied(self, nid: int, text: str) -> "us":
        return [nid, text]

    @signal()
    def NotificationClosed(self, nid: int, reason: int) -> "uu":
        return [nid, reason]


@contextlib.asynccontextmanager
async def private_session_bus(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    """A dbus-daemon of our own; this process's D-Bus clients use it meanwhile."""
    require(shutil.which("dbus-daemon") is not None, "dbus-daemon is not installed")
    daemon = await asyncio.create_subprocess_exec(
        "dbus-daemon", "--session", "--nofork", "--print-address=1", stdout=subprocess.PIPE
    )
    try:
        assert daemon.stdout is not None
        line = await asyncio.wait_for(daemon.stdout.readline(), 30)
        address = line.decode().strip()
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", address)
        yield address
    finally:
        daemon.terminate()
        await asyncio.wait_for(daemon.wait(), 30)


async def serve(address: str, service: FakeNotifications) -> MessageBus:
    bus = await MessageBus(bus_address=address).connect()
    bus.export("/org/freedesktop/Notifications", service)
    await bus.request_name("org.freedesktop.Notifications")
    return bus
