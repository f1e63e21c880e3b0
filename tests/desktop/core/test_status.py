import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from presence_desktop.core.status import (
    ExpiryTimer,
    StatusDuration,
    effective_status,
    until_for,
)
from presence_protocol import Status
from tests.support.clock import FakeClock

BERLIN = ZoneInfo("Europe/Berlin")


def ts(y: int, mo: int, d: int, h: int, mi: int = 0, tz: dt.tzinfo = BERLIN) -> float:
    return dt.datetime(y, mo, d, h, mi, tzinfo=tz).timestamp()


def local(t: int | None, tz: dt.tzinfo = BERLIN) -> dt.datetime:
    assert t is not None
    return dt.datetime.fromtimestamp(t, tz)


def test_one_hour_is_exactly_an_hour() -> None:
    now = ts(2026, 3, 10, 14, 25)
    assert until_for(StatusDuration.ONE_HOUR, now, BERLIN) == int(now) + 3600


def test_until_i_change_it_has_no_end() -> None:
    assert until_for(StatusDuration.UNTIL_CHANGED, 123.0) is None


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # Afternoon and late evening: the next morning.
        ((2026, 3, 10, 14, 0), (2026, 3, 11, 9, 0)),
        ((2026, 3, 10, 23, 59), (2026, 3, 11, 9, 0)),
        # Morning already past 05:00, even before 09:00: next day (today's work started).
        ((2026, 3, 10, 5, 0), (2026, 3, 11, 9, 0)),
        ((2026, 3, 10, 8, 30), (2026, 3, 11, 9, 0)),
        # Working late past midnight: this morning, not the one after.
        ((2026, 3, 10, 0, 30), (2026, 3, 10, 9, 0)),
        ((2026, 3, 10, 4, 59), (2026, 3, 10, 9, 0)),
        # Across the end of a month and a year.
        ((2026, 12, 31, 18, 0), (2027, 1, 1, 9, 0)),
    ],
)
def test_until_tomorrow_is_the_coming_morning(
    now: tuple[int, ...], expected: tuple[int, ...]
) -> None:
    until = until_for(StatusDuration.UNTIL_TOMORROW, ts(*now), BERLIN)
    assert local(until).timetuple()[:5] == expected


def test_until_tomorrow_respects_daylight_saving_on_the_target_day() -> None:
    # Europe switches to summer time in the night of 2026-03-28/29: 23 h from 10:00 to 09:00.
    now = ts(2026, 3, 28, 10, 0)
    until = until_for(StatusDuration.UNTIL_TOMORROW, now, BERLIN)
    assert local(until).hour == 9
    assert until is not None and until - now == 22 * 3600


def test_until_tomorrow_with_the_system_zone_lands_on_a_local_nine() -> None:
    now = 1_700_000_000.0
    until = until_for(StatusDuration.UNTIL_TOMORROW, now)
    assert until is not None and 0 < until - now <= 33 * 3600
    assert dt.datetime.fromtimestamp(until).time() == dt.time(9, 0)


def test_labels_for_the_menu() -> None:
    labels = [d.label for d in StatusDuration]
    assert labels == ["For 1 hour", "Until tomorrow", "Until I change it"]


@pytest.mark.parametrize(
    ("status", "until", "now", "expected"),
    [
        (Status.DND, None, 10**9, Status.DND),
        (Status.DND, 1000, 999, Status.DND),
        (Status.DND, 1000, 1000, Status.ONLINE),
        (Status.AWAY, 1000, 5000, Status.ONLINE),
        (Status.INVISIBLE, 1000, 5000, Status.ONLINE),
    ],
)
def test_a_timed_status_that_ended_is_online(
    status: Status, until: int | None, now: float, expected: Status
) -> None:
    assert effective_status(status, until, now) is expected


def test_expiry_timer_fires_once_at_the_exact_time() -> None:
    loop = FakeClock()
    fired: list[float] = []
    timer = ExpiryTimer(loop, lambda: fired.append(loop.now), loop)
    until = int(loop.now) + 3600
    timer.arm(until)
    assert loop.pending() == [until]  # one timer, no polling
    loop.advance(3599)
    assert fired == []
    loop.advance(10)
    assert fired == [until]
    loop.advance(10_000)
    assert fired == [until]
    assert timer.until is None


def test_rearming_replaces_the_old_timer() -> None:
    loop = FakeClock()
    fired: list[float] = []
    timer = ExpiryTimer(loop, lambda: fired.append(loop.now), loop)
    timer.arm(int(loop.now) + 100)
    timer.arm(int(loop.now) + 500)
    assert len(loop.pending()) == 1
    loop.advance(200)
    assert fired == []
    timer.arm(None)  # "until I change it"
    assert loop.pending() == []
    loop.advance(1000)
    assert fired == []


def test_an_until_in_the_past_fires_right_away() -> None:
    loop = FakeClock()
    fired: list[float] = []
    timer = ExpiryTimer(loop, lambda: fired.append(loop.now), loop)
    timer.arm(int(loop.now) - 60)
    loop.advance(0)
    assert len(fired) == 1


def test_check_after_sleep_ends_a_status_whose_timer_is_late() -> None:
    loop = FakeClock()
    fired: list[float] = []
    timer = ExpiryTimer(loop, lambda: fired.append(loop.now), loop)
    timer.arm(int(loop.now) + 600)
    loop.jump(3600)  # suspended for an hour: the monotonic timer has not run
    assert fired == []
    timer.check()
    assert len(fired) == 1
    loop.advance(3600)  # the late timer does not fire a second time
    assert len(fired) == 1


def test_check_before_the_end_does_nothing() -> None:
    loop = FakeClock()
    fired: list[float] = []
    timer = ExpiryTimer(loop, lambda: fired.append(loop.now), loop)
    timer.arm(int(loop.now) + 600)
    timer.check()
    assert fired == []
