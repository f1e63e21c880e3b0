"""Conversations on a real desktop (issue 17): Xvfb with a tray host, dunst on a
private D-Bus session, a real server, two apps of one person and a friend.
The friend's message puts a count on both tray icons and a notification with
the friend's avatar and Reply; reading it on the laptop clears both icons; the
answer written in the laptop's conversation appears on the desktop and at the
friend's."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.services import require

from .xdesktop import Desktop, missing, virtual_desktop

ROOT = Path(__file__).resolve().parents[3]
pytestmark = [pytest.mark.slow, pytest.mark.display]


@pytest.fixture
def desktop() -> Iterator[Desktop]:
    gone = missing("desktop", "dbus")
    require(not gone, f"needs {', '.join(gone)}")
    with virtual_desktop() as d:
        yield d


def test_two_devices_and_a_friend_on_a_real_desktop(desktop: Desktop) -> None:
    proc = subprocess.run(
        ["dbus-run-session", "--", sys.executable, "-m",
         "tests.desktop.ui.conversation_display_child"],
        cwd=ROOT, env=desktop.env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, f"child printed nothing (rc={proc.returncode}): {proc.stderr[-3000:]}"
    result = json.loads(lines[-1])
    assert "error" not in result, f"{result['error']}\n{proc.stderr[-3000:]}"
    assert result["badges_after_message"] == {"laptop": "1", "desktop": "1"}
    assert result["notify_has_reply"] and result["notify_icon_is_avatar"]
    assert result["badges_after_reading"] == {"laptop": "", "desktop": ""}
    assert result["desktop_thread"] == [[False, "lunch?"], [True, "on my way"]]
    assert proc.returncode == 0
