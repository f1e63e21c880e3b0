"""The editor bridge over the real local socket: round trips, bad input, permissions."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from presence_desktop.core.activity import ActivityMerger, Current
from presence_desktop.net.bridge import BridgeError, EditorBridge
from presence_desktop.net.bridge_protocol import BURST_LINES, MAX_LINE_BYTES
from presence_protocol import ActivityKind

from .editor_client import Editor

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="Unix socket checks")


def activity(workspace: str, focused: bool = True, **extra: Any) -> dict[str, Any]:
    return {
        "type": "activity",
        "workspace": workspace,
        "folder": f"/src/{workspace}",
        "file": f"/src/{workspace}/main.py",
        "language": "python",
        "kind": "coding",
        "focused": focused,
        **extra,
    }


class Watch:
    """Awaitable changes of the merger, instead of sleeping."""

    def __init__(self, merger: ActivityMerger) -> None:
        self.queue: asyncio.Queue[Current | None] = asyncio.Queue()
        merger.changed.connect(self.queue.put_nowait)

    async def next(self) -> Current | None:
        return await asyncio.wait_for(self.queue.get(), 5)

    async def workspace(self) -> str | None:
        current = await self.next()
        return current.report.workspace if current else None


@pytest.fixture
def address(tmp_path: Path) -> str:
    return str(tmp_path / "run" / "presence-desktop" / "bridge.sock")


@pytest.fixture
async def merger() -> ActivityMerger:
    return ActivityMerger(asyncio.get_running_loop())


@pytest.fixture
async def bridge(merger: ActivityMerger, address: str) -> AsyncIterator[EditorBridge]:
    server = EditorBridge(merger, address)
    server.start()
    yield server
    server.close()


async def test_round_trip_reaches_the_merger(bridge: EditorBridge, merger: ActivityMerger) -> None:
    watch = Watch(merger)
    editor = await Editor.connect(bridge.address)
    await editor.send(activity("alpha", git_remote="git@github.com:acme/alpha.git"))
    current = await watch.next()
    assert current is not None
    assert current.report.editor == "Fake Code"
    assert current.report.git_remote == "git@github.com:acme/alpha.git"
    assert current.report.kind is ActivityKind.CODING
    await editor.send({"type": "bye"})
    assert await watch.next() is None
    assert await editor.closed()


async def test_two_windows_merge_and_a_disconnect_drops_out(
    bridge: EditorBridge, merger: ActivityMerger
) -> None:
    watch = Watch(merger)
    one = await Editor.connect(bridge.address, window="1")
    two = await Editor.connect(bridge.address, window="2")
    await one.send(activity("alpha", focused=False))
    assert await watch.workspace() == "alpha"
    await two.send(activity("beta", focused=True))
    assert await watch.workspace() == "beta"
    await one.send(activity("alpha", focused=False))  # more recent, but not focused
    await two.send(activity("beta", focused=False))  # now neither is focused: beta is newer
    await one.send(activity("alpha", focused=True))
    assert await watch.workspace() == "alpha"
    assert merger.windows == 2
    await one.close()  # the window crashed: no bye
    assert await watch.workspace() == "beta"
    assert merger.windows == 1


async def test_malformed_lines_get_errors_and_the_server_keeps_working(
    bridge: EditorBridge, merger: ActivityMerger
) -> None:
    watch = Watch(merger)
    editor = await Editor.connect(bridge.address, hello=False)
    await editor.send(activity("early"))
    assert (await editor.receive())["code"] == "hello_required"
    await editor.send({"type": "hello", "bridge": 1, "editor": "Fake Code"})
    assert (await editor.receive())["type"] == "hello"
    cases: list[tuple[bytes, str]] = [
        (b"this is not json\n", "bad_line"),
        (b"[1, 2, 3]\n", "bad_line"),
        (b'{"type": "activity", "kind": "sleeping"}\n', "invalid"),
        (b'{"type": "teleport"}\n', "unknown_type"),
        (b'{"no_type": true}\n', "invalid"),
        (b'{"type": "activity", "focused": "yes"}\n', "invalid"),
        (b"\xff\xfe garbage\n", "bad_line"),
        (b'{"type":"activity","file":"' + b"x" * (MAX_LINE_BYTES + 10) + b'"}\n', "line_too_long"),
        (b'{"a":' * 10_000 + b"\n", "line_too_long"),
    ]
    for raw, code in cases:
        await editor.send(raw)
        reply = await editor.receive()
        assert (reply["type"], reply["code"]) == ("error", code), raw[:40]
        assert reply["message"]
    # Same connection, still served; and a second editor is unaffected.
    await editor.send(activity("fine"))
    assert await watch.workspace() == "fine"
    other = await Editor.connect(bridge.address)
    await other.send(activity("other"))
    assert await watch.workspace() == "other"
    assert bridge.listening


async def test_newer_major_version_is_refused_and_closed(bridge: EditorBridge) -> None:
    editor = await Editor.connect(bridge.address, hello=False)
    await editor.send({"type": "hello", "bridge": 3, "editor": "Future Code"})
    reply = await editor.receive()
    assert reply["code"] == "unsupported_version"
    assert await editor.closed()


async def test_flooding_is_rate_limited_with_one_error(
    bridge: EditorBridge, merger: ActivityMerger
) -> None:
    watch = Watch(merger)
    editor = await Editor.connect(bridge.address)
    lines = b"".join(json.dumps(activity(f"p{i}")).encode() + b"\n" for i in range(200))
    await editor.send(lines + b'{"type": "bye"}\n')
    reply = await editor.receive()
    assert reply["code"] == "rate_limited"
    # One error for the whole burst; bye still closes the connection.
    assert await asyncio.wait_for(editor.reader.read(), 5) == b""
    seen = []
    while (current := await watch.next()) is not None:
        seen.append(current.report.workspace)
    # The burst allowance (minus hello) went through, the rest was dropped.
    assert seen[0] == "p0"
    assert BURST_LINES - 1 <= len(seen) <= BURST_LINES + 2


async def test_socket_and_directory_are_user_only(bridge: EditorBridge) -> None:
    info = os.stat(bridge.address)
    assert stat.S_ISSOCK(info.st_mode)
    assert stat.S_IMODE(info.st_mode) & 0o077 == 0, oct(info.st_mode)
    assert stat.S_IMODE(os.stat(os.path.dirname(bridge.address)).st_mode) == 0o700
    assert info.st_uid == os.getuid()


@pytest.mark.skipif(
    not hasattr(os, "geteuid")
    or os.geteuid() != 0
    or shutil.which("runuser") is None
    or not os.path.exists("/usr/bin/python3"),
    reason="needs root to act as another user",
)
async def test_another_user_cannot_connect(bridge: EditorBridge) -> None:
    probe = (
        "import socket,sys\n"
        "s=socket.socket(socket.AF_UNIX)\n"
        "try:\n s.connect(sys.argv[1]); print('connected')\n"
        "except OSError as e: print(type(e).__name__)\n"
    )
    # Let 'nobody' reach the bridge's directory, so only the bridge's own modes decide.
    opened = []
    for p in Path(bridge.address).parents[1:]:
        mode = stat.S_IMODE(p.stat().st_mode)
        if mode & 0o001 == 0:
            opened.append((p, mode))
            p.chmod(mode | 0o001)
    try:
        proc = await asyncio.create_subprocess_exec(
            "runuser",
            "-u",
            "nobody",
            "--",
            "/usr/bin/python3",
            "-c",
            probe,
            bridge.address,
            stdout=subprocess.PIPE,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        for p, mode in opened:
            p.chmod(mode)
    assert out.decode().strip() == "PermissionError"


async def test_second_instance_is_refused_and_stale_socket_is_replaced(
    merger: ActivityMerger, address: str
) -> None:
    first = EditorBridge(merger, address)
    first.start()
    second = EditorBridge(merger, address)
    with pytest.raises(BridgeError, match="already running"):
        second.start()
    assert first.listening
    first.close()
    # Leave a dead socket file behind, as a crash would.
    import socket

    dead = socket.socket(socket.AF_UNIX)
    dead.bind(address)
    dead.close()
    assert stat.S_ISSOCK(os.stat(address).st_mode)
    third = EditorBridge(merger, address)
    third.start()
    try:
        editor = await Editor.connect(address)
        await editor.close()
    finally:
        third.close()


async def test_foreign_directory_is_refused(merger: ActivityMerger, tmp_path: Path) -> None:
    target = tmp_path / "not-a-dir"
    target.write_text("")
    with pytest.raises(BridgeError, match="not a directory owned by you"):
        EditorBridge(merger, str(target / "bridge.sock")).start()
