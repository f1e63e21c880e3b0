"""On a real X screen at QT_SCALE_FACTOR=2 (1600×1000 pixels, 800×500 logical):
the popup and Settings fit the screen, the list scrolls, a long error wraps
without widening the popup, and Save stays on screen (issue 18)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.services import require

from .xdesktop import missing, virtual_desktop

ROOT = Path(__file__).resolve().parents[3]
pytestmark = [pytest.mark.slow, pytest.mark.display]


def inside(inner: list[int], outer: list[int]) -> bool:
    x, y, w, h = inner
    ox, oy, ow, oh = outer
    return ox <= x and oy <= y and x + w <= ox + ow and y + h <= oy + oh


def test_popup_and_settings_fit_a_small_screen_at_scale_factor_2() -> None:
    gone = missing("desktop")
    require(not gone, f"display test needs {', '.join(gone)} (apt-get install xvfb trayer)")
    with virtual_desktop("1600x1000x24") as desktop:
        proc = subprocess.run(
            [sys.executable, "-m", "tests.desktop.ui.fit_child"],
            cwd=ROOT,
            env={**desktop.env, "QT_SCALE_FACTOR": "2"},
            capture_output=True,
            text=True,
            timeout=120,
        )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, f"child printed nothing (rc={proc.returncode}): {proc.stderr[-2000:]}"
    result = json.loads(lines[-1])
    assert "error" not in result, f"{result['error']}\n{proc.stderr[-2000:]}"
    assert result["ratio"] == 2.0
    screen = result["screen"]
    assert screen[2:] == [800, 500]
    assert inside(result["popup"], screen)
    assert result["popup_scrolls"] is True  # 30 friends do not fit 500 px: the list scrolls
    assert inside(result["popup_with_error"], screen)
    assert result["popup_with_error"][2] == result["popup"][2]  # the error did not widen it
    assert result["banner_lines"] >= 2  # it wrapped
    assert inside(result["settings"], screen)
    x0, y0, x1, y1 = result["save"]
    assert inside([x0, y0, x1 - x0, y1 - y0], screen)
