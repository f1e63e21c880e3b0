"""Start at login: the platform's own per-user mechanism, nothing installed system-wide.

Linux (and other XDG desktops): a ``.desktop`` file in
``$XDG_CONFIG_HOME/autostart``. Windows: a value under the user's ``Run``
registry key. macOS: a LaunchAgent plist in ``~/Library/LaunchAgents``.

Each format has a pure writer function (testable on any OS); ``Autostart``
is the thin layer that puts the text in place or removes it. The entry
points at the binary when frozen and at this interpreter with
``-m presence_desktop`` when run from source (see ``bundle.launch_command``).
Enabling again rewrites the entry, so the app can call ``apply`` on every
start to follow a binary that was moved or updated.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..core.api import UserError
from ..core.events import Signal
from ..core.settings import Settings
from . import bundle

log = logging.getLogger(__name__)

ENTRY_NAME = "presence-desktop"
"""File stem on Linux/macOS and value name on Windows; one entry per user."""

LAUNCH_AGENT_LABEL = "presence-desktop.autostart"
WINDOWS_RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"


class AutostartError(Exception):
    """Could not change the login entry; ``title`` and ``message`` are for people."""

    def __init__(self, title: str, message: str) -> None:
        super().__init__(f"{title}: {message}")
        self.title = title
        self.message = message


# ------------------------------------------------------------------ pure writers

_EXEC_RESERVED = set(" \t\n\"'\\><~|&;$*?#()`=%")


def _exec_arg(arg: str) -> str:
    """Quote one argument for ``Exec=`` as the Desktop Entry spec asks.

    Inside double quotes, ``"``, `` ` ``, ``$`` and ``\\`` take a backslash;
    ``%`` is a field code and is doubled. The whole value is then a string
    value, whose own escaping doubles every backslash again.
    """
    arg = arg.replace("%", "%%")
    if arg and not (set(arg) & _EXEC_RESERVED - {"%"}):
        quoted = arg
    else:
        inner = "".join("\\" + ch if ch in '"`$\\' else ch for ch in arg)
        quoted = f'"{inner}"'
    return quoted.replace("\\", "\\\\")


def _desktop_value(text: str) -> str:
    """A single-line string value: newlines and control characters cannot be stored."""
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")


def xdg_desktop_entry(command: Sequence[str], icon: str) -> str:
    """The autostart ``.desktop`` file for ``command`` (argv list)."""
    if not command:
        raise ValueError("autostart command is empty")
    exec_line = " ".join(_exec_arg(a) for a in command)
    return (
        "[Desktop Entry]\n"
        "Type=Application\n"
        "Name=Presence\n"
        "GenericName=Friends presence\n"
        "Comment=Shows which friends are coding; starts in the system tray\n"
        f"Exec={exec_line}\n"
        f"Icon={_desktop_value(icon)}\n"
        "Terminal=false\n"
        "Categories=Network;InstantMessaging;\n"
        "X-GNOME-Autostart-enabled=true\n"
    )


def windows_run_value(command: Sequence[str]) -> str:
    """The command line stored in the ``Run`` key (Windows quoting rules)."""
    if not command:
        raise ValueError("autostart command is empty")
    return subprocess.list2cmdline(list(command))


def launch_agent_plist(command: Sequence[str], label: str = LAUNCH_AGENT_LABEL) -> bytes:
    """A LaunchAgent that runs ``command`` once at login, without restarting it on quit."""
    if not command:
        raise ValueError("autostart command is empty")
    import plistlib  # macOS only; loads an XML parser

    return plistlib.dumps(
        {
            "Label": label,
            "ProgramArguments": list(command),
            "RunAtLoad": True,
            "KeepAlive": False,
            "ProcessType": "Interactive",
            "LimitLoadToSessionType": "Aqua",
        }
    )


# ------------------------------------------------------------------ locations


def xdg_autostart_dir(env: Mapping[str, str] | None = None, home: Path | None = None) -> Path:
    """``$XDG_CONFIG_HOME/autostart``; a relative XDG_CONFIG_HOME is invalid per the spec."""
    env = os.environ if env is None else env
    config = env.get("XDG_CONFIG_HOME", "")
    base = Path(config) if config and Path(config).is_absolute() else None
    if base is None:
        base = (home or Path.home()) / ".config"
    return base / "autostart"


def launch_agents_dir(home: Path | None = None) -> Path:
    return (home or Path.home()) / "Library" / "LaunchAgents"


def default_icon() -> str:
    """The icon a desktop shows for the autostart entry (Linux).

    The Linux bundle carries ``presence-desktop.png`` beside the binary;
    from source the generated 256 px PNG is used. A bare name lets the icon
    theme decide when neither exists.
    """
    if bundle.is_frozen():
        beside = Path(sys.executable).resolve().parent / f"{ENTRY_NAME}.png"
        if beside.is_file():
            return str(beside)
    png = bundle.resources_dir() / "icons" / "presence-256.png"
    return str(png) if png.is_file() else ENTRY_NAME


# ------------------------------------------------------------------ apply / remove


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class Autostart:
    """Installs or removes this user's login entry on the current platform."""

    def __init__(
        self,
        command: Sequence[str] | None = None,
        *,
        platform: str = sys.platform,
        env: Mapping[str, str] | None = None,
        home: Path | None = None,
        icon: str | None = None,
    ) -> None:
        self.command = list(command) if command is not None else bundle.launch_command()
        self.platform = platform
        self._env = env
        self._home = home
        self._icon = icon

    @property
    def path(self) -> Path | None:
        """The file that holds the entry; None on Windows (it lives in the registry)."""
        if self.platform == "win32":
            return None
        if self.platform == "darwin":
            return launch_agents_dir(self._home) / f"{LAUNCH_AGENT_LABEL}.plist"
        return xdg_autostart_dir(self._env, self._home) / f"{ENTRY_NAME}.desktop"

    def content(self) -> bytes:
        """What ``enable`` writes (the registry value as UTF-8 on Windows)."""
        if self.platform == "win32":
            return windows_run_value(self.command).encode()
        if self.platform == "darwin":
            return launch_agent_plist(self.command)
        icon = self._icon if self._icon is not None else default_icon()
        return xdg_desktop_entry(self.command, icon).encode()

    def is_enabled(self) -> bool:
        if self.platform == "win32":
            return _windows_get() is not None
        path = self.path
        return path is not None and path.is_file()

    def is_current(self) -> bool:
        """Enabled and pointing at this very binary (not a moved or older one)."""
        if self.platform == "win32":
            return _windows_get() == windows_run_value(self.command)
        path = self.path
        try:
            return path is not None and path.read_bytes() == self.content()
        except OSError:
            return False

    def enable(self) -> None:
        try:
            if self.platform == "win32":
                _windows_set(windows_run_value(self.command))
                return
            path = self.path
            assert path is not None
            _write_atomic(path, self.content())
        except OSError as exc:
            raise AutostartError(
                "Could not turn on start at login",
                f"Writing the login entry failed ({exc.strerror or exc}). "
                "Check that your home folder is writable, then try again.",
            ) from exc

    def disable(self) -> None:
        try:
            if self.platform == "win32":
                _windows_delete()
                return
            path = self.path
            assert path is not None
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise AutostartError(
                "Could not turn off start at login",
                f"Removing the login entry failed ({exc.strerror or exc}). "
                f"You can delete it yourself: {self.path or WINDOWS_RUN_KEY}.",
            ) from exc

    def apply(self, enabled: bool) -> None:
        """Make the system match the setting; rewriting a stale entry when on."""
        if enabled:
            if not self.is_current():
                self.enable()
        elif self.is_enabled():
            self.disable()


# ------------------------------------------------------------------ Windows registry

if sys.platform == "win32":
    import winreg

    def _windows_get() -> str | None:
        try:
            with winreg.OpenKey(winreg.HKEY_CURRENT_USER, WINDOWS_RUN_KEY) as key:
                value, _kind = winreg.QueryValueEx(key, ENTRY_NAME)
        except FileNotFoundError:
            return None
        return str(value)

    def _windows_set(value: str) -> None:
        with winreg.CreateKeyEx(
            winreg.HKEY_CURRENT_USER, WINDOWS_RUN_KEY, 0, winreg.KEY_SET_VALUE
        ) as key:
            winreg.SetValueEx(key, ENTRY_NAME, 0, winreg.REG_SZ, value)

    def _windows_delete() -> None:
        try:
            with winreg.OpenKey(
                winreg.HKEY_CURRENT_USER, WINDOWS_RUN_KEY, 0, winreg.KEY_SET_VALUE
            ) as key:
                winreg.DeleteValue(key, ENTRY_NAME)
        except FileNotFoundError:
            pass

else:

    def _no_registry() -> OSError:
        return OSError("the Windows registry exists only on Windows")

    def _windows_get() -> str | None:
        raise _no_registry()

    def _windows_set(value: str) -> None:
        raise _no_registry()

    def _windows_delete() -> None:
        raise _no_registry()


# ------------------------------------------------------------------ following the setting


class AutostartSync:
    """Keeps the login entry in step with the ``autostart`` setting.

    A change of the setting installs or removes the entry. At start-up only a
    frozen binary touches an entry that is already on: it rewrites it when
    the binary moved or was updated. A run from source never rewrites or
    removes at start-up, so a developer's checkout cannot hijack or delete
    the entry of an installed binary that shares the same settings.
    """

    def __init__(
        self,
        entry: Autostart | None = None,
        errors: Signal[UserError] | None = None,
    ) -> None:
        self.entry = entry if entry is not None else Autostart()
        self.errors = errors
        self._enabled: bool | None = None

    def start(self, enabled: bool) -> None:
        self._enabled = enabled
        if enabled and bundle.is_frozen() and not self.entry.is_current():
            self._apply(True)

    def on_settings(self, settings: Settings) -> None:
        """Slot for ``SettingsStore.changed``: act only when ``autostart`` flipped."""
        enabled = settings.autostart
        if enabled == self._enabled:
            return
        self._enabled = enabled
        self._apply(enabled)

    def _apply(self, enabled: bool) -> None:
        try:
            self.entry.apply(enabled)
        except AutostartError as exc:
            log.warning("autostart: %s", exc)
            if self.errors is not None:
                self.errors.emit(UserError(exc.title, exc.message, code="autostart"))
