"""The seam between the ui and everything else.

The ui holds a ``PresenceState`` (read-only, for display), a
``ConnectionInfo`` signal source and an object implementing ``AppActions``.
It never talks to the network or the disk itself.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import TYPE_CHECKING, Protocol

from presence_protocol import Status

from .events import Signal

if TYPE_CHECKING:
    from .conversations import Conversations


class Link(enum.Enum):
    """Where the connection to the server stands."""

    SIGNED_OUT = "signed_out"
    CONNECTING = "connecting"
    ONLINE = "online"
    RECONNECTING = "reconnecting"
    OFFLINE = "offline"
    """Stopped for good until the user acts (terminal close code)."""


@dataclasses.dataclass(frozen=True, slots=True)
class ConnectionInfo:
    link: Link
    retry_at: float | None = None
    """``time.monotonic()`` of the next attempt while RECONNECTING."""
    title: str = ""
    message: str = ""
    """For OFFLINE: what happened and what the user can do about it."""
    close_code: int | None = None
    """The server's terminal close code (4500–4999) that ended the connection, if any."""


class ConnectionEvents:
    def __init__(self) -> None:
        self.current = ConnectionInfo(Link.SIGNED_OUT)
        self.changed = Signal[ConnectionInfo]()

    def set(self, info: ConnectionInfo) -> None:
        self.current = info
        self.changed.emit(info)


@dataclasses.dataclass(frozen=True, slots=True)
class UserError:
    """A failure the user should see: a title and what to do."""

    title: str
    message: str
    code: str = ""


class UserErrorRaised(Exception):
    """An exception carrying a ``UserError``: ``error`` says why and what to do."""

    def __init__(self, error: UserError) -> None:
        super().__init__(error.message)
        self.error = error

    @property
    def title(self) -> str:
        return self.error.title

    @property
    def message(self) -> str:
        return self.error.message


class AppActions(Protocol):
    """Everything the ui can ask for. Methods return at once; results arrive
    as state changes or through ``errors``.

    ``until`` is a Unix timestamp for timed statuses, or None for "until I
    change it".
    """

    errors: Signal[UserError]

    def set_status(self, status: Status, until: int | None) -> None: ...
    def add_friend(self, login: str) -> None: ...
    def accept_friend(self, user_id: int) -> None: ...
    def decline_friend(self, user_id: int) -> None: ...
    def cancel_request(self, user_id: int) -> None: ...
    def remove_friend(self, user_id: int) -> None: ...
    def block(self, user_id: int) -> None: ...
    def unblock(self, user_id: int) -> None: ...
    def send_message(self, user_id: int, text: str) -> None: ...
    def mark_read(self) -> None: ...
    def set_muted(self, user_id: int, muted: bool) -> None: ...
    def set_starred(self, user_id: int, starred: bool) -> None: ...
    def is_muted(self, user_id: int) -> bool: ...
    def is_starred(self, user_id: int) -> bool: ...
    def sign_in(self) -> None: ...
    def sign_out(self) -> None: ...
    def reconnect_now(self) -> None:
        """Skip the rest of the wait before the next reconnect (or retry after a stop)."""
        ...

    def quit(self) -> None: ...


class ConversationActions(Protocol):
    """What the conversation view and list ask for (issue 17); the controller
    implements it next to ``AppActions``. Results arrive on ``conversations``."""

    errors: Signal[UserError]

    @property
    def conversations(self) -> Conversations: ...

    def send_message(self, user_id: int, text: str) -> None: ...
    def open_conversation(self, user_id: int, *, focused: bool = True) -> None: ...
    def leave_conversation(self, user_id: int | None = None) -> None: ...
    def retry_message(self, client_msg_id: str) -> None: ...
    def clear_history(self) -> None: ...
    def composing(self, user_id: int) -> None: ...


class AlertKind(enum.Enum):
    FRIEND_ONLINE = "friend_online"
    FRIEND_REQUEST = "friend_request"
    MESSAGE = "message"


@dataclasses.dataclass(frozen=True, slots=True)
class Alert:
    """A desktop notification decided by the core rules; the ui only shows it."""

    kind: AlertKind
    title: str
    body: str = ""
    user_ids: tuple[int, ...] = ()
    """Who it is about, first the one named in the title."""
