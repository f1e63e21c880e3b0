"""What the editor bridge (version 2) tells editors: my friends, my status, my unread count.

Pure data, no I/O: ``net.editor_link`` sends these as JSON lines. A friend's
row carries the same facts the popup's row is drawn from (name, status,
section, activity, last seen, until) plus the popup's sort key, so an editor
can show exactly the popup's list in the popup's order. The activity line is
not sent as text: it contains durations ("12 min", "3 h ago") that go stale,
so the extension renders it from these fields with the same rules as
``core.format.activity_line`` (a test checks the two agree).

Rows are plain JSON-ready dicts so that deltas are computed by comparing
them: a friend whose row did not change is not sent again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from presence_protocol import SeenStatus

from .api import Link
from .state import FriendView, PresenceState

Row = dict[str, Any]
Line = dict[str, Any]

SECTIONS = ("online", "away", "offline")
"""The popup's sections, in display order."""


def section_of(status: SeenStatus) -> str:
    """The popup's rule: do-not-disturb friends are online (just busy)."""
    if status is SeenStatus.OFFLINE:
        return "offline"
    if status is SeenStatus.AWAY:
        return "away"
    return "online"


def unread_count(state: PresenceState) -> int:
    """Unread messages, as the tray badge counts them.

    The one place the bridge reads it, so a reworked inbox only needs this
    function re-pointed.
    """
    return state.unread_count()


def friend_row(friend: FriendView) -> Row:
    """One friend as editors receive it (see docs/bridge.md, ``friend``)."""
    activity = friend.activity
    return {
        "id": friend.user_id,
        "login": friend.login,
        "name": friend.name,
        "avatar_url": friend.avatar_url,
        "status": friend.status.value,
        "section": section_of(friend.status),
        "activity": (
            None
            if activity is None
            else {
                "kind": activity.kind.value,
                "editor": activity.editor,
                "language": activity.language,
                "project": activity.project,
                "since": activity.since,
            }
        ),
        "last_seen": friend.last_seen,
        "until": friend.until,
        "sort": list(friend.sort_key()),
    }


def friend_rows(friends: Iterable[FriendView]) -> dict[int, Row]:
    return {f.user_id: friend_row(f) for f in friends}


def friends_line(rows: Mapping[int, Row]) -> Line:
    """The whole list, sent after ``hello`` and after a new snapshot or sign-out."""
    return {"type": "friends", "friends": sorted(rows.values(), key=_order)}


def deltas(before: Mapping[int, Row], after: Mapping[int, Row]) -> list[Line]:
    """The ``friend`` and ``friend_removed`` lines that turn ``before`` into ``after``."""
    lines: list[Line] = [
        {"type": "friend_removed", "id": uid} for uid in sorted(before.keys() - after.keys())
    ]
    for uid in sorted(after):
        row = after[uid]
        if before.get(uid) != row:
            lines.append({"type": "friend", "friend": row})
    return lines


def apply(rows: Mapping[int, Row], lines: Iterable[Line]) -> dict[int, Row]:
    """What a client holds after ``lines`` (the reference for clients, and for tests)."""
    result = dict(rows)
    for line in lines:
        if line["type"] == "friends":
            result = {row["id"]: row for row in line["friends"]}
        elif line["type"] == "friend":
            result[line["friend"]["id"]] = line["friend"]
        elif line["type"] == "friend_removed":
            result.pop(line["id"], None)
    return result


def state_line(state: PresenceState, link: Link, *, editor_sign_in: bool) -> Line:
    """My side: whether I am signed in, my status, counts, and the sign-in offer.

    ``editor_sign_in``: the desktop is signed out and its server accepts an
    editor's GitHub session, so "Sign in with VS Code's GitHub account" works.
    """
    me = state.me
    signed_in = link is not Link.SIGNED_OUT and me is not None
    return {
        "type": "state",
        "link": link.value,
        "signed_in": signed_in,
        "me": None
        if me is None or not signed_in
        else {"id": me.id, "login": me.login, "name": me.name},
        "status": state.my_status.value,
        "until": state.my_status_until,
        "unread": unread_count(state) if signed_in else 0,
        "online": state.online_count() if signed_in else 0,
        "friends": len(state.friends) if signed_in else 0,
        "editor_sign_in": editor_sign_in and not signed_in,
    }


def _order(row: Row) -> tuple[Any, ...]:
    return (*row["sort"], row["id"])
