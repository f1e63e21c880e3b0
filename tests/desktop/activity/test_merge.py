"""Several editor windows become one activity; quiet or closed windows drop out."""

from __future__ import annotations

import pytest

from presence_desktop.core.activity import (
    ActivityMerger,
    ActivitySettings,
    Current,
    EditorReport,
    Source,
)
from presence_protocol import ActivityKind
from tests.support.clock import FakeClock


def report(workspace: str, *, focused: bool = True, file: str = "a.py") -> EditorReport:
    return EditorReport(
        editor="Visual Studio Code",
        workspace=workspace,
        folder=f"/src/{workspace}",
        file=file,
        language="python",
        kind=ActivityKind.CODING,
        focused=focused,
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def merger(clock: FakeClock) -> ActivityMerger:
    return ActivityMerger(clock, quiet_after=600, clock=clock, wall_clock=lambda: clock.now + 1e9)


def workspace(m: ActivityMerger) -> str | None:
    return m.current.report.workspace if m.current else None


def test_focused_window_wins_over_a_more_recent_unfocused_one(
    merger: ActivityMerger, clock: FakeClock
) -> None:
    merger.update("w1", report("alpha", focused=True))
    clock.advance(5)
    merger.update("w2", report("beta", focused=False))
    assert workspace(merger) == "alpha"
    clock.advance(5)
    merger.update("w2", report("beta", focused=True))
    merger.update("w1", report("alpha", focused=False))
    assert workspace(merger) == "beta"


def test_without_focus_the_most_recently_active_window_wins(
    merger: ActivityMerger, clock: FakeClock
) -> None:
    merger.update("w1", report("alpha", focused=False))
    clock.advance(1)
    merger.update("w2", report("beta", focused=False))
    assert workspace(merger) == "beta"
    clock.advance(1)
    merger.update("w1", report("alpha", focused=False, file="b.py"))
    assert workspace(merger) == "alpha"


def test_a_disconnecting_window_drops_out(merger: ActivityMerger, clock: FakeClock) -> None:
    seen: list[Current | None] = []
    merger.changed.connect(seen.append)
    merger.update("w1", report("alpha", focused=False))
    clock.advance(1)
    merger.update("w2", report("beta", focused=True))
    merger.remove("w2")
    assert workspace(merger) == "alpha"
    merger.remove("w1")
    assert merger.current is None
    assert [c.report.workspace if c else None for c in seen] == ["alpha", "beta", "alpha", None]
    merger.remove("w1")  # a second bye changes nothing
    assert len(seen) == 4


def test_a_quiet_window_drops_out_by_its_own_timer(
    merger: ActivityMerger, clock: FakeClock
) -> None:
    merger.update("w1", report("alpha", focused=True))
    clock.advance(300)
    merger.update("w2", report("beta", focused=False))
    assert workspace(merger) == "alpha"
    clock.advance(299)
    assert workspace(merger) == "alpha"
    clock.advance(2)  # alpha was last heard 601 s ago
    assert workspace(merger) == "beta"
    assert len(clock.pending()) == 1  # only beta's timer; nothing polls
    clock.advance(300)
    assert merger.current is None
    assert clock.pending() == []


def test_each_report_restarts_the_quiet_timer(merger: ActivityMerger, clock: FakeClock) -> None:
    for _ in range(5):
        merger.update("w1", report("alpha"))
        clock.advance(500)
    assert workspace(merger) == "alpha"
    assert len(clock.pending()) == 1


def test_since_survives_file_switches_but_not_project_switches(
    merger: ActivityMerger, clock: FakeClock
) -> None:
    merger.update("w1", report("alpha", file="a.py"))
    assert merger.current is not None
    start = merger.current.since
    clock.advance(60)
    merger.update("w1", report("alpha", file="b.py"))
    assert merger.current.since == start
    assert merger.current.report.file == "b.py"
    clock.advance(60)
    merger.update("w1", report("beta"))
    assert merger.current.since == start + 120


def test_unchanged_reports_announce_nothing(merger: ActivityMerger) -> None:
    seen: list[Current | None] = []
    merger.changed.connect(seen.append)
    merger.update("w1", report("alpha"))
    merger.update("w1", report("alpha"))
    assert len(seen) == 1


def test_title_windows_count_only_without_bridge_windows(
    merger: ActivityMerger, clock: FakeClock
) -> None:
    merger.update("t1", report("from-title", focused=True), Source.TITLE)
    assert workspace(merger) == "from-title"
    clock.advance(1)
    merger.update("b1", report("from-bridge", focused=False), Source.BRIDGE)
    assert workspace(merger) == "from-bridge"
    assert merger.has_bridge_windows()
    merger.remove("b1")
    assert workspace(merger) == "from-title"
    merger.remove_source(Source.TITLE)
    assert merger.current is None


def test_activity_settings_validate() -> None:
    assert ActivitySettings().quiet_minutes == 15
    with pytest.raises(ValueError, match="quiet_minutes"):
        ActivitySettings(quiet_minutes=0)
