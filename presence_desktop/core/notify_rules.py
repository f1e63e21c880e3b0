"""Which desktop notifications to show, and when — decided without any I/O.

The rules see every presence change, friend request and message, and answer
with alerts to show later: events of one kind within a short window coalesce
into one alert ("alice and 3 others are online"), so a burst after a server
restart or a message replay is a single notification. The owner asks
``next_flush()`` for the one moment it must call ``flush()`` and schedules a
single timer for it (``loop.call_at``); nothing polls.

Policy (see also ``docs/decisions.md``):

- A friend is announced when they become Online after being Offline. Coming
  back after less than ``flap_minutes`` offline is a reconnect, not news. A
  friend who appears Away or in Do not disturb is announced when they turn
  Online, unless we already announced them.
- Presence from the snapshot right after I connect is never announced; only
  changes witnessed live are.
- Nothing shows while my own status is Do not disturb (alerts suppressed then
  are dropped, not delayed), while notifications are off, or for a muted
  friend.
- ``online_alerts``: ``all`` (default) announces every friend who is not
  muted; ``starred`` only starred ones; ``off`` none. Starred friends are
  named first in coalesced alerts.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping

from presence_protocol import Relation, RelationUpdate, SeenStatus, Status, User

from .api import Alert, AlertKind
from .format import activity_summary
from .settings import OnlineAlerts, Settings
from .state import FriendView, InboxMessage, PresenceChange, PresenceState

COALESCE_SECONDS: Mapping[AlertKind, float] = {
    AlertKind.FRIEND_ONLINE: 3.0,
    AlertKind.FRIEND_REQUEST: 1.0,
    AlertKind.MESSAGE: 1.0,
}
"""How long the first event of a kind waits for others to join its alert."""

MAX_BODY_NAMES = 3
"""Friends listed by name in a coalesced alert's body."""

MAX_MESSAGE_PREVIEW = 200


@dataclasses.dataclass(slots=True)
class _Track:
    announced: bool
    """Already announced (or deliberately not) since they last went offline."""
    offline_since: float | None = None
    """Wall time they went offline, when known."""


@dataclasses.dataclass(slots=True)
class _Bucket:
    deadline: float
    online: list[FriendView] = dataclasses.field(default_factory=list)
    requests: list[User] = dataclasses.field(default_factory=list)
    messages: list[InboxMessage] = dataclasses.field(default_factory=list)


class NotifyRules:
    def __init__(
        self,
        settings: Settings | None = None,
        *,
        clock: Callable[[], float] = time.time,
        windows: Mapping[AlertKind, float] = COALESCE_SECONDS,
    ) -> None:
        self.settings = settings or Settings()
        self.my_status = Status.ONLINE
        self._clock = clock
        self._windows = windows
        self._tracks: dict[int, _Track] = {}
        self._buckets: dict[AlertKind, _Bucket] = {}
        self.is_focused: Callable[[int], bool] = lambda _user_id: False
        """Whether this friend's conversation is open and focused: their messages
        are read as they arrive, so a notification would only interrupt (issue 17)."""

    # ---------------------------------------------------------- inputs

    def set_settings(self, settings: Settings) -> None:
        self.settings = settings

    def set_my_status(self, status: Status) -> None:
        self.my_status = status

    def on_snapshot(self, friends: Iterable[FriendView]) -> float | None:
        """Take the friends of a fresh snapshot as known, without announcing them."""
        tracks: dict[int, _Track] = {}
        now = self._clock()
        for friend in friends:
            if friend.status is SeenStatus.OFFLINE:
                old = self._tracks.get(friend.user_id)
                since: float | None
                if old is None:
                    since = friend.last_seen
                elif old.offline_since is None:
                    # Present when we last knew; without a server time, they just left.
                    since = friend.last_seen if friend.last_seen is not None else now
                else:
                    since = old.offline_since
                tracks[friend.user_id] = _Track(announced=False, offline_since=since)
            else:
                tracks[friend.user_id] = _Track(announced=True)
        self._tracks = tracks
        return self.next_flush()

    def on_friend_added(self, friend: FriendView) -> float | None:
        """A new friendship is not an "online" event, whatever their status."""
        self._tracks[friend.user_id] = _Track(
            announced=friend.status is not SeenStatus.OFFLINE, offline_since=friend.last_seen
        )
        return self.next_flush()

    def on_presence(self, change: PresenceChange) -> float | None:
        if change.initial:
            return self.next_flush()  # on_snapshot already took these in
        friend = change.friend
        now = self._clock()
        track = self._tracks.setdefault(friend.user_id, _Track(announced=False))
        if change.after is SeenStatus.OFFLINE:
            track.offline_since = now
            return self.next_flush()
        if change.before is SeenStatus.OFFLINE:
            gone = None if track.offline_since is None else now - track.offline_since
            flapping = gone is not None and gone < self.settings.flap_minutes * 60
            track.announced = flapping
            track.offline_since = None
        if change.after is SeenStatus.ONLINE and not track.announced:
            track.announced = True  # decided now, shown or not: never later
            if self._wants_online(friend.user_id):
                self._bucket(AlertKind.FRIEND_ONLINE, now).online.append(friend)
        return self.next_flush()

    def on_friend_request(self, user: User) -> float | None:
        if self._active() and self.settings.notify_on_requests and not self._muted(user.id):
            bucket = self._bucket(AlertKind.FRIEND_REQUEST, self._clock())
            if all(u.id != user.id for u in bucket.requests):
                bucket.requests.append(user)
        return self.next_flush()

    def on_message(self, message: InboxMessage) -> float | None:
        if (
            not self.is_focused(message.sender_id)
            and self._active()
            and self.settings.notify_on_messages
            and not self._muted(message.sender_id)
        ):
            self._bucket(AlertKind.MESSAGE, self._clock()).messages.append(message)
        return self.next_flush()

    def clear(self) -> None:
        """Forget pending alerts and what was announced (sign-out)."""
        self._buckets.clear()
        self._tracks.clear()

    # ---------------------------------------------------------- outputs

    def next_flush(self) -> float | None:
        """Wall time of the next ``flush`` that will produce something, if any."""
        if not self._buckets:
            return None
        return min(b.deadline for b in self._buckets.values())

    def flush(self) -> list[Alert]:
        """The alerts due now; pending ones that became moot are dropped."""
        now = self._clock()
        due = [kind for kind, b in self._buckets.items() if b.deadline <= now]
        buckets = [self._buckets.pop(kind) for kind in due]
        if not self._active():
            return []
        alerts: list[Alert] = []
        for bucket in buckets:
            alert = (
                self._online_alert(bucket.online)
                or self._request_alert(bucket.requests)
                or self._message_alert(bucket.messages)
            )
            if alert is not None:
                alerts.append(alert)
        return alerts

    # ---------------------------------------------------------- helpers

    def _bucket(self, kind: AlertKind, now: float) -> _Bucket:
        bucket = self._buckets.get(kind)
        if bucket is None:
            bucket = self._buckets[kind] = _Bucket(deadline=now + self._windows[kind])
        return bucket

    def _active(self) -> bool:
        return self.settings.notifications and self.my_status is not Status.DND

    def _muted(self, user_id: int) -> bool:
        return user_id in self.settings.muted

    def _wants_online(self, user_id: int) -> bool:
        mode = self.settings.online_alerts
        if not self._active() or mode is OnlineAlerts.OFF or self._muted(user_id):
            return False
        return mode is OnlineAlerts.ALL or user_id in self.settings.starred

    def _online_alert(self, friends: list[FriendView]) -> Alert | None:
        # Re-check: mute or settings may have changed, friends may have left again.
        unique = {f.user_id: f for f in friends}
        present = [
            f
            for f in unique.values()
            if f.status is not SeenStatus.OFFLINE and self._wants_online(f.user_id)
        ]
        if not present:
            return None
        starred = self.settings.starred
        ordered = [f for f in present if f.user_id in starred]
        ordered += [f for f in present if f.user_id not in starred]
        first = ordered[0].display_name
        if len(ordered) == 1:
            title = f"{first} is online"
            body = activity_summary(ordered[0].activity)
        else:
            others = len(ordered) - 1
            title = (
                f"{first} and {ordered[1].display_name} are online"
                if others == 1
                else f"{first} and {others} others are online"
            )
            lines = [_friend_line(f) for f in ordered[:MAX_BODY_NAMES]]
            if len(ordered) > MAX_BODY_NAMES:
                lines.append(f"and {len(ordered) - MAX_BODY_NAMES} more")
            body = "\n".join(lines)
        return Alert(AlertKind.FRIEND_ONLINE, title, body, tuple(f.user_id for f in ordered))

    def _request_alert(self, users: list[User]) -> Alert | None:
        users = [u for u in users if not self._muted(u.id)]
        if not self.settings.notify_on_requests or not users:
            return None
        ids = tuple(u.id for u in users)
        if len(users) == 1:
            return Alert(
                AlertKind.FRIEND_REQUEST,
                f"{_user_name(users[0])} wants to be your friend",
                "Accept or decline in the friends list.",
                ids,
            )
        return Alert(
            AlertKind.FRIEND_REQUEST,
            f"{len(users)} friend requests",
            f"From {_names([_user_name(u) for u in users])}.",
            ids,
        )

    def _message_alert(self, messages: list[InboxMessage]) -> Alert | None:
        # Re-check focus: the conversation may have been opened while this waited.
        messages = [
            m for m in messages if not self._muted(m.sender_id) and not self.is_focused(m.sender_id)
        ]
        if not self.settings.notify_on_messages or not messages:
            return None
        senders: dict[int, str] = {}
        for m in messages:
            senders.setdefault(m.sender_id, m.sender_login)
        last = messages[-1]
        preview = _preview(last.text)
        if len(senders) == 1:
            name = last.sender_login
            title = (
                f"Message from {name}"
                if len(messages) == 1
                else (f"{len(messages)} messages from {name}")
            )
            return Alert(AlertKind.MESSAGE, title, preview, tuple(senders))
        return Alert(
            AlertKind.MESSAGE,
            f"{len(messages)} new messages",
            f"From {_names(list(senders.values()))}.",
            tuple(senders),
        )


def _friend_line(friend: FriendView) -> str:
    summary = activity_summary(friend.activity)
    return f"{friend.display_name} — {summary}" if summary else friend.display_name


def _user_name(user: User) -> str:
    return user.name or user.login


def _names(names: list[str]) -> str:
    """ "a", "a and b", "a, b and c", "a, b, c and 2 others"."""
    if len(names) > MAX_BODY_NAMES + 1:
        shown = names[:MAX_BODY_NAMES]
        return f"{', '.join(shown)} and {len(names) - MAX_BODY_NAMES} others"
    if len(names) == 1:
        return names[0]
    return f"{', '.join(names[:-1])} and {names[-1]}"


def _preview(text: str) -> str:
    text = " ".join(text.split())
    if len(text) <= MAX_MESSAGE_PREVIEW:
        return text
    return text[: MAX_MESSAGE_PREVIEW - 1].rstrip() + "…"


def watch_state(
    rules: NotifyRules, state: PresenceState, schedule: Callable[[float | None], object]
) -> None:
    """Feed ``rules`` from ``state``'s signals; ``schedule`` gets each new flush time.

    The snapshot's friends are taken in on ``reset``, which the state emits
    before the snapshot's own ``presence_changed`` events.
    """

    def on_reset(_: None) -> None:
        schedule(rules.on_snapshot(state.friends.values()))

    def on_relation(update: RelationUpdate) -> None:
        if update.relation is Relation.INCOMING:
            schedule(rules.on_friend_request(update.user))
        elif update.relation is Relation.FRIEND and update.user.id in state.friends:
            schedule(rules.on_friend_added(state.friends[update.user.id]))

    state.reset.connect(on_reset)
    state.presence_changed.connect(lambda change: schedule(rules.on_presence(change)))
    state.relation_changed.connect(on_relation)
    state.message_received.connect(lambda message: schedule(rules.on_message(message)))
    state.my_status_changed.connect(rules.set_my_status)
