"""The real VS Code extension code (under node, with a stub ``vscode``) against the real bridge."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

from presence_desktop.core.activity import ActivityMerger, Current
from presence_desktop.net.bridge import EditorBridge
from presence_protocol import ActivityKind
from tests.support.services import require

EXTENSION = Path(__file__).resolve().parents[3] / "resources" / "vscode-extension"


async def test_extension_reports_through_the_bridge(tmp_path: Path) -> None:
    require(shutil.which("node") is not None, "node not installed")
    merger = ActivityMerger(asyncio.get_running_loop())
    changes: asyncio.Queue[Current | None] = asyncio.Queue()
    merger.changed.connect(changes.put_nowait)
    bridge = EditorBridge(merger, str(tmp_path / "run" / "bridge.sock"))
    bridge.start()
    folder = tmp_path / "work" / "api"
    (folder / ".git").mkdir(parents=True)
    (folder / ".git" / "config").write_text(
        '[core]\n\tbare = false\n[remote "origin"]\n\turl = git@github.com:acme/api.git\n'
    )
    proc = await asyncio.create_subprocess_exec(
        "node", str(EXTENSION / "test-support" / "drive.js"),
        str(folder), str(folder / "src" / "server.py"), "python",
        env={**os.environ, "PRESENCE_BRIDGE_SOCKET": bridge.address},
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    try:
        assert (await asyncio.wait_for(proc.stdout.readline(), 30)).strip() == b"ready"
        current = await asyncio.wait_for(changes.get(), 15)
        while current is None or current.report.kind is not ActivityKind.CODING:
            current = await asyncio.wait_for(changes.get(), 15)
        report = current.report
        assert report.editor == "Visual Studio Code"
        assert report.workspace == "api"
        assert report.folder == str(folder)
        assert report.git_remote == "git@github.com:acme/api.git"
        assert report.file == "server.py"  # the extension sends no path
        assert report.language == "python"
        assert report.focused
        proc.stdin.close()
        assert await asyncio.wait_for(changes.get(), 15) is None  # bye: the window left
        assert await asyncio.wait_for(proc.wait(), 15) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        bridge.close()
