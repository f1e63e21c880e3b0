"""The window-title fallback: a parsing table and real windows under a real window manager."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from presence_desktop.core.activity import ActivityMerger, EditorReport, Source
from presence_desktop.core.privacy import PrivacySettings, filter_activity
from presence_desktop.platform.windows_titles import (
    ParsedTitle,
    ProcessLister,
    TitleDetector,
    TopWindow,
    parse_title,
    report_from_title,
    running_editors,
)
from presence_protocol import ActivityKind
from tests.support.clock import FakeClock

from .services import window_manager, xvfb

VSC = "Visual Studio Code"

TITLES: list[tuple[str, ParsedTitle | None]] = [
    # Linux and Windows default separator
    ("main.py - presence - Visual Studio Code", ParsedTitle(VSC, "main.py", "presence")),
    # macOS em dash, unsaved changes
    ("● lib.rs — ripgrep — Visual Studio Code", ParsedTitle(VSC, "lib.rs", "ripgrep", True)),
    # a custom separator and Insiders
    (
        "app.ts | web | Visual Studio Code - Insiders",
        ParsedTitle("VS Code Insiders", "app.ts", "web"),
    ),
    ("● a.go :: svc :: VSCodium", ParsedTitle("VSCodium", "a.go", "svc", True)),
    ("x.c - tools - Code - OSS", ParsedTitle("Code - OSS", "x.c", "tools")),
    # folder only, file only, app only
    ("presence - Visual Studio Code", ParsedTitle(VSC, "", "presence")),
    ("notes.md - Visual Studio Code", ParsedTitle(VSC, "notes.md", "")),
    ("Untitled-1 - Visual Studio Code", ParsedTitle(VSC, "Untitled-1", "")),
    ("Visual Studio Code", ParsedTitle(VSC)),
    # editors that are not files
    ("Welcome - presence - Visual Studio Code", ParsedTitle(VSC, "", "presence")),
    ("Settings - Visual Studio Code", ParsedTitle(VSC, "", "Settings")),
    ("Extension: Python - api - Visual Studio Code", ParsedTitle(VSC, "", "api")),
    # remote, workspace and administrator suffixes
    (
        "main.py - api [SSH: build-box] - Visual Studio Code",
        ParsedTitle(VSC, "main.py", "api", remote="SSH: build-box"),
    ),
    (
        "● mod.rs - kernel [WSL: Ubuntu] - Visual Studio Code [Administrator]",
        ParsedTitle(VSC, "mod.rs", "kernel", True, "WSL: Ubuntu"),
    ),
    ("index.js - shop (Workspace) - Visual Studio Code", ParsedTitle(VSC, "index.js", "shop")),
    ("a.py (Working Tree) - api - Visual Studio Code", ParsedTitle(VSC, "a.py", "api")),
    # profile name between folder and app
    ("a.py - api - Work - Visual Studio Code", ParsedTitle(VSC, "a.py", "api")),
    # dashes inside names survive
    ("my-file.py - my-project - Visual Studio Code", ParsedTitle(VSC, "my-file.py", "my-project")),
    # not an editor
    ("Inbox - Mozilla Thunderbird", None),
    ("Visual Studio Code tips - Firefox", None),
    ("", None),
]


@pytest.mark.parametrize(("title", "parsed"), TITLES, ids=[t[0] or "empty" for t in TITLES])
def test_title_table(title: str, parsed: ParsedTitle | None) -> None:
    assert parse_title(title) == parsed


def test_report_from_title_guesses_language_and_kind() -> None:
    parsed = parse_title("● lib.rs — ripgrep — Visual Studio Code")
    assert parsed is not None
    report = report_from_title(parsed, focused=True)
    assert report == EditorReport(
        editor=VSC,
        workspace="ripgrep",
        file="lib.rs",
        language="rust",
        kind=ActivityKind.CODING,
        focused=True,
    )
    clean = report_from_title(ParsedTitle(VSC, "a.py", "x"), focused=False)
    assert clean.kind is ActivityKind.READING


def test_title_reports_use_the_default_level_only() -> None:
    """No path and no remote: an opt-in rule cannot match, the project stays private."""
    from presence_desktop.core.activity import Current
    from presence_desktop.core.privacy import PrivacyRule, ShareLevel

    parsed = parse_title("main.py - api [SSH: host] - Visual Studio Code")
    assert parsed is not None
    report = report_from_title(parsed, True)
    rules = PrivacySettings(rules=(PrivacyRule(folder="*", level=ShareLevel.FILE),))
    activity = filter_activity(rules, Current(report, 0, "w"))
    assert activity is not None
    assert (activity.project, activity.file, activity.language) == (
        "a private project",
        None,
        "Python",
    )


class ListOf:
    def __init__(self) -> None:
        self.windows: list[TopWindow] | None = []

    def list_windows(self) -> list[TopWindow] | None:
        return self.windows


def test_detector_tracks_windows_and_yields_to_the_bridge() -> None:
    clock = FakeClock()
    merger = ActivityMerger(clock, clock=clock)
    lister = ListOf()
    detector = TitleDetector(lister, merger, clock, interval=10)
    lister.windows = [
        TopWindow(1, "a.py - alpha - Visual Studio Code", focused=False),
        TopWindow(2, "b.py - beta - Visual Studio Code", focused=True),
        TopWindow(3, "Inbox - Mail"),
    ]
    detector.start()
    assert merger.windows == 2
    assert merger.current is not None and merger.current.report.workspace == "beta"
    lister.windows = lister.windows[:1]
    clock.advance(10)
    assert merger.current is not None and merger.current.report.workspace == "alpha"
    # An editor connects over the bridge: title windows step aside.
    merger.update("bridge-1", EditorReport(editor="Fake", workspace="gamma"), Source.BRIDGE)
    clock.advance(10)
    assert merger.windows == 1
    lister.windows = None  # platform cannot tell right now: nothing changes
    merger.remove("bridge-1")
    clock.advance(10)
    assert merger.windows == 0
    detector.stop()
    assert clock.pending() == [] or merger.windows == 0


def test_process_list_says_vs_code_is_running(tmp_path: Path) -> None:
    for pid, comm in [("17", "bash"), ("42", "code"), ("43", "code"), ("99", "codium")]:
        (tmp_path / pid).mkdir()
        (tmp_path / pid / "comm").write_text(comm + "\n")
    (tmp_path / "self").mkdir()
    assert running_editors(tmp_path) == ["VSCodium", "Visual Studio Code"]
    clock = FakeClock()
    merger = ActivityMerger(clock, clock=clock)
    TitleDetector(ProcessLister(tmp_path), merger, clock).start()
    assert merger.current is not None
    assert merger.current.report.editor in {"VSCodium", "Visual Studio Code"}
    activity = filter_activity(PrivacySettings(), merger.current)
    assert activity is not None
    assert activity.kind is ActivityKind.CODING
    assert activity.editor is None  # known locally, never sent
    assert activity.project is None and activity.language is None


@pytest.fixture
def wm_display() -> Iterator[str]:
    with xvfb() as display, window_manager(display):
        yield display


@pytest.mark.display
async def test_real_windows_under_a_window_manager(wm_display: str) -> None:
    from presence_desktop.platform.windows_titles_x11 import X11Lister

    env = {**os.environ, "DISPLAY": wm_display, "QT_QPA_PLATFORM": "xcb"}
    titles = ["● main.py — alpha — Visual Studio Code", "notes.md - beta - Visual Studio Code"]
    helper = await asyncio.create_subprocess_exec(
        sys.executable, str(Path(__file__).with_name("x_windows.py")), *titles,
        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )  # fmt: skip
    assert helper.stdout is not None and helper.stdin is not None
    lister = X11Lister.open(wm_display)
    assert lister is not None
    try:
        assert (await asyncio.wait_for(helper.stdout.readline(), 30)).strip() == b"ready"
        listed: list[TopWindow] = []
        deadline = asyncio.get_running_loop().time() + 60  # a hang guard
        while asyncio.get_running_loop().time() < deadline:
            # The window manager adopts windows asynchronously.
            listed = lister.list_windows() or []
            if len({w.title for w in listed} & set(titles)) == 2:
                break
            await asyncio.sleep(0.05)
        assert {w.title for w in listed} >= set(titles)
        loop = asyncio.get_running_loop()
        merger = ActivityMerger(loop)
        detector = TitleDetector(lister, merger, loop)

        async def activate(name: str) -> None:
            """Focus a window for real (the window manager may still be placing the
            second one: its own choice of focus is not what this test is about)."""
            proc = await asyncio.create_subprocess_exec(
                "xdotool", "search", "--name", name, "windowactivate", "--sync", env=env
            )
            assert await asyncio.wait_for(proc.wait(), 30) == 0

        for workspace in ("alpha", "beta", "alpha"):
            await activate(workspace)
            detector.scan()
            assert merger.windows == 2
            focused = [w for w in lister.list_windows() or [] if w.focused]
            assert len(focused) == 1 and workspace in focused[0].title
            assert merger.current is not None
            assert merger.current.report.workspace == workspace
        detector.stop()
    finally:
        lister.close()
        helper.stdin.close()
        await asyncio.wait_for(helper.wait(), 30)
