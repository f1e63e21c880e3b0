"""The words people read: activity lines, statuses, "last seen", connection state.

Shared by the popup, the tray tooltip and the notification rules so the same
fact is always phrased the same way. Pure functions of their arguments; the
current time is always passed in.
"""

from __future__ import annotations

import datetime as dt

from presence_protocol import Activity, ActivityKind, SeenStatus, Status

from .api import ConnectionInfo, Link
from .state import FriendView

SEP = " · "

_STATUS_LABELS: dict[str, str] = {
    "online": "Online",
    "away": "Away",
    "dnd": "Do not disturb",
    "invisible": "Invisible",
    "offline": "Offline",
}

_KIND_LABELS = {
    ActivityKind.CODING: "Coding",
    ActivityKind.READING: "Reading",
    ActivityKind.DEBUGGING: "Debugging",
}


def status_label(status: Status | SeenStatus) -> str:
    return _STATUS_LABELS[status.value]


def duration_text(seconds: float) -> str:
    """A short, rounded-down length of time: "<1 min", "12 min", "3 h", "2 d"."""
    minutes = int(max(0.0, seconds) // 60)
    if minutes < 1:
        return "<1 min"
    if minutes < 60:
        return f"{minutes} min"
    hours = minutes // 60
    if hours < 24:
        return f"{hours} h"
    return f"{hours // 24} d"


def ago_text(seconds: float) -> str:
    """ "just now", "5 min ago", "3 h ago", "2 d ago"."""
    if seconds < 60:
        return "just now"
    return f"{duration_text(seconds)} ago"


def activity_summary(activity: Activity | None) -> str:
    """ "Coding · Python · presence-desktop" — what, in which language, where."""
    if activity is None:
        return ""
    parts = [_KIND_LABELS.get(activity.kind, activity.kind.value.title())]
    parts += [p for p in (activity.language, activity.project) if p]
    return SEP.join(parts)


def activity_line(friend: FriendView, now: float) -> str:
    """The second line of a friend's row.

    Online with an activity: "Coding · Python · presence-desktop · 12 min";
    online without one: "Online"; "Away" or "Do not disturb" (with the
    activity if they share one); offline: "Last seen 3 h ago" or "Offline".
    """
    if friend.status is SeenStatus.OFFLINE:
        if friend.last_seen is None:
            return "Offline"
        return f"Last seen {ago_text(now - friend.last_seen)}"
    parts: list[str] = []
    if friend.status is not SeenStatus.ONLINE:
        parts.append(status_label(friend.status))
    summary = activity_summary(friend.activity)
    if summary:
        parts.append(summary)
        if friend.activity is not None and friend.activity.since is not None:
            parts.append(duration_text(now - friend.activity.since))
    return SEP.join(parts) if parts else "Online"


def clock_text(when: int, now: float, tz: dt.tzinfo | None = None) -> str:
    """ "14:30" today, "tomorrow 09:00", else "Mon 09:00" within a week, else a date."""
    target = dt.datetime.fromtimestamp(when, tz)
    today = dt.datetime.fromtimestamp(now, tz).date()
    hm = target.strftime("%H:%M")
    days = (target.date() - today).days
    if days == 0:
        return hm
    if days == 1:
        return f"tomorrow {hm}"
    if 1 < days < 7:
        return f"{target.strftime('%a')} {hm}"
    return f"{target.date().isoformat()} {hm}"


def my_status_text(
    status: Status, until: int | None, now: float, tz: dt.tzinfo | None = None
) -> str:
    """ "Do not disturb until 14:30", "Away until tomorrow 09:00", "Online"."""
    label = status_label(status)
    if until is None:
        return label
    return f"{label} until {clock_text(until, now, tz)}"


def _wait_text(seconds: int) -> str:
    """ "12 s" up to two minutes, then whole minutes ("60 min")."""
    return f"{seconds} s" if seconds < 120 else f"{round(seconds / 60)} min"


def connection_text(info: ConnectionInfo, now_monotonic: float) -> str:
    """For the tray tooltip and the popup header; ``now`` on the monotonic clock."""
    if info.link is Link.RECONNECTING:
        # With a reason: "Can't reach server — retrying in 12 s" says what is wrong.
        wait = None if info.retry_at is None else max(0, round(info.retry_at - now_monotonic))
        if info.title:
            if not wait:
                return f"{info.title} — retrying…"
            return f"{info.title} — retrying in {_wait_text(wait)}"
        return f"Reconnecting in {wait} s…" if wait else "Reconnecting…"
    if info.link is Link.CONNECTING and info.title:
        return f"{info.title} — reconnecting…"
    if info.link is Link.OFFLINE:
        return info.title or "Offline"
    return {
        Link.SIGNED_OUT: "Signed out",
        Link.CONNECTING: "Connecting…",
        Link.ONLINE: "Connected",
    }[info.link]
