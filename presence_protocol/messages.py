"""Every message of ``presence.v1`` as a typed msgspec struct.

Client messages and server messages are two tagged unions keyed by the
``type`` field. Fields with default values are omitted on the wire when they
hold the default, which keeps presence deltas small.
"""

from __future__ import annotations

import enum
from typing import Annotated

import msgspec

from . import limits

# ---------------------------------------------------------------- scalars

RequestId = (
    Annotated[str, msgspec.Meta(max_length=limits.MAX_REQUEST_ID_CHARS)]
    | Annotated[int, msgspec.Meta(ge=-(2**53), le=2**53)]
)
"""Beyond ±2**53 an integer does not survive a JavaScript client's JSON parser."""
UserId = Annotated[int, msgspec.Meta(ge=1, le=2**53)]
Timestamp = Annotated[int, msgspec.Meta(ge=0, le=2**40)]
"""Seconds since the Unix epoch (UTC)."""
Seq = Annotated[int, msgspec.Meta(ge=0, le=2**53)]
LABEL_FORBIDDEN = "\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069"
"""Code points an activity label may not hold (a regex class body): control
characters (NUL, newlines, tabs, C1), line and paragraph separators, and the
bidirectional marks, embeddings, overrides and isolates, which would let a
label reorder or spoof what a friend's client shows around it."""
Label = Annotated[
    str,
    msgspec.Meta(
        min_length=1, max_length=limits.MAX_LABEL_CHARS, pattern=f"^[^{LABEL_FORBIDDEN}]+$"
    ),
]
Login = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=limits.MAX_LOGIN_CHARS,
        pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9]))*$",
    ),
]
DeviceName = Annotated[str, msgspec.Meta(max_length=limits.MAX_DEVICE_CHARS)]
Token = Annotated[str, msgspec.Meta(min_length=1, max_length=limits.MAX_TOKEN_CHARS)]
MessageText = Annotated[str, msgspec.Meta(min_length=1, max_length=limits.MAX_MESSAGE_CHARS)]
ClientMsgId = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class Status(enum.StrEnum):
    """A status I can choose for myself."""

    ONLINE = "online"
    AWAY = "away"
    DND = "dnd"
    INVISIBLE = "invisible"


class SeenStatus(enum.StrEnum):
    """A status as friends see it: invisible users appear offline."""

    ONLINE = "online"
    AWAY = "away"
    DND = "dnd"
    OFFLINE = "offline"


class ActivityKind(enum.StrEnum):
    CODING = "coding"
    READING = "reading"
    DEBUGGING = "debugging"


class Relation(enum.StrEnum):
    """How another user relates to me."""

    NONE = "none"
    FRIEND = "friend"
    INCOMING = "incoming"
    """They asked to be my friend."""
    OUTGOING = "outgoing"
    """I asked to be their friend."""
    BLOCKED = "blocked"
    """I blocked them. (That they blocked me is never revealed.)"""


class Direction(enum.StrEnum):
    """Whether an exported message was sent or received by me."""

    SENT = "sent"
    RECEIVED = "received"


class LoginMethod(enum.StrEnum):
    SESSION = "session"
    DEV = "dev"
    GITHUB_CODE = "github_code"
    GITHUB_TOKEN = "github_token"
    GITHUB_EDITOR = "github_editor"
    """A GitHub token an editor (VS Code) already holds for its own OAuth app."""


# ---------------------------------------------------------------- records


class Base(msgspec.Struct, omit_defaults=True, kw_only=True, forbid_unknown_fields=False):
    """Common configuration; unknown fields are ignored for forward compatibility."""


class User(Base):
    id: UserId
    login: str
    name: str | None = None
    avatar_url: str | None = None


class Activity(Base):
    """What someone is doing, already reduced to what they chose to share."""

    kind: ActivityKind = ActivityKind.CODING
    """Absent on the wire means coding, the common case (keeps deltas small)."""
    editor: Label | None = None
    language: Label | None = None
    project: Label | None = None
    file: Label | None = None
    since: Timestamp | None = None


class Presence(Base):
    status: SeenStatus = SeenStatus.OFFLINE
    activity: Activity | None = None
    last_seen: Timestamp | None = None
    """Set for offline users: when they were last connected."""
    until: Timestamp | None = None
    """When a timed status (e.g. away for 1 hour) ends."""


class Friend(Base):
    user: User
    presence: Presence = msgspec.field(default_factory=Presence)


class SessionInfo(Base):
    id: str
    device: str
    created_at: Timestamp
    last_used_at: Timestamp
    current: bool = False


class Limits(Base, omit_defaults=False):
    max_frame_bytes: int = limits.MAX_FRAME_BYTES
    max_server_frame_bytes: int = limits.MAX_SERVER_FRAME_BYTES
    max_message_chars: int = limits.MAX_MESSAGE_CHARS
    max_label_chars: int = limits.MAX_LABEL_CHARS
    max_friends: int = limits.MAX_FRIENDS
    commands_per_minute: int = limits.COMMANDS_PER_MINUTE
    presence_updates_per_window: int = limits.PRESENCE_UPDATES_PER_WINDOW
    presence_window_seconds: float = limits.PRESENCE_WINDOW_SECONDS
    friend_requests_per_hour: int = limits.FRIEND_REQUESTS_PER_HOUR
    auth_deadline_seconds: float = limits.AUTH_DEADLINE_SECONDS


class Retention(Base, omit_defaults=False):
    """How long this server keeps what it stores (seconds); announced in ``hello``."""

    delivered_messages: int
    """A message acknowledged by its recipient is deleted this long after it was sent."""
    undelivered_messages: int
    """A message never acknowledged is deleted this long after it was sent; the
    sender is told with ``message_expired``."""
    idle_sessions: int
    """A session not used for this long stops working and is deleted."""


class ExportedRelation(Base):
    """Someone I am related to, and since when (account export)."""

    user: User
    since: Timestamp


class AccountData(Base, omit_defaults=False):
    """Everything the server keeps about me except messages (account export)."""

    user: User
    kind: str
    """``"github"`` or ``"dev"``."""
    created_at: Timestamp
    status: Status
    """The status I last chose (a new device starts with it)."""
    status_until: Timestamp | None = None
    last_seen: Timestamp | None = None
    """The one last-seen time kept (no history)."""
    acked_seq: Seq = 0
    friends: list[ExportedRelation] = msgspec.field(default_factory=list)
    incoming: list[ExportedRelation] = msgspec.field(default_factory=list)
    """Requests to me, including ones from people I blocked (never shown to me)."""
    outgoing: list[ExportedRelation] = msgspec.field(default_factory=list)
    blocked: list[ExportedRelation] = msgspec.field(default_factory=list)
    sessions: list[SessionInfo] = msgspec.field(default_factory=list)


class AccountLists(Base, omit_defaults=False):
    """The lists of an exported account record continued on a later page."""

    friends: list[ExportedRelation] = msgspec.field(default_factory=list)
    incoming: list[ExportedRelation] = msgspec.field(default_factory=list)
    outgoing: list[ExportedRelation] = msgspec.field(default_factory=list)
    blocked: list[ExportedRelation] = msgspec.field(default_factory=list)
    sessions: list[SessionInfo] = msgspec.field(default_factory=list)


class ExportedMessage(Base):
    message_id: str
    direction: Direction
    peer: UserId
    """The other person: recipient of a sent message, sender of a received one."""
    text: str
    sent_at: Timestamp
    seq: Seq
    """The recipient's sequence number."""
    delivered: bool = False
    """The recipient acknowledged it."""
    expired_at: Timestamp | None = None
    """Deleted undelivered (text already gone); kept until the sender is told."""


class GitHubConfig(Base):
    """What a client needs to start GitHub sign-in against this server."""

    client_id: str
    web_url: str = "https://github.com"
    device_flow: bool = False
    editor_tokens: bool = False
    """The server accepts ``login_github_editor``: GitHub tokens issued to other
    OAuth apps, such as the session VS Code already has (an operator choice)."""


# ---------------------------------------------------------------- client → server


class ClientMessage(Base, tag_field="type"):
    id: RequestId | None = None
    """Request id chosen by the client; the reply echoes it."""


class Auth(ClientMessage, tag="auth", kw_only=True):
    """Resume with a session token from an earlier login."""

    session: Token


class LoginDev(ClientMessage, tag="login_dev", kw_only=True):
    """Development login by username; only on servers started with --dev-login."""

    login: Login
    device: DeviceName = ""


class LoginGitHubCode(ClientMessage, tag="login_github_code", kw_only=True):
    """Browser sign-in: the code GitHub sent to the loopback redirect."""

    code: Token
    code_verifier: Token
    redirect_uri: Annotated[str, msgspec.Meta(max_length=200)]
    device: DeviceName = ""


class LoginGitHubToken(ClientMessage, tag="login_github_token", kw_only=True):
    """Device-flow sign-in: a GitHub token the client obtained itself."""

    access_token: Token
    device: DeviceName = ""


class LoginGitHubEditor(ClientMessage, tag="login_github_editor", kw_only=True):
    """Sign-in with a GitHub token an editor holds (VS Code's own GitHub session).

    The token was issued to the editor's OAuth app, not this server's, so the
    server can only ask GitHub who it belongs to; servers accept it only when
    ``hello.github.editor_tokens`` is true.
    """

    access_token: Token
    editor: Annotated[str, msgspec.Meta(max_length=limits.MAX_LABEL_CHARS)] = ""
    """Which editor handed the token over, for the server's log."""
    device: DeviceName = ""


class SetPresence(ClientMessage, tag="set_presence", kw_only=True):
    status: Status
    activity: Activity | None = None
    until: Timestamp | None = None


class FriendRequest(ClientMessage, tag="friend_request", kw_only=True):
    login: Login


class FriendAccept(ClientMessage, tag="friend_accept", kw_only=True):
    user_id: UserId


class FriendDecline(ClientMessage, tag="friend_decline", kw_only=True):
    user_id: UserId


class FriendCancel(ClientMessage, tag="friend_cancel", kw_only=True):
    user_id: UserId


class FriendRemove(ClientMessage, tag="friend_remove", kw_only=True):
    user_id: UserId


class Block(ClientMessage, tag="block", kw_only=True):
    user_id: UserId


class Unblock(ClientMessage, tag="unblock", kw_only=True):
    user_id: UserId


class SendMessage(ClientMessage, tag="send_message", kw_only=True):
    to: UserId
    text: MessageText
    client_msg_id: ClientMsgId
    """Chosen by the sender; resending the same id never creates a second message."""


MessageId = Annotated[str, msgspec.Meta(min_length=1, max_length=32)]


class MarkRead(ClientMessage, tag="mark_read", kw_only=True):
    """I have read my conversation with ``peer`` up to this message of theirs.

    The server tells my other devices (``read_marker``), so the conversation
    stops being unread everywhere, and tells ``peer`` only when ``receipt`` is
    set (``read_receipt``; off by default: read receipts are opt-in).
    """

    peer: UserId
    message_id: MessageId
    """The newest message from ``peer`` I have read."""
    sent_at: Timestamp
    """Its ``sent_at``: a device that never saw that message marks up to this time."""
    receipt: bool = False


class Typing(ClientMessage, tag="typing", kw_only=True):
    """I am writing to ``to`` (a hint, at most one per ``TYPING_EVERY_SECONDS``).

    No reply, never stored, dropped silently when ``to`` is not a friend.
    """

    to: UserId


class Ack(ClientMessage, tag="ack", kw_only=True):
    """Everything up to and including ``seq`` was received and stored."""

    seq: Seq


class ListSessions(ClientMessage, tag="list_sessions", kw_only=True):
    after: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    """``next`` of the previous ``sessions`` reply; absent for the first page."""


class RevokeSession(ClientMessage, tag="revoke_session", kw_only=True):
    session_id: Annotated[str, msgspec.Meta(max_length=64)]


class SignOut(ClientMessage, tag="sign_out", kw_only=True):
    """Revoke this session, or every session of mine with ``everywhere``."""

    everywhere: bool = False


class AckExpired(ClientMessage, tag="ack_expired", kw_only=True):
    """I have shown these ``message_expired`` notices; the server forgets them."""

    message_ids: Annotated[
        list[Annotated[str, msgspec.Meta(max_length=32)]],
        msgspec.Meta(min_length=1, max_length=100),
    ]


class ExportAccount(ClientMessage, tag="export_account", kw_only=True):
    """Ask for everything the server holds about me, one page at a time."""

    after: Annotated[str, msgspec.Meta(max_length=32)] | None = None
    """``next`` of the previous page; absent for the first page."""


class DeleteAccount(ClientMessage, tag="delete_account", kw_only=True):
    """Delete my account and everything about it on this server. Irreversible."""

    confirm_login: Login
    """My login (any case), so a stray frame cannot delete an account."""


AnyClientMessage = (
    Auth
    | LoginDev
    | LoginGitHubCode
    | LoginGitHubToken
    | LoginGitHubEditor
    | SetPresence
    | FriendRequest
    | FriendAccept
    | FriendDecline
    | FriendCancel
    | FriendRemove
    | Block
    | Unblock
    | SendMessage
    | MarkRead
    | Typing
    | Ack
    | ListSessions
    | RevokeSession
    | SignOut
    | AckExpired
    | ExportAccount
    | DeleteAccount
)
LOGIN_MESSAGES = (Auth, LoginDev, LoginGitHubCode, LoginGitHubToken, LoginGitHubEditor)


# ---------------------------------------------------------------- server → client


class ServerMessage(Base, tag_field="type"):
    pass


class Hello(ServerMessage, tag="hello", kw_only=True, omit_defaults=False):
    """First frame on every connection, before authentication."""

    protocol: str = limits.SUBPROTOCOL
    server: str = ""
    login_methods: list[LoginMethod] = msgspec.field(default_factory=list)
    github: GitHubConfig | None = None
    limits: Limits = msgspec.field(default_factory=Limits)
    retention: Retention | None = None
    """What this server keeps and for how long; absent from older servers."""


class AuthOk(ServerMessage, tag="auth_ok", kw_only=True):
    id: RequestId | None = None
    user: User
    session_id: str
    session: str | None = None
    """A new session token, only after a login (never after ``auth``)."""
    suggestions: list[User] = msgspec.field(default_factory=list)
    """Users of this server the person follows on GitHub; never auto-friends."""


class Snapshot(ServerMessage, tag="snapshot", kw_only=True, omit_defaults=False):
    """Full state after authentication; deltas follow."""

    me: User
    status: Status = Status.ONLINE
    friends: list[Friend] = msgspec.field(default_factory=list)
    incoming: list[User] = msgspec.field(default_factory=list)
    outgoing: list[User] = msgspec.field(default_factory=list)
    blocked: list[User] = msgspec.field(default_factory=list)
    acked_seq: Seq = 0
    """Highest message seq this user acknowledged (on any device)."""
    more: bool = False
    """The lists continue in ``snapshot_part`` frames that follow at once: the
    server sends a snapshot in parts when it does not fit in one frame of
    ``max_server_frame_bytes``. Apply it once a frame has ``more`` false."""


class SnapshotPart(ServerMessage, tag="snapshot_part", kw_only=True, omit_defaults=False):
    """The lists of a ``snapshot`` continued (append them to the snapshot's)."""

    friends: list[Friend] = msgspec.field(default_factory=list)
    incoming: list[User] = msgspec.field(default_factory=list)
    outgoing: list[User] = msgspec.field(default_factory=list)
    blocked: list[User] = msgspec.field(default_factory=list)
    more: bool = False
    """Another ``snapshot_part`` follows; false on the last one."""


class PresenceUpdate(ServerMessage, tag="presence", kw_only=True):
    """A friend's presence changed."""

    user_id: UserId
    status: SeenStatus = SeenStatus.OFFLINE
    activity: Activity | None = None
    last_seen: Timestamp | None = None
    until: Timestamp | None = None


class RelationUpdate(ServerMessage, tag="relation", kw_only=True):
    """Someone's relation to me changed (request, accept, remove, block…)."""

    user: User
    relation: Relation
    presence: Presence | None = None
    """Included when ``relation`` becomes ``friend``."""


class Message(ServerMessage, tag="message", kw_only=True):
    """A chat message for me; acknowledge its ``seq`` once stored."""

    seq: Seq
    message_id: str
    sender: UserId
    text: str
    sent_at: Timestamp


class Ok(ServerMessage, tag="ok", kw_only=True):
    id: RequestId | None = None


class MessageSent(ServerMessage, tag="message_sent", kw_only=True):
    """The message is stored; it will reach the friend, now or on their next login."""

    id: RequestId | None = None
    message_id: str
    client_msg_id: str
    sent_at: Timestamp


class Sessions(ServerMessage, tag="sessions", kw_only=True):
    id: RequestId | None = None
    sessions: list[SessionInfo] = msgspec.field(default_factory=list)
    next: str | None = None
    """More follows: send ``list_sessions`` with ``after`` set to this (opaque).
    A reply is cut to fit ``max_server_frame_bytes``; absent on the last page."""


class Error(ServerMessage, tag="error", kw_only=True):
    id: RequestId | None = None
    code: str
    """An ``ErrorCode`` value; clients must tolerate codes they do not know."""
    message: str = ""
    retry_after: float | None = None


class MessageExpired(ServerMessage, tag="message_expired", kw_only=True):
    """A message I sent was never acknowledged and the server deleted it.

    Sent after every login until acknowledged with ``ack_expired``, and live.
    """

    message_id: str
    client_msg_id: str
    to: UserId
    sent_at: Timestamp
    expired_at: Timestamp


class AccountExport(ServerMessage, tag="account_export", kw_only=True):
    """One page of my account export: ``account`` on the first, then messages.

    Pages are cut by encoded size, so that none exceeds ``max_server_frame_bytes``:
    an account record too long for one page continues in ``account_more``.
    """

    id: RequestId | None = None
    account: AccountData | None = None
    account_more: AccountLists | None = None
    """The first page's ``account`` lists continued: append them to its lists."""
    messages: list[ExportedMessage] = msgspec.field(default_factory=list)
    next: str | None = None
    """More follows: send ``export_account`` with ``after`` set to this (opaque)."""


class MessageCopy(ServerMessage, tag="message_copy", kw_only=True):
    """A message I sent, from any of my devices (a carbon copy).

    Sent live to every connection of the sender, the sending one included
    (match ``client_msg_id`` against your outbox and ignore it there). Not
    replayed: a device that was offline learns of it from nowhere.
    """

    message_id: str
    client_msg_id: str
    to: UserId
    text: str
    sent_at: Timestamp


class MessageDelivered(ServerMessage, tag="message_delivered", kw_only=True):
    """``to`` acknowledged these messages of mine: they reached one of its devices."""

    to: UserId
    message_ids: list[str] = msgspec.field(default_factory=list)


class ReadMarker(ServerMessage, tag="read_marker", kw_only=True):
    """One of my devices read my conversation with ``peer`` up to ``message_id``."""

    peer: UserId
    message_id: str
    sent_at: Timestamp


class ReadReceipt(ServerMessage, tag="read_receipt", kw_only=True):
    """``reader`` (who chose to send read receipts) read my messages up to ``message_id``."""

    reader: UserId
    message_id: str
    sent_at: Timestamp


class TypingHint(ServerMessage, tag="typing", kw_only=True):
    """The friend ``user_id`` is writing to me; show it for a few seconds."""

    user_id: UserId


AnyServerMessage = (
    Hello
    | AuthOk
    | Snapshot
    | SnapshotPart
    | PresenceUpdate
    | RelationUpdate
    | Message
    | Ok
    | MessageSent
    | Sessions
    | Error
    | MessageExpired
    | AccountExport
    | MessageCopy
    | MessageDelivered
    | ReadMarker
    | ReadReceipt
    | TypingHint
)


__all__ = [
    "LABEL_FORBIDDEN",
    "LOGIN_MESSAGES",
    "AccountData",
    "AccountExport",
    "AccountLists",
    "Ack",
    "AckExpired",
    "Activity",
    "ActivityKind",
    "AnyClientMessage",
    "AnyServerMessage",
    "Auth",
    "AuthOk",
    "Base",
    "Block",
    "ClientMessage",
    "ClientMsgId",
    "DeleteAccount",
    "DeviceName",
    "Direction",
    "Error",
    "ExportAccount",
    "ExportedMessage",
    "ExportedRelation",
    "Friend",
    "FriendAccept",
    "FriendCancel",
    "FriendDecline",
    "FriendRemove",
    "FriendRequest",
    "GitHubConfig",
    "Hello",
    "Label",
    "Limits",
    "ListSessions",
    "Login",
    "LoginDev",
    "LoginGitHubCode",
    "LoginGitHubEditor",
    "LoginGitHubToken",
    "LoginMethod",
    "MarkRead",
    "Message",
    "MessageCopy",
    "MessageDelivered",
    "MessageExpired",
    "MessageId",
    "MessageSent",
    "MessageText",
    "Ok",
    "Presence",
    "PresenceUpdate",
    "ReadMarker",
    "ReadReceipt",
    "Relation",
    "RelationUpdate",
    "RequestId",
    "Retention",
    "RevokeSession",
    "SeenStatus",
    "SendMessage",
    "Seq",
    "ServerMessage",
    "SessionInfo",
    "Sessions",
    "SetPresence",
    "SignOut",
    "Snapshot",
    "SnapshotPart",
    "Status",
    "Timestamp",
    "Token",
    "Typing",
    "TypingHint",
    "Unblock",
    "User",
    "UserId",
]
