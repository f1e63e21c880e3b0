"""Start-up memory hygiene: PySide6's per-import source check keeps nothing."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from presence_desktop.platform.memory import trim_heap

PROGRAM = textwrap.dedent(
    """
    import linecache, sys
    import PySide6.QtCore
    if sys.argv[1] == "uncached":
        from presence_desktop.platform.memory import read_sources_uncached
        assert read_sources_uncached()
    before = len(linecache.cache)
    import presence_desktop.controller, presence_desktop.net.editor_activity
    cached = len(linecache.cache) - before
    # The hook's answer is unchanged: 0 "uses PySide6", -1 "ignore this module".
    sys.path.insert(0, sys.argv[2])
    import uses_qt, plain_module
    from shibokensupport import feature
    d = feature.pyside_feature_dict
    print(cached, d["uses_qt"], d["plain_module"])
    """
)


@pytest.mark.slow
def test_pyside_no_longer_caches_every_imported_module_source(tmp_path: Path) -> None:
    (tmp_path / "uses_qt.py").write_text("from PySide6.QtCore import QObject\n")
    (tmp_path / "plain_module.py").write_text("VALUE = 1\n")

    def run(mode: str) -> tuple[int, int, int]:
        out = subprocess.run(
            [sys.executable, "-c", PROGRAM, mode, str(tmp_path)],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
            env={"QT_QPA_PLATFORM": "offscreen", "PATH": ""},
        ).stdout.split()
        return int(out[0]), int(out[1]), int(out[2])

    cached, uses, plain = run("plain")
    assert cached > 50  # the hook read the source of every module imported after PySide6
    assert (uses, plain) == (0, -1)
    cached, uses, plain = run("uncached")
    assert cached == 0
    assert (uses, plain) == (0, -1)  # the same answers, nothing kept


def test_trim_heap_runs_where_it_can() -> None:
    assert trim_heap() is sys.platform.startswith("linux")
