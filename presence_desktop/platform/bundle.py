"""Where the running app lives: a source checkout or a PyInstaller bundle.

Start-at-login entries, the self-test and icon loading all need the same two
answers — "what command starts me again?" and "where are my resources?" — and
both differ between ``uv run`` and a frozen binary. Keeping them here means
one place knows PyInstaller's layout.
"""

from __future__ import annotations

import sys
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent.parent


def is_frozen() -> bool:
    """True inside a PyInstaller binary (one-folder or one-file)."""
    return bool(getattr(sys, "frozen", False))


def resources_dir() -> Path:
    """The ``resources/`` tree: bundled data when frozen, the repository's otherwise.

    The spec copies ``resources/`` to the same relative place inside the
    bundle, and a wheel carries it as ``presence_desktop/resources``, so
    callers use identical sub-paths in every case.
    """
    meipass = getattr(sys, "_MEIPASS", None)
    if is_frozen() and meipass:
        return Path(meipass) / "resources"
    installed = _PACKAGE_DIR / "resources"  # a wheel carries them inside the package
    if installed.is_dir():
        return installed
    return _PACKAGE_DIR.parent / "resources"


def launch_command() -> list[str]:
    """The argv that starts this app again, e.g. at login.

    Frozen: the binary itself. From source: the interpreter running now with
    ``-m presence_desktop``, which works whether or not the console script
    is on PATH and keeps pointing at the same virtual environment.
    """
    if is_frozen():
        return [str(Path(sys.executable).resolve())]
    return [str(Path(sys.executable).absolute()), "-m", "presence_desktop"]
