"""What the tray does not import at start (issue 18: RSS after start ≤ 1.5× a bare tray).

Every module a process imports stays for its life, and the tray runs for
days. These checks keep the lazy imports that took the app under the target
from rotting: keyring lives only in the keychain helper
(``platform/keychain_process.py``); the sign-in flow, the server check, the
account export and the sign-in window load when first used; SQLite loads
with the first conversation (``core/history.py``) and ``html`` with the
first message shown. A new top-level import of any of them in a module the
start-up path reaches fails here.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.desktop.ui.xdesktop import missing, virtual_desktop
from tests.support.services import require

ROOT = Path(__file__).resolve().parents[2]

NOT_AT_START = (
    "keyring",
    "secretstorage",
    "jeepney",
    "cryptography",
    "importlib_metadata",
    "jaraco",
    "sqlite3",
    "html",
    "webbrowser",
    "presence_desktop.platform.credentials",
    "presence_desktop.net.oauth",
    "presence_desktop.net.github_login",
    "presence_desktop.net.probe",
    "presence_desktop.core.account_export",
    "presence_desktop.ui.sign_in",
    "presence_desktop.ui.settings_dialog",
    "presence_desktop.ui.panel",
)
"""Modules (and packages, with their submodules) a start, signed in or out, must not import."""


def _imported(modules: list[str]) -> list[str]:
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in NOT_AT_START))


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "HOME": str(tmp_path / "home"),
        "QT_QPA_PLATFORM": "offscreen",
        "PYTHONPATH": str(ROOT),
        "PYTHON_KEYRING_BACKEND": "tests.desktop.keychain_file.FileKeyring",
        "KEYCHAIN_FILE": str(tmp_path / "keychain.json"),
    }
    for var in ("CONFIG", "DATA", "STATE", "CACHE"):
        env[f"XDG_{var}_HOME"] = str(tmp_path / var.lower())
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env["XDG_RUNTIME_DIR"] = str(runtime)
    env.update(extra)
    return env


IMPORTS_ONLY = textwrap.dedent(
    """
    import json, sys
    import PySide6.QtCore
    from presence_desktop import __main__ as entry
    # What run_app imports before it builds anything.
    from presence_desktop.controller import Controller
    from presence_desktop.net.editor_activity import EditorActivity
    from presence_desktop.net.editor_link import EditorLink
    from presence_desktop.ui.app import DesktopUi
    from presence_desktop.ui.extension import ExtensionInstaller
    from presence_desktop.ui.icons import IconFactory
    from presence_desktop.platform.autostart import AutostartSync
    store = entry._credentials_for("ws://127.0.0.1:9")
    print(json.dumps({"token": store.get(), "modules": sorted(sys.modules)}))
    """
)


def test_the_start_up_modules_leave_keyring_sign_in_and_sqlite_out(tmp_path: Path) -> None:
    (tmp_path / "keychain.json").write_text(
        json.dumps(
            {
                "items": {
                    "presence-desktop ws://127.0.0.1:9\nsession@ws://127.0.0.1:9": "tok-123456"
                },
                "calls": [],
            }
        )
    )
    out = subprocess.run(
        [sys.executable, "-c", IMPORTS_ONLY],
        cwd=ROOT,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    result = json.loads(out)
    assert result["token"] == "tok-123456"  # read, through the helper
    assert "presence_desktop.platform.keychain_process" in result["modules"]
    extra = _imported(result["modules"])
    assert not extra, extra


REAL_START = textwrap.dedent(
    """
    import json, os, signal, sys
    from presence_desktop import __main__ as entry
    from presence_desktop.net import client

    attempt = client.PresenceClient._attempt
    seen = {}

    async def once(self):
        outcome = await attempt(self)
        if not seen:
            from PySide6.QtWidgets import QSystemTrayIcon

            seen["tray"] = QSystemTrayIcon.isSystemTrayAvailable()
            seen["token"] = self.credentials.get()
            seen["modules"] = sorted(sys.modules)
            os.kill(os.getpid(), signal.SIGTERM)  # the app's own clean shutdown
        return outcome

    client.PresenceClient._attempt = once
    status = entry.main(["--server", sys.argv[1]])
    print(json.dumps({"status": status, **seen}))
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("signed_in", [True, False], ids=["signed-in", "signed-out"])
def test_a_real_start_up_to_its_first_connection_attempt(tmp_path: Path, signed_in: bool) -> None:
    """The real entry point with a tray (Xvfb + trayer), until the client has tried once.

    With a tray the start shows the icon only; without one (offscreen) the
    popup opens instead and loads its own modules, which is not the start
    this guards.
    """
    gone = missing("desktop")
    require(not gone, f"needs {', '.join(gone)} (apt-get install xvfb trayer x11-utils)")
    with socket.socket() as placeholder:  # a port nothing listens on: refused at once
        placeholder.bind(("127.0.0.1", 0))
        url = f"ws://127.0.0.1:{placeholder.getsockname()[1]}"
    items = {f"presence-desktop {url}\nsession@{url}": "tok-123456"} if signed_in else {}
    (tmp_path / "keychain.json").write_text(json.dumps({"items": items, "calls": []}))
    with virtual_desktop() as desktop:
        env = _env(tmp_path, DISPLAY=desktop.env["DISPLAY"], QT_QPA_PLATFORM="xcb")
        env["XDG_RUNTIME_DIR"] = desktop.env["XDG_RUNTIME_DIR"]
        proc = subprocess.run(
            [sys.executable, "-c", REAL_START, url],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["status"] == 0
    assert result["tray"] is True
    assert result["token"] == ("tok-123456" if signed_in else None)
    extra = _imported(result["modules"])
    assert not extra, extra


BEFORE_THE_ICON = textwrap.dedent(
    """
    import json, sys
    from presence_desktop import __main__ as entry
    from presence_desktop.paths import AppPaths
    from presence_desktop.platform.memory import read_sources_uncached
    from presence_desktop.preflight import check
    check()
    read_sources_uncached()
    AppPaths.platform()
    from presence_desktop.ui.single_instance import SingleInstance
    print(json.dumps(sorted(sys.modules)))
    """
)


def test_nothing_before_the_tray_icon_imports_the_event_loop(tmp_path: Path) -> None:
    """asyncio (with ssl and inspect) and qasync load after the icon shows (cold start)."""
    out = subprocess.run(
        [sys.executable, "-c", BEFORE_THE_ICON],
        cwd=ROOT,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    modules = set(json.loads(out))
    assert "PySide6.QtCore" in modules  # the preflight ran
    assert not modules & {"asyncio", "qasync", "ssl", "keyring", "msgspec", "websockets"}
