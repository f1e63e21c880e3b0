"""Finding editors and installing the bundled extension through their real CLI."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest

from presence_desktop.platform.vscode import Editor, find_editors, install_extension

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX shell scripts")


def fake_cli(path: Path, script: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_finds_commands_on_path_and_in_usual_places(tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    fake_cli(bindir / "codium", "exit 0\n")
    home = tmp_path / "home"
    fake_cli(home / ".local" / "bin" / "code", "exit 0\n")
    (bindir / "code-insiders").parent.mkdir(exist_ok=True)
    (bindir / "code-insiders").write_text("not executable")
    found = find_editors({"PATH": str(bindir), "HOME": str(home)})
    assert [(e.command, e.path) for e in found] == [
        ("code", home / ".local" / "bin" / "code"),
        ("codium", bindir / "codium"),
    ]
    assert found[1].name == "VSCodium"
    assert find_editors({"PATH": str(tmp_path / "empty"), "HOME": str(tmp_path / "none")}) == []


async def test_install_runs_the_cli_with_the_vsix(tmp_path: Path) -> None:
    log = tmp_path / "args.txt"
    cli = fake_cli(
        tmp_path / "code", f'printf "%s\\n" "$@" > "{log}"\necho "Extension installed."\n'
    )
    vsix = tmp_path / "presence-bridge-0.1.0.vsix"
    vsix.write_bytes(b"PK")
    result = await install_extension(Editor("code", cli), vsix)
    assert result.ok, result.message
    assert "Reload" in result.message
    assert log.read_text().splitlines() == ["--install-extension", str(vsix), "--force"]


async def test_install_failures_become_messages(tmp_path: Path) -> None:
    vsix = tmp_path / "x.vsix"
    vsix.write_bytes(b"PK")
    bad = fake_cli(tmp_path / "code", 'echo "Failed Installing Extensions: corrupt" >&2\nexit 1\n')
    result = await install_extension(Editor("code", bad), vsix)
    assert not result.ok and "corrupt" in result.message
    missing = await install_extension(Editor("code", tmp_path / "nope"), vsix)
    assert not missing.ok and "Could not start" in missing.message
    no_vsix = await install_extension(Editor("code", bad), tmp_path / "absent.vsix")
    assert not no_vsix.ok and "missing" in no_vsix.message
    slow = fake_cli(tmp_path / "slow", "exec sleep 30\n")
    timed_out = await install_extension(Editor("code", slow), vsix, time_limit=0.5)
    assert not timed_out.ok and "did not finish" in timed_out.message
