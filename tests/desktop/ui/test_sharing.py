"""What friends see, in the popup and in the settings window, against what is sent.

A fake editor speaks the bridge protocol over the real local socket to a
real ``EditorActivity``; the popup line, the settings preview and the
activity handed to the controller are compared for the same moment.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from presence_desktop.core.privacy import ShareLevel, describe
from presence_desktop.core.settings import SettingsStore
from presence_desktop.net.editor_activity import EditorActivity
from presence_desktop.ui.app import DesktopUi
from presence_desktop.ui.notifications import LogBackend
from presence_desktop.ui.settings_dialog import SettingsDialog
from presence_protocol import Activity, ActivityKind, SeenStatus, Status, encode_text

from .fakes import FakeCore, snapshot

API = {
    "type": "activity",
    "workspace": "api",
    "folder": "/home/ada/src/api",
    "git_remote": "https://ada:s3cret@github.com/Acme/api.git",
    "file": "handlers.py",
    "language": "python",
    "kind": "coding",
    "focused": True,
}


class FakeEditor:
    """One editor window on the real bridge socket."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, path: str) -> FakeEditor:
        reader, writer = await asyncio.open_unix_connection(path)
        editor = cls(reader, writer)
        await editor.send({"type": "hello", "bridge": 1, "editor": "Fake Code"})
        line = await asyncio.wait_for(reader.readline(), 5)
        assert json.loads(line)["type"] == "hello"
        return editor

    async def send(self, message: dict[str, Any]) -> None:
        self.writer.write(json.dumps(message).encode() + b"\n")
        await self.writer.drain()

    async def close(self) -> None:
        if not self.writer.is_closing():
            self.writer.close()
        await self.writer.wait_closed()


@dataclass
class Rig:
    core: FakeCore
    store: SettingsStore
    editors: EditorActivity
    ui: DesktopUi
    sent: list[Activity | None]
    editor: FakeEditor

    @property
    def line(self) -> str:
        assert self.ui.panel.sharing_line is not None
        return self.ui.panel.sharing_line.full_text

    async def report_gone(self) -> None:
        """Wait until no editor window is left (after the fake editor hung up)."""
        merged = self.editors.me.merger.changed
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def seen(current: object) -> None:
            if current is None and not done.done():
                done.set_result(None)

        merged.connect(seen)
        try:
            if self.editors.me.current is not None:
                await asyncio.wait_for(done, 5)
        finally:
            merged.disconnect(seen)

    async def report(self, **changes: Any) -> None:
        """Send an activity and wait until what friends see has been recomputed."""
        merged = self.editors.me.merger.changed
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def seen(_current: object) -> None:
            if not done.done():
                done.set_result(None)

        merged.connect(seen)
        try:
            await self.editor.send({**API, **changes})
            await asyncio.wait_for(done, 5)
        finally:
            merged.disconnect(seen)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    core = FakeCore()
    core.state.apply_snapshot(snapshot())
    core.go_online()
    store = SettingsStore(tmp_path / "config", tmp_path / "state")
    sent: list[Activity | None] = []
    editors = EditorActivity(
        core.state,
        lambda activity, _away: sent.append(activity),
        privacy=store.settings.privacy,
        idle=store.settings.idle,
        activity=store.settings.activity,
        bridge_address=str(tmp_path / "run" / "bridge.sock"),
        use_system_sources=False,
    )
    # As run_app wires them: saved settings re-apply at once.
    store.changed.connect(lambda s: editors.apply_settings(s.privacy, s.idle, s.activity))
    ui = DesktopUi(
        core,
        core.actions,
        cache_dir=tmp_path / "cache",
        settings=store,
        backends=[LogBackend()],
        editors=editors,
    )
    ui.start()
    editors.start()
    editor = await FakeEditor.connect(str(tmp_path / "run" / "bridge.sock"))
    rig = Rig(core, store, editors, ui, sent, editor)
    try:
        yield rig
    finally:
        await editor.close()
        await editors.aclose()
        await ui.aclose()


async def test_popup_line_is_rendered_from_the_payload_and_follows_saved_rules(rig: Rig) -> None:
    assert rig.line == "Friends see: Online"
    assert rig.sent[-1] is None

    await rig.report()
    activity = rig.sent[-1]
    assert activity is not None
    assert rig.line == "Friends see: " + describe(SeenStatus.ONLINE, activity)
    assert rig.line == "Friends see: Coding · Python · a private project"
    assert (activity.kind, activity.editor, activity.project, activity.file) == (
        ActivityKind.CODING,
        None,  # the editor label stays on this machine
        "a private project",
        None,
    )
    wire = encode_text(rig.editors.me.message)
    for secret in ("/home/ada", "s3cret", "github.com", "handlers.py"):
        assert secret not in wire
    line = rig.ui.panel.sharing_line
    assert line is not None
    assert "Language: Python" in line.toolTip()

    # Clicking the line opens the settings on the privacy page.
    rig.ui.show_panel()
    QTest.mouseClick(line, Qt.MouseButton.LeftButton)
    dialog = rig.ui._settings_dialog
    assert dialog is not None and dialog.isVisible()
    assert dialog.tabs.currentWidget() is dialog.privacy
    page = dialog.privacy
    assert page.preview_line.text() == "Friends see: Coding · Python · a private project"
    assert "No rule matches" in page.preview_why.text()
    assert "Not saved yet" not in page.preview_why.text()

    # A rule for the repository, tried before saving: only the dialog's preview moves.
    rule = page.add_rule()
    rule.remote.setText("github.com/acme/*")
    rule.level.setCurrentIndex(rule.level.findData(ShareLevel.FILE.value))
    assert rule.confirm()
    assert page.preview_line.text() == "Friends see: Coding · Python · api"
    assert page.last_preview is not None
    assert page.last_preview.message.activity is not None
    assert page.last_preview.message.activity.file == "handlers.py"
    assert "Rule 1 (github.com/acme/*) decides" in page.preview_why.text()
    assert "Not saved yet" in page.preview_why.text()
    assert rig.line == "Friends see: Coding · Python · a private project"
    assert rig.sent[-1] == activity

    # Saved: the service re-applies the rules, the payload and the line follow at once.
    assert dialog.save()
    sent = rig.sent[-1]
    assert sent is not None and (sent.project, sent.file) == ("api", "handlers.py")
    assert rig.line == "Friends see: " + describe(SeenStatus.ONLINE, sent)
    assert rig.line == "Friends see: Coding · Python · api"

    # Invisible sends no activity, and the line says so.
    rig.core.actions.set_status(Status.INVISIBLE, None)
    assert rig.sent[-1] is None
    assert rig.line == "Friends see: Offline"


async def test_settings_preview_follows_my_activity_while_open(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    await rig.report()
    dialog = SettingsDialog(rig.store, presence=rig.editors.me)
    page = dialog.privacy
    page.default_level.setCurrentIndex(page.default_level.findData(ShareLevel.FILE.value))
    assert page.preview_line.text() == "Friends see: Coding · Python · api"
    assert page.last_preview is not None
    assert page.last_preview.message.activity is not None
    assert page.last_preview.message.activity.file == "handlers.py"

    # A file switch changes nothing on the wire with the saved rules (no file names),
    # but the unsaved default shares them, so the dialog's preview must move.
    sent_before = len(rig.sent)
    await rig.report(file="models.py")
    assert len(rig.sent) == sent_before
    assert page.last_preview is not None
    assert page.last_preview.message.activity is not None
    assert page.last_preview.message.activity.file == "models.py"
    await rig.report(file="models.rs", language="rust", kind="debugging")
    assert page.preview_line.text() == "Friends see: Debugging · Rust · api"
    assert rig.line == "Friends see: Debugging · Rust · a private project"
    assert len(rig.sent) == sent_before + 1

    # An invalid edit cannot be previewed or saved; it says why.
    page.private_label.setText("   ")
    assert page.last_preview is None
    assert "private project label" in page.preview_why.text()
    assert not dialog.save()
    assert "private project label" in dialog.error.text()
    assert rig.store.settings.privacy.default_level is ShareLevel.LANGUAGE
    gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    dialog.destroyed.connect(lambda _o=None: gone.set_result(None))
    dialog.deleteLater()
    await asyncio.wait_for(gone, 5)
    # The deleted dialog no longer listens to the service (a stale slot would log a failure).
    caplog.clear()
    await rig.report(file="lib.rs", language="python")
    assert rig.line == "Friends see: Coding · Python · a private project"
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


async def test_a_rule_for_the_project_open_now_is_one_click(rig: Rig) -> None:
    await rig.report()
    dialog = SettingsDialog(rig.store, presence=rig.editors.me)
    rule = dialog.privacy.add_rule()
    assert rule.use_current.isVisibleTo(rule)
    rule.use_current.click()
    # The remote as rules match it: no scheme, user, password or .git.
    assert (rule.remote.text(), rule.folder.text()) == ("github.com/acme/api", "")
    assert rule.confirm()
    assert dialog.privacy.preview_line.text() == "Friends see: Coding · Python · api"
    await rig.editor.close()
    await rig.report_gone()
    assert dialog.privacy.preview_line.text() == "Friends see: Online"
    assert "No editor is reporting" in dialog.privacy.preview_why.text()
    dialog.deleteLater()
