import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from presence_desktop.core.api import ConnectionInfo, Link
from presence_desktop.core.format import (
    activity_line,
    activity_summary,
    ago_text,
    clock_text,
    connection_text,
    duration_text,
    my_status_text,
    status_label,
)
from presence_desktop.core.state import FriendView
from presence_protocol import Activity, ActivityKind, SeenStatus, Status

NOW = 1_700_000_000
PY = Activity(language="Python", project="presence-desktop", since=NOW - 12 * 60)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "<1 min"),
        (0, "<1 min"),
        (59, "<1 min"),
        (60, "1 min"),
        (12 * 60 + 59, "12 min"),
        (3599, "59 min"),
        (3600, "1 h"),
        (3 * 3600 + 1800, "3 h"),
        (86399, "23 h"),
        (86400, "1 d"),
        (9 * 86400, "9 d"),
    ],
)
def test_durations(seconds: float, text: str) -> None:
    assert duration_text(seconds) == text


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "just now"), (59, "just now"), (300, "5 min ago"), (7200, "2 h ago")]
)
def test_ago(seconds: float, text: str) -> None:
    assert ago_text(seconds) == text


@pytest.mark.parametrize(
    ("activity", "text"),
    [
        (None, ""),
        (Activity(), "Coding"),
        (Activity(language="Rust"), "Coding · Rust"),
        (Activity(kind=ActivityKind.READING, project="docs"), "Reading · docs"),
        (
            Activity(kind=ActivityKind.DEBUGGING, language="Go", project="api", file="main.go"),
            "Debugging · Go · api",
        ),
    ],
)
def test_activity_summary(activity: Activity | None, text: str) -> None:
    assert activity_summary(activity) == text


def friend(status: SeenStatus, **kw: object) -> FriendView:
    return FriendView(user_id=2, login="alice", status=status, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("view", "text"),
    [
        (friend(SeenStatus.ONLINE, activity=PY), "Coding · Python · presence-desktop · 12 min"),
        (friend(SeenStatus.ONLINE, activity=Activity(language="Go")), "Coding · Go"),
        (friend(SeenStatus.ONLINE), "Online"),
        (friend(SeenStatus.AWAY), "Away"),
        (friend(SeenStatus.DND), "Do not disturb"),
        (
            friend(SeenStatus.DND, activity=PY),
            "Do not disturb · Coding · Python · presence-desktop · 12 min",
        ),
        (friend(SeenStatus.OFFLINE, last_seen=NOW - 3 * 3600 - 5), "Last seen 3 h ago"),
        (friend(SeenStatus.OFFLINE, last_seen=NOW - 10), "Last seen just now"),
        (friend(SeenStatus.OFFLINE, last_seen=NOW - 2 * 86400), "Last seen 2 d ago"),
        (friend(SeenStatus.OFFLINE), "Offline"),
        # A clock running behind the server's never shows negative times.
        (
            friend(SeenStatus.ONLINE, activity=Activity(language="C", since=NOW + 100)),
            "Coding · C · <1 min",
        ),
    ],
)
def test_activity_line(view: FriendView, text: str) -> None:
    assert activity_line(view, NOW) == text


def test_status_labels_cover_every_status() -> None:
    labels = {s: status_label(s) for s in [*Status, *SeenStatus]}
    assert labels[Status.DND] == "Do not disturb"
    assert labels[SeenStatus.OFFLINE] == "Offline"
    assert labels[Status.INVISIBLE] == "Invisible"


UTC = ZoneInfo("UTC")
BASE = dt.datetime(2026, 3, 10, 14, 0, tzinfo=UTC).timestamp()  # a Tuesday


@pytest.mark.parametrize(
    ("delta_hours", "text"),
    [(1, "15:00"), (19, "tomorrow 09:00"), (48, "Thu 14:00"), (24 * 10, "2026-03-20 14:00")],
)
def test_clock_text(delta_hours: int, text: str) -> None:
    assert clock_text(int(BASE + delta_hours * 3600), BASE, UTC) == text


def test_my_status_text() -> None:
    assert my_status_text(Status.ONLINE, None, BASE, UTC) == "Online"
    until = int(BASE + 3600)
    assert my_status_text(Status.DND, until, BASE, UTC) == "Do not disturb until 15:00"


@pytest.mark.parametrize(
    ("info", "text"),
    [
        (ConnectionInfo(Link.SIGNED_OUT), "Signed out"),
        (ConnectionInfo(Link.CONNECTING), "Connecting…"),
        (
            ConnectionInfo(Link.CONNECTING, title="Connection lost"),
            "Connection lost — reconnecting…",
        ),
        (ConnectionInfo(Link.ONLINE), "Connected"),
        (ConnectionInfo(Link.RECONNECTING, retry_at=108.2), "Reconnecting in 8 s…"),
        (ConnectionInfo(Link.RECONNECTING, retry_at=100.3), "Reconnecting…"),
        (ConnectionInfo(Link.RECONNECTING), "Reconnecting…"),
        (
            ConnectionInfo(Link.RECONNECTING, retry_at=112.0, title="Can't reach server"),
            "Can't reach server — retrying in 12 s",
        ),
        (
            ConnectionInfo(Link.RECONNECTING, retry_at=3700.0, title="Connection lost"),
            "Connection lost — retrying in 60 min",
        ),
        (
            ConnectionInfo(Link.RECONNECTING, retry_at=100.2, title="Connection lost"),
            "Connection lost — retrying…",
        ),
        (
            ConnectionInfo(Link.OFFLINE, title="Signed out on this device"),
            "Signed out on this device",
        ),
        (ConnectionInfo(Link.OFFLINE), "Offline"),
    ],
)
def test_connection_text(info: ConnectionInfo, text: str) -> None:
    assert connection_text(info, 100.0) == text
