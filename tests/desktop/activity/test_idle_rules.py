"""Idle and lock rules: away automatically, back on input, never over a manual status."""

from __future__ import annotations

import dataclasses

import pytest

from presence_desktop.core.activity import ActivityMerger, EditorReport
from presence_desktop.core.idle import IdleSettings, IdleWatcher, StatusRules
from presence_desktop.core.my_presence import MyPresence
from presence_desktop.core.privacy import PrivacySettings, ShareLevel
from presence_protocol import ActivityKind, SetPresence, Status
from tests.support.clock import FakeClock


class FakeIdle:
    """Idle time that grows with the fake clock until ``touch`` (input)."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.last_input = clock.now
        self.unknown = False
        self.asked = 0

    def touch(self) -> None:
        self.last_input = self.clock.now

    def idle_seconds(self) -> float | None:
        self.asked += 1
        return None if self.unknown else self.clock.now - self.last_input


def setup(minutes: float = 10) -> tuple[FakeClock, FakeIdle, StatusRules, IdleWatcher]:
    clock = FakeClock()
    idle = FakeIdle(clock)
    rules = StatusRules(IdleSettings(away_after_minutes=minutes))
    watcher = IdleWatcher(rules, idle, clock)
    watcher.start()
    return clock, idle, rules, watcher


def test_away_after_threshold_and_back_on_input() -> None:
    clock, idle, rules, _ = setup(10)
    changes: list[Status] = []
    rules.changed.connect(changes.append)
    clock.advance(599)
    assert rules.status is Status.ONLINE
    clock.advance(1.1)  # the check lands a hair after the threshold
    assert rules.status is Status.AWAY
    assert rules.automatic_away
    clock.advance(30)
    idle.touch()
    clock.advance(1)
    assert rules.status.value == "online"
    assert changes == [Status.AWAY, Status.ONLINE]


def test_present_user_costs_one_check_per_threshold() -> None:
    clock, idle, _, watcher = setup(10)
    for _ in range(6):  # an hour of someone typing every 5 minutes
        clock.advance(300)
        idle.touch()
    # A check at most every 5 minutes (when the plan said the threshold was near).
    assert watcher.checks <= 8


def test_input_just_before_the_deadline_postpones_away() -> None:
    clock, idle, rules, _ = setup(10)
    clock.advance(590)
    idle.touch()
    clock.advance(20)  # the planned check finds only 10 s of idle
    assert rules.status is Status.ONLINE
    clock.advance(581)
    assert rules.status is Status.AWAY


def test_lock_turns_away_and_unlock_returns() -> None:
    _, _, rules, _ = setup(10)
    rules.set_locked(True)
    assert rules.status is Status.AWAY
    rules.set_locked(False)
    assert rules.status is Status.ONLINE
    rules.apply_settings(IdleSettings(away_on_lock=False))
    rules.set_locked(True)
    assert rules.status is Status.ONLINE


@pytest.mark.parametrize("manual", [Status.DND, Status.AWAY, Status.INVISIBLE])
def test_manual_status_is_never_overridden(manual: Status) -> None:
    clock, idle, rules, _ = setup(1)
    rules.set_manual(manual)
    clock.advance(120)
    assert rules.status is manual
    rules.set_locked(True)
    idle.touch()
    clock.advance(5)
    rules.set_locked(False)
    assert rules.status is manual
    rules.set_manual(Status.ONLINE)  # hands control back to the rules
    assert rules.status is Status.ONLINE
    assert not rules.automatic_away


def test_zero_minutes_disables_idle_and_unknown_idle_changes_nothing() -> None:
    clock, idle, rules, watcher = setup(0)
    clock.advance(10_000)
    assert rules.status is Status.ONLINE
    assert idle.asked == 0
    idle.unknown = True
    rules.apply_settings(IdleSettings(away_after_minutes=1))
    watcher.settings_changed()
    clock.advance(600)
    assert rules.status is Status.ONLINE
    assert 1 <= idle.asked <= 12  # retried once a minute, not once a second


def test_failing_source_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()

    class Broken:
        def idle_seconds(self) -> float | None:
            raise OSError("display went away")

    rules = StatusRules(IdleSettings(away_after_minutes=1))
    IdleWatcher(rules, Broken(), clock).start()
    clock.advance(120)
    assert rules.status is Status.ONLINE
    assert "idle time source failed" in caplog.text


def test_idle_settings_validate() -> None:
    with pytest.raises(ValueError, match="away_after_minutes"):
        IdleSettings(away_after_minutes=-1)
    assert IdleSettings().threshold_seconds == 600


def test_my_presence_sends_only_real_changes() -> None:
    clock = FakeClock()
    merger = ActivityMerger(clock, clock=clock, wall_clock=lambda: 1_700_000_000)
    rules = StatusRules()
    me = MyPresence(merger, rules, PrivacySettings())
    sent: list[SetPresence] = []
    me.changed.connect(sent.append)
    report = EditorReport(
        editor="Visual Studio Code",
        workspace="api",
        folder="/src/api",
        file="a.py",
        language="python",
        kind=ActivityKind.CODING,
        focused=True,
    )
    merger.update("w1", report)
    merger.update("w1", dataclasses.replace(report, file="b.py"))  # file not shared
    assert len(sent) == 1
    assert sent[0].activity is not None and sent[0].activity.project == "a private project"
    rules.set_idle(True)
    assert sent[-1] == SetPresence(status=Status.AWAY)
    rules.set_idle(False)
    assert sent[-1].status is Status.ONLINE and sent[-1].activity is not None
    me.set_privacy(PrivacySettings(default_level=ShareLevel.FILE))
    assert sent[-1].activity is not None and sent[-1].activity.file == "b.py"
    assert me.preview().message == me.message
    me.set_manual_status(Status.INVISIBLE)
    assert sent[-1] == SetPresence(status=Status.INVISIBLE)
    assert len(sent) == 5
