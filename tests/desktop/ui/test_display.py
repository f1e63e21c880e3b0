"""On a real X server (Xvfb) with a tray host (trayer), and a real D-Bus
notification daemon (dunst): the icon gets a place, the popup opens next to
it, and an alert becomes an org.freedesktop.Notifications.Notify call.

Skipped with the reason when the programs are missing, except in CI
(``PRESENCE_REQUIRE_SERVICES=1``), where that is a failure.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.services import require

from .xdesktop import Desktop, missing, virtual_desktop

ROOT = Path(__file__).resolve().parents[3]
# slow: a real X server with a tray host and a notification daemon
pytestmark = [pytest.mark.slow, pytest.mark.display]


def run_child(desktop: Desktop, job: str, *prefix: str) -> dict[str, object]:
    proc = subprocess.run(
        [*prefix, sys.executable, "-m", "tests.desktop.ui.display_child", job],
        cwd=ROOT,
        env=desktop.env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, f"child printed nothing (rc={proc.returncode}): {proc.stderr[-2000:]}"
    result: dict[str, object] = json.loads(lines[-1])
    assert "error" not in result, f"{result['error']}\n{proc.stderr[-2000:]}"
    assert proc.returncode == 0
    return result


@pytest.fixture
def desktop() -> Iterator[Desktop]:
    gone = missing("desktop")
    require(
        not gone, f"display test needs {', '.join(gone)} (apt-get install xvfb trayer x11-utils)"
    )
    with virtual_desktop() as d:
        yield d


def test_tray_icon_gets_a_place_and_the_popup_opens_next_to_it(desktop: Desktop) -> None:
    result = run_child(desktop, "tray")
    tx, ty, tw, th = result["tray"]  # type: ignore[misc]
    px, py, pw, ph = result["popup"]  # type: ignore[misc]
    sx, sy, sw, sh = result["screen"]  # type: ignore[misc]
    assert tw > 0 and th > 0
    assert ty < 40, "trayer sits at the top edge"
    # Below the icon, inside the screen, horizontally near the icon.
    assert ty + th <= py <= ty + th + 12
    assert sx <= px and px + pw <= sx + sw and py + ph <= sy + sh
    assert px <= tx + tw and px + pw >= tx
    assert result["stays_with_menu"] is True
    assert result["closes_on_focus_loss"] is True
    assert result["closes_on_escape"] is True
    print(f"tray icon visible after {result['icon_visible_ms']} ms")


def test_alert_reaches_the_notification_daemon_over_dbus(desktop: Desktop) -> None:
    gone = missing("dbus")
    require(not gone, f"notification test needs {', '.join(gone)} (apt-get install dbus dunst)")
    result = run_child(desktop, "notify", "dbus-run-session", "--")
    assert result["backend"] == "desktop-notifier"
    assert result["notify_seen"] is True
    assert result["body_seen"] is True


@pytest.mark.slow
def test_the_demo_shows_tray_popup_and_notifications_and_quits_cleanly(tmp_path: Path) -> None:
    """The README's first command, on a virtual screen: what a first-time user sees."""
    gone = missing("desktop", "dbus") + [
        p for p in ("import", "convert", "xdotool") if shutil.which(p) is None
    ]
    require(not gone, f"demo display test needs {', '.join(gone)}")
    proc = subprocess.run(
        [sys.executable, "scripts/screenshots.py", "--out", str(tmp_path), "--settle", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-8000:]  # the app log tail too
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    assert figures["exit_code"] == 0  # SIGTERM shuts the demo down cleanly
    for name in ("popup", "notification", "tray-menu", "settings", "delete-account"):
        image = tmp_path / f"{name}.png"
        assert image.stat().st_size > 1000, f"{name}.png is empty"
    print(f"demo: {figures}")
