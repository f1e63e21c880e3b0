"""A recording stand-in for the controller, so ui tests need no network."""

from __future__ import annotations

import time
from typing import Any

from presence_desktop.core.api import Alert, ConnectionEvents, ConnectionInfo, Link, UserError
from presence_desktop.core.events import Signal
from presence_desktop.core.state import PresenceState
from presence_protocol import (
    Activity,
    Friend,
    Message,
    Presence,
    PresenceUpdate,
    SeenStatus,
    Snapshot,
    Status,
    User,
)


class FakeActions:
    """Implements AppActions by recording every call (and a little bookkeeping)."""

    def __init__(self, state: PresenceState | None = None) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.errors = Signal[UserError]()
        self.muted: set[int] = set()
        self.starred: set[int] = set()
        self.state = state

    def _record(self, name: str, *args: Any) -> None:
        self.calls.append((name, args))

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def set_status(self, status: Status, until: int | None) -> None:
        self._record("set_status", status, until)
        if self.state is not None:
            self.state.set_my_status(status, until)

    def add_friend(self, login: str) -> None:
        self._record("add_friend", login)

    def accept_friend(self, user_id: int) -> None:
        self._record("accept_friend", user_id)

    def decline_friend(self, user_id: int) -> None:
        self._record("decline_friend", user_id)

    def cancel_request(self, user_id: int) -> None:
        self._record("cancel_request", user_id)

    def remove_friend(self, user_id: int) -> None:
        self._record("remove_friend", user_id)

    def block(self, user_id: int) -> None:
        self._record("block", user_id)

    def unblock(self, user_id: int) -> None:
        self._record("unblock", user_id)

    def send_message(self, user_id: int, text: str) -> None:
        self._record("send_message", user_id, text)

    def mark_read(self) -> None:
        self._record("mark_read")
        if self.state is not None:
            self.state.mark_read()

    def set_muted(self, user_id: int, muted: bool) -> None:
        self._record("set_muted", user_id, muted)
        (self.muted.add if muted else self.muted.discard)(user_id)

    def set_starred(self, user_id: int, starred: bool) -> None:
        self._record("set_starred", user_id, starred)
        (self.starred.add if starred else self.starred.discard)(user_id)

    def is_muted(self, user_id: int) -> bool:
        return user_id in self.muted

    def is_starred(self, user_id: int) -> bool:
        return user_id in self.starred

    def sign_in(self) -> None:
        self._record("sign_in")

    def sign_out(self) -> None:
        self._record("sign_out")

    def reconnect_now(self) -> None:
        self._record("reconnect_now")

    def quit(self) -> None:
        self._record("quit")


class FakeCore:
    def __init__(self) -> None:
        self.state = PresenceState()
        self.connection = ConnectionEvents()
        self.alerts = Signal[Alert]()
        self.actions = FakeActions(self.state)

    def go_online(self) -> None:
        self.connection.set(ConnectionInfo(Link.ONLINE))


NOW = 1_760_000_000


def friend(
    uid: int,
    login: str,
    status: SeenStatus = SeenStatus.ONLINE,
    *,
    name: str | None = None,
    language: str | None = None,
    project: str | None = None,
    since: int | None = None,
    last_seen: int | None = None,
) -> Friend:
    activity = None
    if language or project:
        activity = Activity(language=language, project=project, since=since or NOW - 600)
    return Friend(
        user=User(id=uid, login=login, name=name),
        presence=Presence(status=status, activity=activity, last_seen=last_seen),
    )


def snapshot(
    *friends: Friend, incoming: tuple[User, ...] = (), outgoing: tuple[User, ...] = ()
) -> Snapshot:
    return Snapshot(
        me=User(id=1, login="me", name="Demo Me"),
        friends=list(friends),
        incoming=list(incoming),
        outgoing=list(outgoing),
    )


def presence(uid: int, status: SeenStatus, **kw: Any) -> PresenceUpdate:
    return PresenceUpdate(user_id=uid, status=status, **kw)


def message(seq: int, sender: int, text: str) -> Message:
    return Message(
        seq=seq, message_id=f"m{seq}", sender=sender, text=text, sent_at=int(time.time())
    )
