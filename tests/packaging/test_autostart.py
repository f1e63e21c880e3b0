"""Start at login: real files on Linux (in the test's private XDG dirs), writers elsewhere."""

from __future__ import annotations

import configparser
import os
import plistlib
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from presence_desktop.core.api import UserError
from presence_desktop.core.events import Signal
from presence_desktop.core.settings import Settings, SettingsStore
from presence_desktop.platform import autostart, bundle
from presence_desktop.platform.autostart import Autostart, AutostartError, AutostartSync
from presence_desktop.ui.settings_dialog import SettingsDialog

Require = Callable[[bool, str], None]


def read_entry(path: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(path, encoding="utf-8")
    return parser["Desktop Entry"]


def autostart_dir() -> Path:
    return Path(os.environ["XDG_CONFIG_HOME"]) / "autostart"


def test_enable_writes_a_desktop_file_that_starts_this_interpreter() -> None:
    entry = Autostart(icon="presence-desktop")
    assert not entry.is_enabled()

    entry.enable()

    path = autostart_dir() / "presence-desktop.desktop"
    assert entry.path == path
    assert entry.is_enabled() and entry.is_current()
    fields = read_entry(path)
    assert fields["Type"] == "Application"
    assert fields["Exec"] == f"{sys.executable} -m presence_desktop"
    assert fields["Icon"] == "presence-desktop"
    assert fields["Terminal"] == "false"


def test_disable_removes_the_file_and_is_harmless_twice() -> None:
    entry = Autostart(icon="x")
    entry.enable()
    entry.disable()
    assert not (autostart_dir() / "presence-desktop.desktop").exists()
    assert not entry.is_enabled()
    entry.disable()
    assert list(autostart_dir().iterdir()) == []


def test_the_written_file_passes_desktop_file_validate(require: Require, tmp_path: Path) -> None:
    require(shutil.which("desktop-file-validate") is not None, "desktop-file-utils not installed")
    Autostart(["/opt/Presence App/presence-desktop"], icon="presence-desktop").enable()
    result = subprocess.run(
        ["desktop-file-validate", str(autostart_dir() / "presence-desktop.desktop")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_frozen_binary_points_at_itself(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    exe = tmp_path / "dist" / "presence-desktop"
    exe.parent.mkdir()
    exe.write_bytes(b"")
    (exe.parent / "presence-desktop.png").write_bytes(b"png")
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(exe))

    assert bundle.launch_command() == [str(exe)]
    Autostart().enable()

    fields = read_entry(autostart_dir() / "presence-desktop.desktop")
    assert fields["Exec"] == str(exe)
    assert fields["Icon"] == str(exe.parent / "presence-desktop.png")


def test_apply_follows_a_moved_binary_and_removes_when_off() -> None:
    Autostart(["/old/place/presence-desktop"], icon="i").enable()
    moved = Autostart(["/new/place/presence-desktop"], icon="i")
    assert moved.is_enabled() and not moved.is_current()

    moved.apply(True)
    fields = read_entry(autostart_dir() / "presence-desktop.desktop")
    assert fields["Exec"] == "/new/place/presence-desktop"

    moved.apply(False)
    assert not moved.is_enabled()


def test_relative_xdg_config_home_is_ignored(tmp_path: Path) -> None:
    # The XDG spec says relative paths are invalid; fall back to ~/.config.
    env = {"XDG_CONFIG_HOME": "relative/config"}
    assert autostart.xdg_autostart_dir(env, tmp_path) == tmp_path / ".config" / "autostart"
    assert autostart.xdg_autostart_dir({}, tmp_path) == tmp_path / ".config" / "autostart"


def test_unwritable_location_raises_a_readable_error_and_writes_nothing() -> None:
    # A file where the directory should be: mkdir fails even for root.
    config = Path(os.environ["XDG_CONFIG_HOME"])
    (config / "autostart").write_text("not a directory")
    entry = Autostart(["/bin/presence-desktop"], icon="i")

    with pytest.raises(AutostartError) as caught:
        entry.enable()

    assert caught.value.title == "Could not turn on start at login"
    assert "try again" in caught.value.message
    assert (config / "autostart").read_text() == "not a directory"
    assert sorted(p.name for p in config.iterdir()) == ["autostart"]


@pytest.mark.parametrize(
    ("arg", "exec_text"),
    [
        ("/usr/bin/presence-desktop", "/usr/bin/presence-desktop"),
        ("/opt/My Apps/presence", '"/opt/My Apps/presence"'),
        ("/home/a$b/p", '"/home/a\\\\$b/p"'),
        ("/x/100%/p", "/x/100%%/p"),
        ("/x/a b%/p", '"/x/a b%%/p"'),
        ('/x/"q"/p', '"/x/\\\\"q\\\\"/p"'),
        ("C:\\x", '"C:\\\\\\\\x"'),
    ],
)
def test_exec_quoting_follows_the_desktop_entry_spec(arg: str, exec_text: str) -> None:
    text = autostart.xdg_desktop_entry([arg, "--flag"], icon="i")
    assert f"Exec={exec_text} --flag\n" in text


def test_empty_command_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        autostart.xdg_desktop_entry([], icon="i")
    with pytest.raises(ValueError, match="empty"):
        autostart.windows_run_value([])
    with pytest.raises(ValueError, match="empty"):
        autostart.launch_agent_plist([])


def test_windows_run_value_quotes_paths_with_spaces() -> None:
    value = autostart.windows_run_value([r"C:\Program Files\Presence\presence-desktop.exe"])
    assert value == r'"C:\Program Files\Presence\presence-desktop.exe"'
    source = autostart.windows_run_value([r"C:\venv\Scripts\python.exe", "-m", "presence_desktop"])
    assert source == r"C:\venv\Scripts\python.exe -m presence_desktop"
    entry = Autostart([r"C:\P Q\p.exe"], platform="win32")
    assert entry.path is None
    assert entry.content() == b'"C:\\P Q\\p.exe"'


def test_macos_launch_agent_is_written_and_removed(tmp_path: Path) -> None:
    app = "/Applications/Presence.app/Contents/MacOS/presence-desktop"
    entry = Autostart([app], platform="darwin", home=tmp_path)
    entry.enable()

    path = tmp_path / "Library" / "LaunchAgents" / "presence-desktop.autostart.plist"
    assert entry.path == path
    plist = plistlib.loads(path.read_bytes())
    assert plist["Label"] == "presence-desktop.autostart"
    assert plist["ProgramArguments"] == [app]
    assert plist["RunAtLoad"] is True
    assert plist["KeepAlive"] is False

    entry.apply(False)
    assert not path.exists()


# ------------------------------------------------------------------ the setting


def test_ticking_the_box_in_settings_installs_the_entry_and_unticking_removes_it(
    tmp_path: Path, qtbot: QtBot
) -> None:
    store = SettingsStore(tmp_path / "config", tmp_path / "state")
    sync = AutostartSync(Autostart(["/opt/presence/presence-desktop"], icon="i"))
    sync.start(store.settings.autostart)
    store.changed.connect(sync.on_settings)
    entry = autostart_dir() / "presence-desktop.desktop"

    dialog = SettingsDialog(store)
    qtbot.addWidget(dialog)
    assert not dialog.autostart.isChecked()
    dialog.autostart.setChecked(True)
    assert dialog.save()
    assert read_entry(entry)["Exec"] == "/opt/presence/presence-desktop"
    assert SettingsStore(tmp_path / "config", tmp_path / "state").settings.autostart

    again = SettingsDialog(store)
    qtbot.addWidget(again)
    assert again.autostart.isChecked()
    again.autostart.setChecked(False)
    assert again.save()
    assert not entry.exists()


def test_other_settings_changes_leave_the_entry_alone(tmp_path: Path) -> None:
    store = SettingsStore(tmp_path / "config", tmp_path / "state")
    sync = AutostartSync(Autostart(["/opt/p"], icon="i"))
    sync.start(False)
    store.changed.connect(sync.on_settings)
    # An entry made by another install (same user, same entry name).
    Autostart(["/elsewhere/presence-desktop"], icon="i").enable()

    store.update(flap_minutes=9)

    fields = read_entry(autostart_dir() / "presence-desktop.desktop")
    assert fields["Exec"] == "/elsewhere/presence-desktop"


def test_the_demo_cannot_turn_on_start_at_login(tmp_path: Path, qtbot: QtBot) -> None:
    store = SettingsStore(tmp_path / "config", tmp_path / "state")
    dialog = SettingsDialog(store, server_locked="The demo runs its own server.")
    qtbot.addWidget(dialog)
    assert not dialog.autostart.isEnabled()
    assert "autostart" not in dialog.changes()


def test_a_frozen_start_rewrites_a_stale_entry_but_a_source_run_does_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    Autostart(["/old/presence-desktop"], icon="i").enable()
    path = autostart_dir() / "presence-desktop.desktop"

    AutostartSync(Autostart(["/new/presence-desktop"], icon="i")).start(True)
    assert read_entry(path)["Exec"] == "/old/presence-desktop"  # from source: untouched

    monkeypatch.setattr(sys, "frozen", True, raising=False)
    AutostartSync(Autostart(["/new/presence-desktop"], icon="i")).start(True)
    assert read_entry(path)["Exec"] == "/new/presence-desktop"

    AutostartSync(Autostart(["/newer/presence-desktop"], icon="i")).start(False)
    assert path.exists()  # a start never removes


def test_a_failure_becomes_a_user_error_and_the_app_goes_on() -> None:
    (Path(os.environ["XDG_CONFIG_HOME"]) / "autostart").write_text("not a directory")
    errors = Signal[UserError]()
    seen: list[UserError] = []
    errors.connect(seen.append)
    sync = AutostartSync(Autostart(["/opt/p"], icon="i"), errors)
    sync.start(False)

    sync.on_settings(Settings(autostart=True))

    assert [e.title for e in seen] == ["Could not turn on start at login"]
    assert seen[0].code == "autostart"
