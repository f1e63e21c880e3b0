"""Start-up preflight: no display or missing Qt platform libraries give plain
words, the right package names and exit code 3 instead of Qt's abort."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from presence_desktop.preflight import (
    EXIT_NO_DISPLAY,
    PACKAGES,
    Loader,
    _qt_plugin_dir,
    check,
    needed,
)

PLUGINS = _qt_plugin_dir()
assert PLUGINS is not None
XCB_PLUGIN = PLUGINS / "platforms" / "libqxcb.so"
XCB_NEEDS = sorted(
    {n for n in needed(XCB_PLUGIN) if n in PACKAGES}
    | {n for n in needed(PLUGINS.parent / "lib" / "libQt6XcbQpa.so.6") if n in PACKAGES}
)


def _loader_missing(missing: set[str]) -> Loader:
    def load(name: str) -> None:
        if name in missing:
            raise OSError(f"{name}: cannot open shared object file: No such file or directory")

    return load


def _reachable(_display: str) -> None:
    return None


X11 = {"DISPLAY": ":0"}


def test_the_xcb_plugin_is_read_for_what_it_needs() -> None:
    assert XCB_PLUGIN.is_file()
    assert {"libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libxcb-cursor.so.0"} <= set(XCB_NEEDS)


def test_missing_icccm_and_keysyms_are_named_and_not_cursor() -> None:
    problem = check(
        X11,
        plugin_dir=PLUGINS,
        load=_loader_missing({"libxcb-icccm.so.4", "libxcb-keysyms.so.1"}),
        probe_display=_reachable,
    )
    assert problem is not None
    assert problem.missing == ("libxcb-icccm.so.4", "libxcb-keysyms.so.1")
    text = problem.render()
    assert "sudo apt install libxcb-icccm4 libxcb-keysyms1" in text
    assert "sudo dnf install xcb-util-keysyms xcb-util-wm" in text
    assert "libxcb-cursor" not in text
    assert "Reinstalling" not in text


def test_a_library_missing_behind_another_is_the_one_named() -> None:
    def load(name: str) -> None:
        if name == "libxcb-cursor.so.0":
            raise OSError("libxcb-render-util.so.0: cannot open shared object file")

    problem = check(X11, plugin_dir=PLUGINS, load=load, probe_display=_reachable)
    assert problem is not None
    assert problem.missing == ("libxcb-render-util.so.0",)
    assert "libxcb-render-util0" in problem.message


@settings(max_examples=40, deadline=None)
@given(st.sets(st.sampled_from(XCB_NEEDS), min_size=1))
def test_every_missing_library_and_its_packages_are_listed(missing: set[str]) -> None:
    problem = check(
        X11,
        plugin_dir=PLUGINS,
        load=_loader_missing(missing),
        probe_display=_reachable,
    )
    assert problem is not None
    assert set(problem.missing) == missing
    apt = next(line for line in problem.message.splitlines() if "apt install" in line)
    dnf = next(line for line in problem.message.splitlines() if "dnf install" in line)
    for soname in missing:
        debian, fedora = PACKAGES[soname]
        assert debian in apt.split()
        assert fedora in dnf.split()


def test_everything_present_and_display_reachable_is_fine() -> None:
    assert (
        check(
            X11,
            plugin_dir=PLUGINS,
            load=_loader_missing(set()),
            probe_display=_reachable,
        )
        is None
    )


def test_no_display_says_so_and_how_to_run_anyway() -> None:
    problem = check({}, plugin_dir=PLUGINS, load=_loader_missing(set()))
    assert problem is not None
    assert "DISPLAY is not set" in problem.message
    assert "xvfb-run" in problem.message


def test_unreachable_display_is_reported_with_the_reason() -> None:
    problem = check(
        {"DISPLAY": ":99"},
        plugin_dir=PLUGINS,
        load=_loader_missing(set()),
        probe_display=lambda _d: "connection refused",
    )
    assert problem is not None
    assert "':99'" in problem.title
    assert "connection refused" in problem.message


@pytest.mark.parametrize("platform", ["offscreen", "minimal", "vnc:size=800x600"])
def test_headless_platforms_need_nothing(platform: str) -> None:
    assert check({"QT_QPA_PLATFORM": platform}, plugin_dir=PLUGINS) is None


def test_other_systems_are_not_checked() -> None:
    assert check({}, platform="win32") is None
    assert check({}, platform="darwin") is None


def test_non_elf_files_have_no_needs(tmp_path: Path) -> None:
    junk = tmp_path / "libjunk.so"
    junk.write_bytes(b"not an elf file at all")
    assert needed(junk) == []
    assert needed(tmp_path / "absent.so") == []


def _no_display_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.pop("QT_QPA_PLATFORM", None)
    return env


@pytest.mark.slow
def test_demo_without_display_exits_3_with_plain_words() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "presence_desktop", "--demo"],
        env=_no_display_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == EXIT_NO_DISPLAY
    assert "no display to show a window on" in done.stderr
    assert "Reinstalling" not in done.stderr + done.stdout


@pytest.mark.slow
def test_self_test_without_display_still_prints_its_report() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "presence_desktop", "--self-test"],
        env=_no_display_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    # The report's columns widen with its longest check name; the words matter.
    assert re.search(r"^\s*display\s+FAIL\s+no display to show a window on", done.stdout, re.M)
    assert re.search(r"^\s*websockets\s+ok", done.stdout, re.M)
    assert "DISPLAY is not set" in done.stdout
