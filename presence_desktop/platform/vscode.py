"""Find VS Code-family editors and install the bundled bridge extension into them.

The tray offers "Install VS Code extension" only when an editor command is
found: on PATH first, then where the official installers, snaps, flatpaks
and Homebrew casks put it. Installing runs the editor's own CLI
(``--install-extension <vsix> --force``) as an asyncio subprocess, so the
app stays responsive and the user's editor does the actual work.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from .bundle import resources_dir

COMMANDS = ("code", "code-insiders", "codium")
_NAMES = {"code": "Visual Studio Code", "code-insiders": "VS Code Insiders", "codium": "VSCodium"}
INSTALL_TIMEOUT = 120.0


@dataclasses.dataclass(frozen=True, slots=True)
class Editor:
    command: str
    """``code``, ``code-insiders`` or ``codium``."""
    path: Path

    @property
    def name(self) -> str:
        return _NAMES[self.command]


@dataclasses.dataclass(frozen=True, slots=True)
class InstallResult:
    ok: bool
    title: str
    message: str


def _usual_locations(command: str, env: Mapping[str, str]) -> Iterable[Path]:
    home = Path(env.get("HOME") or Path.home())
    if sys.platform == "win32":
        local = Path(env.get("LOCALAPPDATA", home / "AppData" / "Local"))
        programs = [Path(env.get("ProgramFiles", r"C:\Program Files"))]
        folder = {
            "code": "Microsoft VS Code",
            "code-insiders": "Microsoft VS Code Insiders",
            "codium": "VSCodium",
        }[command]
        for base in [local / "Programs", *programs]:
            yield base / folder / "bin" / f"{command}.cmd"
        return
    if sys.platform == "darwin":
        app = {
            "code": "Visual Studio Code.app",
            "code-insiders": "Visual Studio Code - Insiders.app",
            "codium": "VSCodium.app",
        }[command]
        for base in (Path("/Applications"), home / "Applications"):
            yield base / app / "Contents" / "Resources" / "app" / "bin" / command
        yield Path("/opt/homebrew/bin") / command
        yield Path("/usr/local/bin") / command
        return
    flatpak = {
        "code": "com.visualstudio.code",
        "code-insiders": "com.visualstudio.code.insiders",
        "codium": "com.vscodium.codium",
    }[command]
    share = {"code": "code", "code-insiders": "code-insiders", "codium": "codium"}[command]
    yield from (
        Path("/usr/bin") / command,
        Path("/usr/local/bin") / command,
        Path("/snap/bin") / command,
        Path("/usr/share") / share / "bin" / command,
        Path("/opt") / share / "bin" / command,
        Path("/opt/visual-studio-code/bin") / command,
        home / ".local" / "bin" / command,
        Path("/var/lib/flatpak/exports/bin") / flatpak,
        home / ".local/share/flatpak/exports/bin" / flatpak,
    )


def find_editors(env: Mapping[str, str] | None = None) -> list[Editor]:
    """Every installed editor command, PATH first, one entry per command."""
    env = os.environ if env is None else env
    found: list[Editor] = []
    for command in COMMANDS:
        on_path = shutil.which(command, path=env.get("PATH", ""))
        if on_path:
            found.append(Editor(command, Path(on_path)))
            continue
        for candidate in _usual_locations(command, env):
            if candidate.is_file() and os.access(candidate, os.X_OK):
                found.append(Editor(command, candidate))
                break
    return found


def bundled_vsix() -> Path | None:
    """The packaged extension shipped with the app, if this build has one."""
    folder = resources_dir() / "vscode-extension"
    candidates = sorted(folder.glob("*.vsix"), key=lambda p: p.stat().st_mtime, reverse=True)
    return candidates[0] if candidates else None


async def install_extension(
    editor: Editor, vsix: Path, time_limit: float = INSTALL_TIMEOUT
) -> InstallResult:
    """Run ``<editor> --install-extension <vsix> --force``; never raises."""
    title = f"Install extension in {editor.name}"
    if not await asyncio.to_thread(vsix.is_file):
        return InstallResult(False, title, "The extension package is missing from this build.")
    argv = [str(editor.path), "--install-extension", str(vsix), "--force"]
    if sys.platform == "win32" and editor.path.suffix.lower() == ".cmd":
        argv = [os.environ.get("COMSPEC", "cmd.exe"), "/c", *argv]
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
    except OSError as exc:
        return InstallResult(False, title, f"Could not start {editor.path.name}: {exc.strerror}.")
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), time_limit)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return InstallResult(
            False, title, f"{editor.name} did not finish within {time_limit:.0f} s."
        )
    text = out.decode("utf-8", "replace").strip()
    if proc.returncode != 0:
        detail = text.splitlines()[-1] if text else f"exit status {proc.returncode}"
        return InstallResult(False, title, f"{editor.name} refused the extension: {detail}")
    return InstallResult(
        True, title, f"Installed. Reload open {editor.name} windows to start sharing activity."
    )
