"""What each client message does.

Every command gets exactly one reply (``ok``, ``message_sent``, ``sessions``
or ``error``, echoing its ``id``), except ``ack``, which is answered only
when it is invalid. Failures raise ``CommandError`` (answered by the
connection) and leave nothing changed.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from presence_protocol import (
    Ack,
    AckExpired,
    Auth,
    AuthOk,
    Block,
    ClientMessage,
    CloseCode,
    DeleteAccount,
    ErrorCode,
    ExportAccount,
    Friend,
    FriendAccept,
    FriendCancel,
    FriendDecline,
    FriendRemove,
    FriendRequest,
    ListSessions,
    LoginDev,
    LoginGitHubCode,
    LoginGitHubEditor,
    LoginGitHubToken,
    MarkRead,
    MessageExpired,
    MessageSent,
    Ok,
    RevokeSession,
    SendMessage,
    SessionInfo,
    Sessions,
    SetPresence,
    SignOut,
    Snapshot,
    Status,
    Typing,
    Unblock,
    encode,
)
from presence_protocol.paging import Budget, item_size

from ..auth import ExternalIdentity, Identity, IdentityKind, as_login_failure
from ..cluster.fanout import Event
from ..domain import friends, presence
from ..domain.friends import Outcome
from ..domain.presence import DeviceState
from ..domain.retention import MAX_NOTICES_PER_LOGIN, read_pending_notices
from ..storage.store import CommandError, UserRow, read_user
from . import account_commands, conversations, retention_commands

if TYPE_CHECKING:
    from .hub import Hub
    from .machine import Session

log = logging.getLogger(__name__)

LoginMessage = Auth | LoginDev | LoginGitHubCode | LoginGitHubToken | LoginGitHubEditor
CONNECTION_CAP_RETRY_SECONDS = 30.0


# ---------------------------------------------------------------- login


async def login(conn: Session, message: LoginMessage) -> bool:
    """Try one login message; True once the connection is authenticated."""
    hub = conn.hub
    now = hub.now()
    token: str | None = None
    suggestions: list[UserRow] = []
    if isinstance(message, Auth):
        idle_since = now - hub.config.retention.idle_sessions
        resumed = await hub.store.resume_session(message.session, now, idle_since)
        if resumed is None:
            conn.reply_error(
                ErrorCode.AUTH_FAILED, "this session is unknown or was signed out", message.id
            )
            conn.close(CloseCode.AUTH_FAILED, "sign in again")
            return False
        session_id, user = resumed
        if await _too_many_devices(conn, user, message):
            return False
    else:
        identity = await _identity(conn, message)
        if identity is None:
            return False
        user = await hub.store.upsert_identity(identity, now)
        if await _too_many_devices(conn, user, message):
            return False
        try:
            session_id, token = await hub.store.create_session(user.id, message.device, now)
            if identity.following:
                suggestions = await hub.store.github_users(identity.following)
        except BaseException:
            await conn.release_slot()
            raise
    await _start(conn, user, session_id, token, message, suggestions)
    log.info(
        "connection %s: user %s signed in",
        conn.cid,
        user.id,
        extra={
            "event": "login",
            "cid": conn.cid,
            "user": user.id,
            "method": type(message).__struct_config__.tag,
            "resumed": token is None,
            "ip": conn.ip,
        },
    )
    return True


async def _too_many_devices(conn: Session, user: UserRow, message: LoginMessage) -> bool:
    """Take a device slot, or refuse a connection beyond the per-user cap:
    error, then close 4004.

    Check and registration are one atomic step in the registry (a Redis
    script across instances), so logins at the same moment cannot all pass.
    It comes before a new session is created, so a refused login leaves
    nothing behind; the slot is the connection's from now on and is released
    with it (``Session._cleanup``).
    """
    cap = conn.hub.config.max_connections_per_user
    if await conn.take_slot(user.id):
        return False
    conn.reply_error(
        ErrorCode.RATE_LIMITED,
        f"at most {cap} devices of one account can be connected at once",
        message.id,
        retry_after=CONNECTION_CAP_RETRY_SECONDS,
    )
    conn.close(CloseCode.TRY_AGAIN_LATER, "too many connections for this account")
    return True


async def _identity(
    conn: Session, message: LoginDev | LoginGitHubCode | LoginGitHubToken | LoginGitHubEditor
) -> Identity | None:
    hub = conn.hub
    if isinstance(message, LoginDev):
        if not hub.config.dev_login:
            conn.reply_error(
                ErrorCode.LOGIN_UNAVAILABLE,
                "dev login is not enabled on this server",
                message.id,
            )
            return None
        return Identity(kind=IdentityKind.DEV, login=message.login)
    github = hub.config.github
    if github is None:
        conn.reply_error(
            ErrorCode.LOGIN_UNAVAILABLE, "GitHub sign-in is not configured here", message.id
        )
        return None
    try:
        if isinstance(message, LoginGitHubCode):
            ext = await github.exchange_code(
                message.code, message.code_verifier, message.redirect_uri
            )
        elif isinstance(message, LoginGitHubEditor):
            ext = await _editor_identity(conn, message)
        else:
            ext = await github.check_token(message.access_token)
    except Exception as exc:
        failure = as_login_failure(exc)
        if failure is None:
            raise
        conn.reply_error(failure.code, failure.message, message.id, failure.retry_after)
        return None
    return Identity.from_github(ext)


async def _editor_identity(conn: Session, message: LoginGitHubEditor) -> ExternalIdentity:
    """An editor's GitHub session (``login_github_editor``); kept apart from the
    browser and device paths so changes there and here do not collide."""
    github = conn.hub.config.github
    assert github is not None
    ext = await github.check_editor_token(message.access_token)
    log.info(
        "connection %s: GitHub session from an editor accepted",
        conn.cid,
        extra={"event": "editor_login", "cid": conn.cid, "editor": message.editor[:40]},
    )
    return ext


async def _start(
    conn: Session,
    user: UserRow,
    session_id: str,
    token: str | None,
    message: LoginMessage,
    suggestions: list[UserRow],
) -> None:
    """auth_ok, snapshot, replay, then this device counts as online."""
    hub = conn.hub
    await conn.start_session(user, session_id)
    conn.send(
        AuthOk(
            id=message.id,
            user=user.wire(),
            session_id=session_id,
            session=token,
            suggestions=[s.wire() for s in suggestions if s.id != user.id],
        )
    )
    device = conn.initial_device(user, hub.now())
    conn.device = device
    epoch = hub.friends_epoch
    view = await hub.store.run_read(lambda c: _read_view(c, user.id, user, MAX_NOTICES_PER_LOGIN))
    assert view is not None
    frame, versions = await _snapshot_frame(hub, view, device.status)
    conn.send(frame)
    conn.mark_ready(versions)
    await conn.replay()
    for notice in view.notices:
        conn.send(notice)
    hub.remember_friends(user.id, [f.id for f in view.relations.friends], epoch)
    await hub.set_device(user.id, conn.cid, device)
    conn.schedule_expiry()


@dataclasses.dataclass(frozen=True, slots=True)
class _View:
    """What a snapshot shows, read in one go (``Store.run_read``)."""

    user: UserRow
    relations: friends.Relations
    notices: list[MessageExpired]


def _read_view(
    db: sa.Connection, user_id: int, user: UserRow | None, notice_limit: int
) -> _View | None:
    if user is None:
        user = read_user(db, user_id)
        if user is None:
            return None
    rel = friends.read_relations(db, user.id)
    notices = read_pending_notices(db, user.id, notice_limit) if notice_limit else []
    return _View(user, rel, notices)


async def snapshot(
    hub: Hub, user_id: int, status: Status, user: UserRow | None = None
) -> tuple[Snapshot | None, dict[int, int]]:
    """The snapshot for a device, and the presence version it shows per friend.

    None when the user no longer exists (deleted meanwhile).
    """
    view = await hub.store.run_read(lambda c: _read_view(c, user_id, user, 0))
    if view is None:
        return None, {}
    return await _snapshot_frame(hub, view, status)


async def _snapshot_frame(hub: Hub, view: _View, status: Status) -> tuple[Snapshot, dict[int, int]]:
    """Friends' presence comes from the registry (memory, or Redis across instances)."""
    user, rel = view.user, view.relations
    seen = await hub.registry.seen(f.id for f in rel.friends)
    frame = Snapshot(
        me=user.wire(),
        status=status,
        friends=[
            Friend(user=f.wire(), presence=presence.presence(seen[f.id].seen, f.last_seen))
            for f in rel.friends
        ],
        incoming=[u.wire() for u in rel.incoming],
        outgoing=[u.wire() for u in rel.outgoing],
        blocked=[u.wire() for u in rel.blocked],
        acked_seq=user.acked_seq,
    )
    return frame, {f.id: seen[f.id].version for f in rel.friends}


# ---------------------------------------------------------------- dispatch

Handler = Callable[["Session", Any], Awaitable[None]]


async def dispatch(conn: Session, message: ClientMessage) -> None:
    handler = HANDLERS.get(type(message))
    if handler is None:
        raise CommandError(ErrorCode.ALREADY_AUTHENTICATED.value, "you are already logged in")
    await handler(conn, message)


def _me(conn: Session) -> int:
    assert conn.user is not None
    return conn.user.id


# ---------------------------------------------------------------- presence


async def set_presence(conn: Session, message: SetPresence) -> None:
    now = conn.hub.now()
    timed = message.status is not Status.ONLINE  # until is ignored for online (protocol §4)
    if timed and message.until is not None and message.until <= now:
        raise CommandError(
            ErrorCode.INVALID_MESSAGE.value, "set_presence: until must be in the future"
        )
    if conn.pace_presence(message):  # else the session applies it when the window ends
        await apply_presence(conn, message)
    conn.send(Ok(id=message.id))


async def apply_presence(conn: Session, message: SetPresence) -> None:
    hub = conn.hub
    me = _me(conn)
    until = None if message.status is Status.ONLINE else message.until
    if until is not None and until <= hub.now():
        until = None
        status = Status.ONLINE
    else:
        status = message.status
    old = conn.device
    stamp = hub.clock_ns()
    changed = status is not old.status or until != old.until
    conn.device = DeviceState(
        status=status,
        activity=message.activity,
        until=until,
        status_stamp=stamp if changed else old.status_stamp,
        activity_stamp=stamp if message.activity is not None else 0,
    )
    if changed:
        await hub.store.set_status(me, status, until)
    await hub.set_device(me, conn.cid, conn.device)
    conn.schedule_expiry()


# ---------------------------------------------------------------- friends


async def friend_request(conn: Session, message: FriendRequest) -> None:
    hub = conn.hub
    me = _me(conn)
    await hub.check_friend_request_rate(me)
    other = await friends.find_login(hub.store, message.login)
    if other is None:
        raise CommandError(
            ErrorCode.UNKNOWN_USER.value, f"nobody called {message.login!r} uses this server"
        )
    await hub.change_relation(
        me,
        other.id,
        lambda: friends.request(hub.store, me, other.id, hub.now(), hub.limits.max_friends),
    )
    conn.send(Ok(id=message.id))


RelationCommand = FriendAccept | FriendDecline | FriendCancel | FriendRemove | Block | Unblock

RELATION_CHANGES: dict[type[RelationCommand], Callable[[Hub, int, int], Awaitable[Outcome]]] = {
    FriendAccept: lambda hub, me, other: friends.accept(
        hub.store, me, other, hub.now(), hub.limits.max_friends
    ),
    FriendDecline: lambda hub, me, other: friends.decline(hub.store, me, other),
    FriendCancel: lambda hub, me, other: friends.cancel(hub.store, me, other),
    FriendRemove: lambda hub, me, other: friends.remove(hub.store, me, other),
    Block: lambda hub, me, other: friends.block(hub.store, me, other, hub.now()),
    Unblock: lambda hub, me, other: friends.unblock(hub.store, me, other),
}
"""The relation commands that name a user by id: each is one change in
``domain.friends``, applied and announced the same way (``change_relation``)."""


async def change_relation(conn: Session, message: RelationCommand) -> None:
    hub = conn.hub
    me = _me(conn)
    change = RELATION_CHANGES[type(message)]
    await hub.change_relation(me, message.user_id, lambda: change(hub, me, message.user_id))
    conn.send(Ok(id=message.id))


# ---------------------------------------------------------------- messages


async def send_message(conn: Session, message: SendMessage) -> None:
    hub = conn.hub
    me = _me(conn)
    if message.to == me:
        raise CommandError(ErrorCode.NOT_FRIENDS.value, "you can only message friends")
    row, _stored = await hub.store.store_message(
        me, message.to, message.client_msg_id, message.text, hub.now()
    )
    conn.send(
        MessageSent(
            id=message.id,
            message_id=str(row.id),
            client_msg_id=row.client_msg_id,
            sent_at=row.sent_at,
        )
    )
    # A repeated send (same client_msg_id) publishes again: the instance that
    # stored the first one may have died before publishing it, and connections
    # drop a seq they already sent, so a recipient never sees it twice.
    frame = encode(row.wire())
    await hub.fanout.publish([row.recipient_id], Event(frame=frame, seq=row.seq))
    await conversations.publish_copy(hub, row)


async def ack(conn: Session, message: Ack) -> None:
    """Acks are outside the command limit, so one that records nothing new must
    cost nothing: only what this connection was sent can be acknowledged, and
    a mark already reached needs no write (an ack flood was a write per frame)."""
    me = _me(conn)
    seq = conn.ackable(message.seq)
    if seq is None:
        return
    before = conn.acked_seq
    conn.acked(await conn.hub.store.ack(me, seq))
    await conversations.publish_delivered(conn.hub, me, before, conn.acked_seq)
    await conn.replay_after_ack()


# ---------------------------------------------------------------- sessions


SESSIONS_BATCH = 256
"""Sessions read per query while a ``sessions`` page fills (a slice, not all)."""
_SESSIONS_CURSOR = re.compile(r"(\d{1,19})\.(.{1,32})", re.DOTALL)
LONGEST_SESSIONS_NEXT = "9" * 19 + "." + "f" * 32
"""A page is sized as if its ``next`` were the longest a cursor can be."""


def sessions_cursor(created_at: int, session_id: str) -> str:
    """The ``next`` of a ``sessions`` page that ended at this session."""
    return f"{created_at}.{session_id}"


def parse_sessions_cursor(after: str | None) -> tuple[int, str] | None:
    """The key ``list_sessions.after`` names; ``CommandError`` if it is no ``next``.

    Only its shape can be checked (a session may have been revoked since the
    page that named it); a well-formed key continues after that position.
    """
    if after is None:
        return None
    match = _SESSIONS_CURSOR.fullmatch(after)
    if match is None:
        raise CommandError(
            ErrorCode.INVALID_MESSAGE.value, "list_sessions: after must be a sessions reply's next"
        )
    return int(match[1]), match[2]


async def list_sessions(conn: Session, message: ListSessions) -> None:
    """My live sessions, oldest first, as many as fit in one frame.

    A user can have any number of live sessions (one per sign-in that has not
    been revoked or expired), so the reply is cut to fit
    ``max_server_frame_bytes`` and ``next`` continues it (protocol.md §4, §8);
    every entry is bounded, so every page makes progress.
    """
    me = _me(conn)
    after = parse_sessions_cursor(message.after)
    reply = Sessions(id=message.id)
    budget = Budget(
        conn.limits.max_server_frame_bytes,
        Sessions(id=message.id, next=LONGEST_SESSIONS_NEXT),
        ["sessions"],
    )
    while True:
        rows = await conn.hub.store.list_sessions_page(me, after, SESSIONS_BATCH)
        for row in rows:
            entry = SessionInfo(
                id=row.id,
                device=row.device,
                created_at=row.created_at,
                last_used_at=row.last_used_at,
                current=row.id == conn.session_id,
            )
            if not budget.take(item_size(entry)):
                if not reply.sessions:
                    raise CommandError(
                        ErrorCode.INTERNAL_ERROR.value, "a session entry exceeds the frame limit"
                    )
                last = reply.sessions[-1]
                reply.next = sessions_cursor(last.created_at, last.id)
                conn.send(reply)
                return
            reply.sessions.append(entry)
        if len(rows) < SESSIONS_BATCH:
            conn.send(reply)
            return
        after = (rows[-1].created_at, rows[-1].id)


async def revoke_session(conn: Session, message: RevokeSession) -> None:
    hub = conn.hub
    me = _me(conn)
    revoked = await hub.store.revoke_sessions(me, [message.session_id], hub.now())
    if not revoked:
        raise CommandError(ErrorCode.UNKNOWN_SESSION.value, "you have no such session")
    conn.send(Ok(id=message.id))
    await hub.revoke(me, revoked)


async def sign_out(conn: Session, message: SignOut) -> None:
    hub = conn.hub
    me = _me(conn)
    assert conn.session_id is not None
    targets = None if message.everywhere else [conn.session_id]
    revoked = await hub.store.revoke_sessions(me, targets, hub.now())
    conn.send(Ok(id=message.id))
    await hub.revoke(me, None if message.everywhere else revoked)
    conn.close(CloseCode.SESSION_REVOKED, "signed out")


HANDLERS: dict[type[ClientMessage], Handler] = {
    SetPresence: set_presence,
    FriendRequest: friend_request,
    **dict.fromkeys(RELATION_CHANGES, change_relation),
    SendMessage: send_message,
    MarkRead: conversations.mark_read,
    Typing: conversations.typing,
    Ack: ack,
    ListSessions: list_sessions,
    RevokeSession: revoke_session,
    SignOut: sign_out,
    AckExpired: retention_commands.ack_expired,
    ExportAccount: account_commands.export_account,
    DeleteAccount: account_commands.delete_account,
}
