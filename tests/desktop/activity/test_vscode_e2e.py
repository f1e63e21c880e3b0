"""Sign in with VS Code's GitHub account, end to end, and see friends in VS Code.

Real parts: the real extension code under node (with the ``vscode`` stub,
since VS Code itself cannot run here), the desktop's real bridge,
``EditorLink``, ``Controller`` with its ``PresenceClient`` and the tray's
``AppMenu`` (offscreen), a presence_server on a loopback port with a SQLite
file that accepts editor sessions, and the fake GitHub, whose token for
octocat belongs to another OAuth app (the editor's). Friends are real users
of that server on their own connections.

The run: the person chooses "Use VS Code's GitHub account" in the tray menu;
only then does the extension ask VS Code for a GitHub session; the token goes
to the desktop and on to the server once; the desktop ends signed in and the
extension's view model holds the popup's list. Then the extension sets my
status and messages a friend, and the friend sees both. The GitHub token is
in no file, log or database afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from presence_desktop.controller import Controller
from presence_desktop.core.api import ConnectionEvents, Link
from presence_desktop.core.backoff import backoff_delays
from presence_desktop.core.credentials import MemoryCredentials
from presence_desktop.core.format import activity_line
from presence_desktop.core.settings import SettingsStore
from presence_desktop.core.state import PresenceState
from presence_desktop.net.editor_activity import EditorActivity
from presence_desktop.net.editor_link import EditorLink
from presence_desktop.ui.menus import AppMenu
from presence_protocol import (
    Activity,
    AuthOk,
    Hello,
    LoginGitHubToken,
    Message,
    PresenceUpdate,
    SeenStatus,
    SendMessage,
    SetPresence,
    Snapshot,
    Status,
)
from presence_server.config import ServerConfig
from presence_server.edge.github import GitHubAuth, GitHubSettings
from presence_server.edge.server import start_server
from tests.fakes.github import EDITOR_APP, FakeGitHub
from tests.server.client import Client, befriend
from tests.support.services import require

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="Unix socket bridge"),
]

EXTENSION = Path(__file__).resolve().parents[3] / "resources" / "vscode-extension"
TIMEOUT = 30.0


class Node:
    """The extension under node: events out (JSON lines), commands in."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.events: list[dict[str, Any]] = []
        self._arrived = asyncio.Condition()
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            event = json.loads(raw)
            async with self._arrived:
                self.events.append(event)
                self._arrived.notify_all()
        async with self._arrived:
            self._arrived.notify_all()

    async def send(self, command: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command).encode() + b"\n")
        await self.proc.stdin.drain()

    async def wait(self, check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The latest event matching ``check`` (waiting for one to arrive)."""
        async with asyncio.timeout(TIMEOUT), self._arrived:
            while True:
                for event in reversed(self.events):
                    if check(event):
                        return event
                if self._reader.done():
                    raise AssertionError(f"node exited; last events {self.events[-3:]}")
                await self._arrived.wait()

    async def run(self, command: str, *answers: Any, args: list[Any] | None = None) -> None:
        run_id = str(len(self.events))
        await self.send(
            {
                "cmd": "run",
                "id": run_id,
                "command": command,
                "answers": list(answers),
                "args": args or [],
            }
        )
        done = await self.wait(lambda e: e["event"] == "done" and e["id"] == run_id)
        assert "error" not in done, done


async def github_user(url: str, token: str) -> Client:
    client = await Client.open(url)
    await client.expect(Hello)
    ok = await client.request(LoginGitHubToken(access_token=token, device="peer"))
    assert isinstance(ok, AuthOk), ok
    client.user = ok.user
    client.snapshot = await client.expect(Snapshot)
    return client


class Nav:
    def open_friends(self) -> None: ...
    def open_add_friend(self) -> None: ...
    def open_settings(self) -> None: ...
    def request_quit(self) -> None: ...


async def until(check: Callable[[], bool], *signals: Any) -> None:
    loop = asyncio.get_running_loop()
    changed = asyncio.Event()

    def poke(_value: object) -> None:
        loop.call_soon(changed.set)

    for signal in signals:
        signal.connect(poke)
    try:
        async with asyncio.timeout(TIMEOUT):
            while not check():
                await changed.wait()
                changed.clear()
    finally:
        for signal in signals:
            signal.disconnect(poke)


def files_containing(root: Path, secret: str) -> list[str]:
    return [
        str(p.relative_to(root))
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink() and secret.encode() in p.read_bytes()
    ]


async def test_signed_in_with_vs_codes_github_account_and_friends_in_the_view(
    tmp_path: Path,
    fake_github: FakeGitHub,
    github_settings: GitHubSettings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    require(shutil.which("node") is not None, "node not installed")
    caplog.set_level(logging.DEBUG)
    # The suite's fake GitHub: octocat, hubot (1001) and monalisa (1002).
    settings = dataclasses.replace(github_settings, accept_other_apps=True)
    auth = GitHubAuth(settings, timeout=5.0)
    (tmp_path / "server").mkdir()
    server = await start_server(
        ServerConfig(
            host="127.0.0.1",
            port=0,
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'server' / 'presence.db'}",
            github=auth,
        )
    )
    users = fake_github.users
    peers: list[Client] = []
    stack = contextlib.AsyncExitStack()
    try:
        # octocat already has two friends: hubot (online, coding) and monalisa (offline).
        hubot = await github_user(server.url, fake_github.issue_token(users[1001]))
        mona = await github_user(server.url, fake_github.issue_token(users[1002]))
        octo = await github_user(server.url, fake_github.issue_token(users[583231]))
        peers += [hubot, mona, octo]
        await befriend(hubot, octo)
        await befriend(mona, octo)
        await octo.close()
        await mona.close()
        since = int(time.time()) - 600
        await hubot.send(
            SetPresence(
                status=Status.ONLINE,
                activity=Activity(language="Python", project="api", since=since),
            )
        )

        # The desktop, signed out, with its bridge and the tray menu.
        state, connection = PresenceState(), ConnectionEvents()
        store = SettingsStore(tmp_path / "desktop" / "config", tmp_path / "desktop" / "state")
        store.update(server_url=server.url)
        credentials = MemoryCredentials()
        controller = Controller(
            state=state,
            connection=connection,
            settings=store,
            credentials=credentials,
            device="e2e-laptop",
            backoff=lambda: backoff_delays(base=0.05, cap=0.2),
        )
        editors = EditorActivity(
            state,
            controller.set_editor_presence,
            bridge_address=str(tmp_path / "run" / "bridge.sock"),
            use_system_sources=False,
        )
        link = EditorLink(
            editors.bridge,
            state,
            connection,
            controller,
            lambda: controller.client,
            device="e2e-laptop",
            errors=controller.errors,
        )
        errors: list[Any] = []
        controller.errors.connect(errors.append)
        menu = AppMenu(state, connection, controller, Nav(), editor_sign_in=link)
        await controller.start()
        stack.push_async_callback(controller.stop)
        editors.start()
        stack.push_async_callback(editors.aclose)
        stack.push_async_callback(link.aclose)
        await until(lambda: connection.current.link is Link.SIGNED_OUT, connection.changed)

        # VS Code starts, with the extension; VS Code is signed in to GitHub.
        proc = await asyncio.create_subprocess_exec(
            "node", str(EXTENSION / "test-support" / "e2e.js"), str(tmp_path),
            env={**os.environ, "PRESENCE_BRIDGE_SOCKET": editors.bridge.address},
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )  # fmt: skip
        node = Node(proc)

        async def stop_node() -> None:
            if proc.returncode is None:
                with contextlib.suppress(Exception):
                    await node.send({"cmd": "quit"})
                try:
                    await asyncio.wait_for(proc.wait(), 10)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
            await node._reader

        stack.push_async_callback(stop_node)
        editor_token = fake_github.issue_token(users[583231], app=EDITOR_APP)
        await node.send({"cmd": "session", "token": editor_token})
        await node.wait(lambda e: e["event"] == "view" and e["desktop"] == "connected")

        # The tray offers VS Code's account (signed out, editor connected, server accepts).
        await until(lambda: link.can_offer_editor_sign_in, link.offer_changed)
        menu.refresh()
        assert menu.sign_in_with_editor is not None and menu.sign_in_with_editor.isVisible()
        offered = await node.wait(
            lambda e: e["event"] == "view" and (e["state"] or {}).get("editor_sign_in") is True
        )
        assert offered["sessionRequests"] == [], "VS Code is not asked before the person chooses"
        menu.sign_in_with_editor.trigger()

        # Signed in, and the extension's view model holds the popup's list.
        view = await node.wait(
            lambda e: (
                e["event"] == "view"
                and bool(e["state"] and e["state"]["signed_in"])
                and len(e["sections"]) == 2
                and e["sections"][0]["friends"][0]["description"] != "Online"
                # The tree is drawn from the same model on VS Code's next refresh.
                and len(e["tree"]["items"]) == 2
            )
        )
        await until(lambda: connection.current.link is Link.ONLINE, connection.changed)
        assert state.me is not None and state.me.login == "octocat"
        assert view["sessionRequests"] == [
            {"providerId": "github", "scopes": ["read:user"], "options": {"createIfNone": True}}
        ]
        online, offline = view["sections"]
        assert (online["title"], offline["title"]) == ("Online", "Offline")
        assert [f["label"] for f in online["friends"]] == ["Hubot"]
        assert [f["login"] for f in offline["friends"]] == ["monalisa"]
        # Exactly the popup's second lines, rendered by the extension at the same moment.
        assert online["friends"][0]["description"] == activity_line(
            state.friends[1001], view["now"]
        )
        assert online["friends"][0]["description"].startswith("Coding · Python · api · ")
        assert offline["friends"][0]["description"] == activity_line(
            state.friends[1002], view["now"]
        )
        assert view["statusBar"]["text"] == "● Online · 1 friend"
        assert view["tree"]["items"][0]["label"] == "Online (1)"
        await node.wait(lambda e: e["event"] == "message" and "as octocat" in e["text"])
        menu.refresh()
        assert not menu.sign_in_with_editor.isVisible()

        # The other direction: status and a message from VS Code reach the friend.
        await node.run("presence.setStatus", {"pick": "dnd"}, {"pick": "Until I change it"})
        update = await hubot.expect(PresenceUpdate, user_id=583231, status=SeenStatus.DND)
        assert update.until is None
        await node.wait(
            lambda e: e["event"] == "view" and e["statusBar"]["text"].startswith("⊘ Do not disturb")
        )
        await node.run("presence.messageFriend", {"pick": 1001}, "pairing at 3?")
        message = await hubot.expect(Message, sender=583231)
        assert message.text == "pairing at 3?"
        # A friend's answer shows up as unread in VS Code's status bar.
        await hubot.request(SendMessage(to=583231, text="sure!", client_msg_id="e2e-1"))
        await node.wait(
            lambda e: e["event"] == "view" and e["statusBar"]["text"].endswith("· 1 unread")
        )
        assert errors == []
    finally:
        await stack.aclose()
        for peer in peers:
            with contextlib.suppress(Exception):
                await peer.close()
        await server.stop()
        await auth.aclose()

    # The GitHub token was used once: in no file, database, log or keychain entry.
    assert fake_github.count("GET", "/api/v3/user") >= 1
    assert files_containing(tmp_path, editor_token) == []
    assert editor_token not in caplog.text
    assert credentials.get() not in (None, editor_token)
