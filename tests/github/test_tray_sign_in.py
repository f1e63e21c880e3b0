"""A new user signs in with GitHub from the tray on a virtual screen.

The app runs in a child process on Xvfb with trayer as the tray host; real X
clicks (xdotool) open the tray menu and choose "Sign in"; headless Chromium is
the browser. Skips with the reason when a program is missing, except in CI.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.desktop.ui.xdesktop import Desktop, missing, virtual_desktop
from tests.support.github import Chromium
from tests.support.services import require

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.display, pytest.mark.slow]


@pytest.fixture
def desktop() -> Iterator[Desktop]:
    gone = missing("desktop") + [p for p in ("xdotool", "import") if shutil.which(p) is None]
    require(not gone, f"tray sign-in test needs {', '.join(gone)}")
    with virtual_desktop() as d:
        yield d


def test_sign_in_from_the_tray(desktop: Desktop, chromium: Chromium, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tests.github.display_child", str(chromium.wrapper), str(tmp_path)],
        cwd=ROOT,
        env=desktop.env,
        capture_output=True,
        text=True,
        timeout=100,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, f"child printed nothing (rc={proc.returncode}): {proc.stderr[-3000:]}"
    result = json.loads(lines[-1])
    assert "error" not in result, f"{result['error']}\n{proc.stderr[-3000:]}"
    assert result["menu_before"] == "Sign in"
    assert result["window_heading"] in ("Continue in your browser", "Starting sign-in…")
    assert result["link"] == "online" and result["me"] == "octocat"
    assert result["menu_after"] == "Sign out"
    assert result["opened"] == 1 and result["keychain_entries"] == 1
    assert "You can close this tab" in chromium.pages.read_text()
    assert (tmp_path / "sign-in-window.png").stat().st_size > 0
