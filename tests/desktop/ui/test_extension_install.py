"""The tray's "Install VS Code extension": shown only when it can work, and it runs
the found ``code`` for real (a recording script on PATH)."""

from __future__ import annotations

import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox

from presence_desktop.platform.vscode import Editor, InstallResult, bundled_vsix, find_editors
from presence_desktop.ui.app import DesktopUi
from presence_desktop.ui.extension import ExtensionInstaller
from presence_desktop.ui.menus import AppMenu
from presence_desktop.ui.notifications import LogBackend
from tests.support.services import require

from .fakes import FakeCore, snapshot
from .helpers import next_emit
from .test_panel import Nav

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX shell scripts")
ROOT = Path(__file__).resolve().parents[3]


def fake_code(bindir: Path, body: str) -> Path:
    bindir.mkdir(parents=True, exist_ok=True)
    path = bindir / "code"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def only_code_on(bindir: Path, home: Path) -> list[Editor]:
    """The real finder on a private PATH, limited to ``code`` so no real editor is touched."""
    return [
        e for e in find_editors({"PATH": str(bindir), "HOME": str(home)}) if e.command == "code"
    ]


@pytest.fixture
def core() -> FakeCore:
    core = FakeCore()
    core.state.apply_snapshot(snapshot())
    core.go_online()
    return core


def test_entry_shows_only_with_an_editor_and_a_package(core: FakeCore, tmp_path: Path) -> None:
    found: list[Editor] = []
    package: list[Path] = [tmp_path / "presence-bridge.vsix"]
    installer = ExtensionInstaller(
        find=lambda: list(found), vsix=lambda: package[0] if package else None
    )
    menu = AppMenu(core.state, core.connection, core.actions, Nav(), extension=installer)
    entry = menu.install_extension
    assert entry is not None and entry.text() == "Install VS Code extension"
    assert not entry.isVisible()
    found.append(Editor("code", tmp_path / "code"))
    menu.aboutToShow.emit()  # asked afresh each time the menu opens
    assert entry.isVisible() and entry.isEnabled()
    package.clear()
    menu.aboutToShow.emit()
    assert not entry.isVisible()
    # Without an installer (tests, other front ends) there is no entry at all.
    plain = AppMenu(core.state, core.connection, core.actions, Nav())
    assert plain.install_extension is None
    assert "Install VS Code extension" not in [a.text() for a in plain.actions()]


@pytest.fixture(scope="session")
def packaged_extension() -> Path:
    """The .vsix the app bundles: CI builds it before the tests; otherwise it is
    built here from resources/vscode-extension/ as the build does (node, npx and
    the npm registry needed — without them the test skips locally, fails in CI)."""
    vsix = bundled_vsix()
    if vsix is None:
        require(
            shutil.which("node") is not None and shutil.which("npx") is not None,
            "packaging the VS Code extension needs node and npx (scripts/build_vsix.sh)",
        )
        built = subprocess.run(
            ["bash", str(ROOT / "scripts" / "build_vsix.sh")],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        require(built.returncode == 0, f"scripts/build_vsix.sh failed: {built.stderr[-500:]}")
        vsix = bundled_vsix()
    assert vsix is not None, "scripts/build_vsix.sh made no package"
    return vsix


@pytest.mark.slow
async def test_install_runs_code_from_path_and_reports_success(
    core: FakeCore, tmp_path: Path, packaged_extension: Path
) -> None:
    vsix = packaged_extension
    argv_file = tmp_path / "argv.txt"
    bindir = tmp_path / "bin"
    fake_code(bindir, f'printf "%s\\n" "$@" > "{argv_file}"\necho "installed"\n')
    installer = ExtensionInstaller(find=lambda: only_code_on(bindir, tmp_path / "home"))
    ui = DesktopUi(
        core, core.actions, cache_dir=tmp_path / "c", backends=[LogBackend()], extension=installer
    )
    entry = ui.menu.install_extension
    assert entry is not None
    ui.menu.aboutToShow.emit()
    assert entry.isVisible()

    entry.trigger()
    assert not entry.isEnabled() and entry.text() == "Installing VS Code extension…"
    (result,) = await next_emit(installer.finished)
    assert result.ok, result.message
    assert argv_file.read_text().splitlines() == ["--install-extension", str(vsix), "--force"]
    assert entry.isEnabled() and entry.text() == "Install VS Code extension"
    (box,) = ui._message_boxes
    assert box.isVisible()
    assert box.windowTitle() == "Install extension in Visual Studio Code"
    assert box.text().startswith("Installed.")
    assert box.icon() is QMessageBox.Icon.Information
    await ui.aclose()


async def test_a_refusing_editor_is_reported_as_a_warning(core: FakeCore, tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    fake_code(bindir, 'echo "Failed Installing Extensions: corrupt package" >&2\nexit 1\n')
    package = tmp_path / "presence-bridge.vsix"
    package.write_bytes(b"not a zip: the editor refuses it")
    installer = ExtensionInstaller(
        find=lambda: only_code_on(bindir, tmp_path / "home"), vsix=lambda: package
    )
    ui = DesktopUi(
        core, core.actions, cache_dir=tmp_path / "c", backends=[LogBackend()], extension=installer
    )
    assert ui.menu.install_extension is not None
    ui.menu.install_extension.trigger()
    (result,) = await next_emit(installer.finished)
    assert not result.ok
    (box,) = ui._message_boxes
    assert box.icon() is QMessageBox.Icon.Warning
    assert "corrupt package" in box.text()
    await ui.aclose()


async def test_every_editor_found_gets_the_extension_and_one_message(tmp_path: Path) -> None:
    installed: list[str] = []

    async def install(editor: Editor, vsix: Path) -> InstallResult:
        installed.append(editor.command)
        ok = editor.command == "code"
        return InstallResult(ok, f"Install extension in {editor.name}", "done" if ok else "no")

    editors = [Editor("code", tmp_path / "code"), Editor("codium", tmp_path / "codium")]
    installer = ExtensionInstaller(
        find=lambda: editors, vsix=lambda: tmp_path / "x.vsix", install=install
    )
    result = await installer.run()
    assert installed == ["code", "codium"]
    assert not result.ok
    assert result.title == "Install VS Code extension"
    assert result.message.splitlines() == ["Visual Studio Code: done", "VSCodium: no"]
