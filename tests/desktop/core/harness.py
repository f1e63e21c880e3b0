"""PresenceState + NotifyRules wired like the controller does, on a fake clock."""

from __future__ import annotations

from presence_desktop.core.api import Alert
from presence_desktop.core.notify_rules import NotifyRules, watch_state
from presence_desktop.core.settings import Settings
from presence_desktop.core.state import PresenceState
from presence_protocol import (
    Activity,
    Friend,
    Message,
    Presence,
    PresenceUpdate,
    Relation,
    RelationUpdate,
    SeenStatus,
    Snapshot,
    User,
)
from tests.support.clock import FakeClock, FakeTimer

ME = User(id=1, login="me")


def user(uid: int) -> User:
    return User(id=uid, login=NAMES[uid])


NAMES = {2: "alice", 3: "bob", 4: "carol", 5: "dave", 6: "erin", 7: "frank", 8: "zoe"}
ID = {v: k for k, v in NAMES.items()}


class Harness:
    def __init__(self, settings: Settings | None = None) -> None:
        self.loop = FakeClock()
        self.state = PresenceState()
        self.rules = NotifyRules(settings, clock=self.loop)
        self.alerts: list[Alert] = []
        self.timer: FakeTimer | None = None
        self.timers_armed = 0
        watch_state(self.rules, self.state, self._schedule)

    def _schedule(self, deadline: float | None) -> None:
        # One timer for the earliest flush, exactly like the controller.
        if deadline is None or (
            self.timer and not self.timer.cancelled and self.timer.when == deadline
        ):
            return
        if self.timer is not None:
            self.timer.cancel()
        self.timers_armed += 1
        self.timer = self.loop.call_later(max(0.0, deadline - self.loop.now), self._flush)

    def _flush(self) -> None:
        self.timer = None
        self.alerts += self.rules.flush()
        self._schedule(self.rules.next_flush())

    # ------------------------------------------------------------ inputs

    def snapshot(self, **friends: SeenStatus | tuple[SeenStatus, int]) -> None:
        entries = []
        for login, spec in friends.items():
            status, ago = spec if isinstance(spec, tuple) else (spec, None)
            last_seen = None if ago is None else int(self.loop.now) - ago
            entries.append(
                Friend(user=user(ID[login]), presence=Presence(status=status, last_seen=last_seen))
            )
        self.state.apply_snapshot(Snapshot(me=ME, friends=entries, incoming=[]))

    def presence(self, login: str, status: SeenStatus, activity: Activity | None = None) -> None:
        self.state.apply_presence(
            PresenceUpdate(
                user_id=ID[login],
                status=status,
                activity=activity,
                last_seen=int(self.loop.now) if status is SeenStatus.OFFLINE else None,
            )
        )

    def online(self, *logins: str) -> None:
        for login in logins:
            self.presence(login, SeenStatus.ONLINE)

    def offline(self, *logins: str) -> None:
        for login in logins:
            self.presence(login, SeenStatus.OFFLINE)

    def request_from(self, login: str) -> None:
        self.state.apply_relation(RelationUpdate(user=user(ID[login]), relation=Relation.INCOMING))

    def message(self, login: str, text: str, seq: int, message_id: str | None = None) -> None:
        self.state.add_message(
            Message(
                seq=seq,
                message_id=message_id or f"m{seq}",
                sender=ID[login],
                text=text,
                sent_at=int(self.loop.now),
            )
        )

    def titles(self) -> list[str]:
        return [a.title for a in self.alerts]
