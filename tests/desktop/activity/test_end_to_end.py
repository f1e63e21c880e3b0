"""A VS Code-like client on the bridge → desktop → real server → a friend's desktop.

Alice's app talks to the server through a recording WebSocket relay, so the
test reads every frame her desktop put on the wire and proves that no path,
remote or unshared name ever left her machine.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import Server, ServerConnection, serve

from presence_desktop.core.events import Signal
from presence_desktop.core.format import activity_line
from presence_desktop.core.privacy import PrivacyRule, PrivacySettings, ShareLevel
from presence_desktop.net.editor_activity import EditorActivity
from presence_protocol import ActivityKind, SeenStatus, limits
from tests.support.servers import ServerHandle

from ...integration.apps import App, befriend
from ..net.helpers import fast_backoff, until
from .editor_client import Editor

pytestmark = pytest.mark.slow  # the real extension under node, the bridge and a server


class Relay:
    """Forwards one desktop's WebSocket to the server and records what it sends."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.sent: list[str] = []
        self.server: Server | None = None

    async def start(self) -> str:
        self.server = await serve(
            self._handle,
            "127.0.0.1",
            0,
            subprotocols=[limits.SUBPROTOCOL],  # type: ignore[list-item]
        )
        port = next(iter(self.server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}"

    async def _handle(self, downstream: ServerConnection) -> None:
        async with connect(self.upstream, subprotocols=[limits.SUBPROTOCOL]) as up:  # type: ignore[list-item]

            async def client_to_server() -> None:
                async for frame in downstream:
                    self.sent.append(frame if isinstance(frame, str) else frame.decode())
                    await up.send(frame)

            async def server_to_client() -> None:
                async for frame in up:
                    await downstream.send(frame)

            tasks = [
                asyncio.ensure_future(client_to_server()),
                asyncio.ensure_future(server_to_client()),
            ]
            _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    def presence_frames(self) -> list[dict[str, Any]]:
        return [m for m in map(json.loads, self.sent) if m.get("type") == "set_presence"]


class FakeLock:
    def __init__(self) -> None:
        self.changed = Signal[bool]()

    def start(self) -> bool:
        return True

    def stop(self) -> None:
        pass


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ServerHandle]:
    handle = ServerHandle(tmp_path)
    await handle.start()
    yield handle
    await handle.stop()


@pytest.fixture
async def relay(server: ServerHandle) -> AsyncIterator[Relay]:
    r = Relay(server.url)
    yield r
    await r.stop()


HOME = "/home/alice/work"
SHARED = {
    "type": "activity",
    "workspace": "acme-api",
    "folder": f"{HOME}/acme-api",
    "git_remote": "https://alice:ghp_notarealtoken@github.com/acme/api.git",
    "file": f"{HOME}/acme-api/src/secret_plan.py",
    "language": "python",
    "kind": "coding",
    "focused": True,
}
PRIVATE = {
    **SHARED,
    "workspace": "payroll",
    "folder": f"{HOME}/payroll",
    "git_remote": "git@gitlab.internal.example:hr/payroll.git",
    "file": f"{HOME}/payroll/salaries.rs",
    "language": "rust",
}


async def test_editor_activity_reaches_a_friend_filtered_and_no_path_is_sent(
    server: ServerHandle, relay: Relay, tmp_path: Path
) -> None:
    alice = App(tmp_path / "alice", await relay.start(), "alice", backoff=fast_backoff)
    bob = App(tmp_path / "bob", server.url, "bob", backoff=fast_backoff)
    apps = [alice, bob]
    lock = FakeLock()
    editors = None
    try:
        await alice.start()
        await bob.start()
        await befriend(alice, bob)
        editors = EditorActivity(
            alice.state,
            alice.controller.set_editor_presence,
            privacy=PrivacySettings(
                rules=(PrivacyRule(remote="github.com/acme/*", level=ShareLevel.PROJECT),)
            ),
            bridge_address=str(tmp_path / "run" / "bridge.sock"),
            lock_monitor=lock,
            use_system_sources=False,
        )
        editors.start()
        assert editors.problems == []

        def seen() -> Any:
            return bob.state.friends[alice.me]

        changed: tuple[Signal[Any], ...] = (bob.state.friend_changed,)

        # An opted-in repository: kind, language and project label reach Bob.
        window = await Editor.connect(editors.bridge.address)
        await window.send(SHARED)
        await until(lambda: seen().activity and seen().activity.project == "acme-api", *changed)
        friend = seen()
        assert friend.status is SeenStatus.ONLINE
        assert friend.activity.kind is ActivityKind.CODING
        assert friend.activity.language == "Python"
        assert friend.activity.file is None  # project level: no file name
        assert activity_line(friend, time.time()).startswith("Coding · Python · acme-api")
        assert editors.preview.line == "Coding · Python · acme-api"

        # A second window, focused, in a repository nobody opted in: private label.
        other = await Editor.connect(editors.bridge.address, window="2")
        await other.send(PRIVATE)
        await until(lambda: seen().activity and seen().activity.language == "Rust", *changed)
        assert seen().activity.project == "a private project"
        assert activity_line(seen(), time.time()).startswith("Coding · Rust · a private project")

        # That window closes: the first one is what I am doing again.
        await other.close()
        await until(lambda: seen().activity and seen().activity.project == "acme-api", *changed)

        # Locking the screen turns me away without activity; unlocking brings me back.
        lock.changed.emit(True)
        await until(lambda: seen().status is SeenStatus.AWAY and not seen().activity, *changed)
        lock.changed.emit(False)
        await until(lambda: seen().status is SeenStatus.ONLINE and seen().activity, *changed)
        assert alice.settings.runtime.my_status.value == "online"  # never stored as my choice

        # The editor says goodbye: Bob sees Alice online with no activity.
        await window.send({"type": "bye"})
        await until(lambda: seen().activity is None, *changed)

        # Alice quits; once Bob sees her offline the server has finished with her.
        await editors.aclose()
        editors = None
        await alice.controller.stop()
        await until(lambda: seen().status is SeenStatus.OFFLINE, *changed)
    finally:
        if editors is not None:
            await editors.aclose()
        for app in apps:
            await app.controller.stop()

    frames = relay.presence_frames()
    assert len(frames) >= 4
    wire = "\n".join(relay.sent)
    for secret in (HOME, "secret_plan", "salaries", "payroll", "github.com", "gitlab", "ghp_"):
        assert secret not in wire, secret
    for frame in frames:
        for key, value in (frame.get("activity") or {}).items():
            assert not (isinstance(value, str) and ("/" in value or "\\" in value)), (key, value)
