"""What the desktop knows about friends, requests and messages.

Fed by the net client from a snapshot and deltas; read by the ui. Pure
logic: no Qt, no I/O. Every mutation announces exactly what changed so the
ui updates one row, not the whole list.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable

from presence_protocol import (
    Activity,
    Friend,
    Message,
    PresenceUpdate,
    Relation,
    RelationUpdate,
    SeenStatus,
    Snapshot,
    Status,
    User,
)

from .events import Signal

_STATUS_RANK = {SeenStatus.ONLINE: 0, SeenStatus.DND: 1, SeenStatus.AWAY: 2, SeenStatus.OFFLINE: 3}


@dataclasses.dataclass(slots=True)
class FriendView:
    """One friend as the popup shows it."""

    user_id: int
    login: str
    name: str | None = None
    avatar_url: str | None = None
    status: SeenStatus = SeenStatus.OFFLINE
    activity: Activity | None = None
    last_seen: int | None = None
    until: int | None = None
    changed_at: float = 0.0
    """Local monotonic-free wall time of the last presence change (for sorting)."""

    @property
    def display_name(self) -> str:
        return self.name or self.login

    @property
    def online(self) -> bool:
        return self.status is not SeenStatus.OFFLINE

    def sort_key(self) -> tuple[int, float, str]:
        """Status first, then most recent activity, then name."""
        recent = -(self.activity.since or 0) if self.activity else -self.changed_at
        if self.status is SeenStatus.OFFLINE:
            recent = -(self.last_seen or 0)
        return (_STATUS_RANK[self.status], recent, self.login.lower())


@dataclasses.dataclass(frozen=True, slots=True)
class PresenceChange:
    """A friend's presence moved from ``before`` to ``after`` (for notifications)."""

    friend: FriendView
    before: SeenStatus
    after: SeenStatus
    initial: bool = False
    """Part of a snapshot (on connect), not a change witnessed live."""


MessageKey = tuple[int, int, str]
"""(sender, seq, message id): what identifies a received message on replay."""


@dataclasses.dataclass(frozen=True, slots=True)
class InboxMessage:
    message_id: str
    seq: int
    sender_id: int
    sender_login: str
    text: str
    sent_at: int
    read: bool = False


class PresenceState:
    """Friends, requests, blocked users, my identity and my inbox."""

    def __init__(self) -> None:
        self.me: User | None = None
        self.my_status: Status = Status.ONLINE
        self.my_status_until: int | None = None
        """When my timed status ends (Unix seconds); None: until I change it."""
        self.friends: dict[int, FriendView] = {}
        self.incoming: dict[int, User] = {}
        self.outgoing: dict[int, User] = {}
        self.blocked: dict[int, User] = {}
        self.inbox: list[InboxMessage] = []
        self._seen_messages: set[MessageKey] = set()

        self.reset = Signal[None]()
        """Everything may have changed (new snapshot or sign-out)."""
        self.friend_changed = Signal[int]()
        """One friend's presence or profile changed (user id)."""
        self.friend_added = Signal[int]()
        self.friend_removed = Signal[int]()
        self.presence_changed = Signal[PresenceChange]()
        """A friend's status changed; the notification rules listen here."""
        self.requests_changed = Signal[None]()
        self.relation_changed = Signal[RelationUpdate]()
        self.message_received = Signal[InboxMessage]()
        self.inbox_changed = Signal[None]()
        self.my_status_changed = Signal[Status]()
        """My own chosen status (or its end time) changed."""

    # ---------------------------------------------------------- queries

    def sorted_friends(self) -> list[FriendView]:
        return sorted(self.friends.values(), key=FriendView.sort_key)

    def online_count(self) -> int:
        return sum(1 for f in self.friends.values() if f.online)

    def unread_count(self) -> int:
        return sum(1 for m in self.inbox if not m.read)

    def login_of(self, user_id: int) -> str:
        for table in (self.friends, self.incoming, self.outgoing, self.blocked):
            entry = table.get(user_id)
            if entry is not None:
                return entry.login
        return f"user {user_id}"

    # ---------------------------------------------------------- mutations

    def clear(self) -> None:
        """Forget everything (sign-out)."""
        self.me = None
        self.friends.clear()
        self.incoming.clear()
        self.outgoing.clear()
        self.blocked.clear()
        self.inbox.clear()
        self._seen_messages.clear()
        self.reset.emit(None)
        self.requests_changed.emit(None)
        self.inbox_changed.emit(None)

    def set_my_status(self, status: Status, until: int | None = None) -> None:
        """Record the status I chose (the client sends it; this is for display)."""
        if (status, until) == (self.my_status, self.my_status_until):
            return
        self.my_status = status
        self.my_status_until = until
        self.my_status_changed.emit(status)

    def load_inbox(self, messages: Iterable[InboxMessage]) -> None:
        """Restore the cached inbox at start-up, without announcing new messages.

        Their ids count as seen, so a replay from the server is not shown twice.
        """
        self.inbox = list(messages)
        self._seen_messages = {(m.sender_id, m.seq, m.message_id) for m in self.inbox}
        self.inbox_changed.emit(None)

    def apply_snapshot(self, snap: Snapshot) -> None:
        """Replace the state with a fresh snapshot, announcing status changes.

        ``my_status`` is left alone: the desktop's own choice wins and is sent
        to the server right after the snapshot.
        """
        before = {uid: f.status for uid, f in self.friends.items()}
        self.me = snap.me
        self.friends = {f.user.id: _view(f) for f in snap.friends}
        self.incoming = {u.id: u for u in snap.incoming}
        self.outgoing = {u.id: u for u in snap.outgoing}
        self.blocked = {u.id: u for u in snap.blocked}
        self.reset.emit(None)
        self.requests_changed.emit(None)
        for uid, friend in self.friends.items():
            old = before.get(uid, SeenStatus.OFFLINE)
            if old is not friend.status:
                self.presence_changed.emit(PresenceChange(friend, old, friend.status, initial=True))

    def apply_presence(self, update: PresenceUpdate) -> None:
        friend = self.friends.get(update.user_id)
        if friend is None:
            return  # not (or no longer) a friend: nothing to show
        old = friend.status
        friend.status = update.status
        friend.activity = update.activity
        friend.last_seen = update.last_seen
        friend.until = update.until
        friend.changed_at = time.time()
        self.friend_changed.emit(friend.user_id)
        if old is not friend.status:
            self.presence_changed.emit(PresenceChange(friend, old, friend.status))

    def apply_relation(self, update: RelationUpdate) -> None:
        user = update.user
        was_friend = user.id in self.friends
        for table in (self.incoming, self.outgoing, self.blocked):
            table.pop(user.id, None)
        if update.relation is Relation.FRIEND:
            view = _view(Friend(user=user, presence=update.presence or Friend(user=user).presence))
            existing = self.friends.get(user.id)
            self.friends[user.id] = view
            if existing is None:
                self.friend_added.emit(user.id)
            else:
                self.friend_changed.emit(user.id)
        else:
            if was_friend:
                del self.friends[user.id]
                self.friend_removed.emit(user.id)
            if update.relation is Relation.INCOMING:
                self.incoming[user.id] = user
            elif update.relation is Relation.OUTGOING:
                self.outgoing[user.id] = user
            elif update.relation is Relation.BLOCKED:
                self.blocked[user.id] = user
        self.requests_changed.emit(None)
        self.relation_changed.emit(update)

    def add_message(self, msg: Message) -> InboxMessage | None:
        """Store a received message; returns None for a replay of one already stored.

        A replay is recognised by sender, seq and id together: the server
        never gives one seq of mine to two messages, so a different message
        cannot match even on a server that reused a message id (older
        versions did after a deletion). A wrong match would be worse than a
        repeat: the message would be acknowledged and never shown.
        """
        key = (msg.sender, msg.seq, msg.message_id)
        if key in self._seen_messages:
            return None
        self._seen_messages.add(key)
        item = InboxMessage(
            message_id=msg.message_id,
            seq=msg.seq,
            sender_id=msg.sender,
            sender_login=self.login_of(msg.sender),
            text=msg.text,
            sent_at=msg.sent_at,
        )
        self.inbox.append(item)
        self.message_received.emit(item)
        self.inbox_changed.emit(None)
        return item

    def mark_read(self, message_ids: Iterable[str] | None = None) -> None:
        wanted = None if message_ids is None else set(message_ids)
        self.inbox = [
            dataclasses.replace(m, read=True) if wanted is None or m.message_id in wanted else m
            for m in self.inbox
        ]
        self.inbox_changed.emit(None)


def _view(friend: Friend) -> FriendView:
    p = friend.presence
    return FriendView(
        user_id=friend.user.id,
        login=friend.user.login,
        name=friend.user.name,
        avatar_url=friend.user.avatar_url,
        status=p.status,
        activity=p.activity,
        last_seen=p.last_seen,
        until=p.until,
        changed_at=time.time(),
    )
