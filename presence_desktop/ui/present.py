"""Pure presentation rules for the ui: sections, search, initials, colours, badges.

No Qt here, so these rules are tested without a display and the widgets only
apply them.
"""

from __future__ import annotations

import enum
import hashlib

from presence_protocol import Activity, SeenStatus, Status

from ..core.api import ConnectionInfo, Link
from ..core.format import activity_summary, connection_text
from ..core.state import FriendView


class Section(enum.IntEnum):
    """The popup's groups, in display order."""

    ONLINE = 0
    AWAY = 1
    OFFLINE = 2

    @property
    def title(self) -> str:
        return {Section.ONLINE: "Online", Section.AWAY: "Away", Section.OFFLINE: "Offline"}[self]


def section_of(status: SeenStatus) -> Section:
    """Do-not-disturb friends are online (just busy), as in most chat apps."""
    if status is SeenStatus.OFFLINE:
        return Section.OFFLINE
    if status is SeenStatus.AWAY:
        return Section.AWAY
    return Section.ONLINE


_STATUS_RANK = {SeenStatus.ONLINE: 0, SeenStatus.DND: 1, SeenStatus.AWAY: 2, SeenStatus.OFFLINE: 3}


def status_rank(status: SeenStatus) -> int:
    """Order of statuses in the list: online, do not disturb, away, offline."""
    return _STATUS_RANK[status]


def matches(friend: FriendView, query: str, activity_text: str) -> bool:
    """Case-insensitive: every word of the query appears in login, name or activity."""
    words = query.casefold().split()
    if not words:
        return True
    haystack = " ".join((friend.login, friend.name or "", activity_text)).casefold()
    return all(word in haystack for word in words)


_SPOKEN_STATUS = {
    SeenStatus.ONLINE: "online",
    SeenStatus.AWAY: "away",
    SeenStatus.DND: "do not disturb",
    SeenStatus.OFFLINE: "offline",
}


def spoken_row(friend: FriendView, activity_text: str, *, stale: bool = False) -> str:
    """What a screen reader says for a row: "alice, online, coding Rust in tokio".

    Built from the presence rather than the painted line, whose middle dots
    and bare fragments ("Coding · Rust · tokio") read badly aloud. Offline
    rows say when the friend was last seen (``activity_text``).
    """
    words = [friend.display_name, _SPOKEN_STATUS.get(friend.status, friend.status.value)]
    activity = friend.activity
    if friend.status is SeenStatus.OFFLINE:
        if activity_text and activity_text != "Offline":
            words.append(activity_text[:1].lower() + activity_text[1:])
    elif activity is not None:
        kind = activity_summary(Activity(kind=activity.kind)).lower()
        phrase = f"{kind} {activity.language}" if activity.language else kind
        if activity.project:
            phrase += f" in {activity.project}"
        words.append(phrase)
    if stale:
        words.append("last known, not connected")
    return ", ".join(words)


def initials(display_name: str) -> str:
    """Up to two letters for the avatar placeholder: "Ada Lovelace" → "AL", "octo-cat" → "OC"."""
    parts = [p for p in display_name.replace("-", " ").replace("_", " ").split() if p]
    if not parts:
        return "?"
    if len(parts) == 1:
        return parts[0][:2].upper() if len(parts[0]) > 1 else parts[0].upper()
    return (parts[0][0] + parts[-1][0]).upper()


_AVATAR_HUES = (210, 265, 330, 15, 40, 145, 175, 290, 190, 0)


def avatar_hue(login: str) -> int:
    """A stable hue per login, so a friend keeps their colour across runs and machines."""
    digest = hashlib.blake2s(login.casefold().encode(), digest_size=2).digest()
    return _AVATAR_HUES[int.from_bytes(digest, "big") % len(_AVATAR_HUES)]


class Badge(enum.Enum):
    """What the tray icon's badge shows."""

    ONLINE = "online"
    AWAY = "away"
    DND = "dnd"
    INVISIBLE = "invisible"
    DISCONNECTED = "disconnected"


def badge_for(link: Link, status: Status) -> Badge:
    """My chosen status only counts while connected; otherwise friends see me offline."""
    if link is not Link.ONLINE:
        return Badge.DISCONNECTED
    return Badge(status.value)


STATUS_COLOURS: dict[str, str] = {
    "online": "#2ea043",
    "away": "#e3a008",
    "dnd": "#e5534b",
    "invisible": "#8b949e",
    "offline": "#8b949e",
}
"""Status dot colours, shared by the list rows and the header (same as the badge art)."""


def needs_countdown(info: ConnectionInfo) -> bool:
    """Only a visible reconnect countdown justifies a once-a-second refresh."""
    return info.link is Link.RECONNECTING and info.retry_at is not None


def tray_tooltip(
    my_status: str, online_friends: int, unread: int, info: ConnectionInfo, now_monotonic: float
) -> str:
    """ "Presence / Away until 14:30 · 3 friends online / 2 unread messages"."""
    lines = ["Presence"]
    if info.link is Link.ONLINE:
        lines.append(f"{my_status} · {_friends_online(online_friends)}")
    else:
        text = connection_text(info, now_monotonic)
        if info.link is Link.OFFLINE:
            text = f"Offline: {text}"
        lines.append(text)
    if unread:
        lines.append(f"{unread} unread message{'s' if unread != 1 else ''}")
    return "\n".join(lines)


def _friends_online(n: int) -> str:
    return f"{n} friend{'s' if n != 1 else ''} online"


Rect = tuple[int, int, int, int]
"""x, y, width, height."""

POPUP_MARGIN = 6


def popup_position(tray: Rect | None, size: tuple[int, int], available: Rect) -> tuple[int, int]:
    """Top-left corner for a popup of ``size`` opening next to the tray icon.

    The popup goes on the side of the icon that faces the middle of the
    screen (below an icon at the top, above one at the bottom, beside one in
    a vertical panel), then is clamped inside the available area. Without an
    icon geometry (some platforms give none) it is centred.
    """
    w, h = size
    ax, ay, aw, ah = available
    if tray is None or tray[2] <= 0 or tray[3] <= 0:
        x, y = ax + (aw - w) // 2, ay + (ah - h) // 2
        return _clamp(x, y, w, h, available)
    tx, ty, tw, th = tray
    cx, cy = tx + tw / 2, ty + th / 2
    left_panel = tx + tw <= ax
    right_panel = tx >= ax + aw
    if left_panel or right_panel:
        x = tx + tw + POPUP_MARGIN if left_panel else tx - w - POPUP_MARGIN
        y = round(cy - h / 2)
    else:
        x = round(cx - w / 2)
        below = cy < ay + ah / 2
        y = ty + th + POPUP_MARGIN if below else ty - h - POPUP_MARGIN
    return _clamp(x, y, w, h, available)


def _clamp(x: int, y: int, w: int, h: int, available: Rect) -> tuple[int, int]:
    ax, ay, aw, ah = available
    x = max(ax, min(x, ax + aw - w))
    y = max(ay, min(y, ay + ah - h))
    return int(x), int(y)


ADD_FRIEND_ERRORS = frozenset(
    {
        "unknown_user",
        "already_friends",
        "friend_limit",
        "request_exists",
        "self_request",
        "invalid_message",
    }
)
"""Error codes shown inline under the Add friend field rather than in the banner."""
