"""The connection to the presence server: sign in, stay in sync, deliver commands.

One task owns the connection. It connects, reads ``hello``, signs in with the
stored session (or a development login), applies the snapshot and every delta
to ``PresenceState``, and when the connection drops it waits a backoff delay
and starts over — forever, unless the server closes with a terminal code
(4500–4999), which needs the person to act.

Nothing polls: the task awaits frames, a second task awaits "something to
send", and the backoff wait is an ``Event`` with a timeout so "reconnect now"
ends it at once.

Friend actions and chat messages go through an outbox: each entry keeps its
request id until the reply arrives. Entries queue while offline and go out
in order on every new connection, one at a time: the next is sent when the
previous one is answered, so a message refused for a moment (rate limit,
server error) and retried can never be overtaken by a later one that the
server accepted. A resend after a drop is harmless —
messages carry a ``client_msg_id`` the server deduplicates, and a friend action
whose resend is answered with "already done" counts as done.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.typing import Subprotocol

from presence_desktop import __version__
from presence_desktop.core.addresses import is_loopback_url
from presence_desktop.core.api import ConnectionEvents, ConnectionInfo, Link, UserError
from presence_desktop.core.backoff import STABLE_AFTER, backoff_delays
from presence_desktop.core.credentials import Credentials
from presence_desktop.core.events import Signal
from presence_desktop.core.state import PresenceState
from presence_desktop.net.keepalive import QuietPingConnection
from presence_protocol import (
    Ack,
    AckExpired,
    AnyServerMessage,
    Auth,
    AuthOk,
    Block,
    ClientMessage,
    CloseCode,
    Error,
    ErrorCode,
    FriendAccept,
    FriendCancel,
    FriendDecline,
    FriendRemove,
    FriendRequest,
    Hello,
    ListSessions,
    LoginDev,
    LoginGitHubCode,
    LoginGitHubEditor,
    LoginGitHubToken,
    MarkRead,
    Message,
    MessageCopy,
    MessageDelivered,
    MessageExpired,
    MessageSent,
    Ok,
    PresenceUpdate,
    ProtocolError,
    ReadMarker,
    ReadReceipt,
    RelationUpdate,
    SendMessage,
    SessionInfo,
    Sessions,
    SetPresence,
    SignOut,
    Snapshot,
    SnapshotPart,
    Typing,
    TypingHint,
    Unblock,
    close_code_is_terminal,
    decode_client,
    decode_server,
    encode_text,
    limits,
)
from presence_protocol.paging import SnapshotAssembler

log = logging.getLogger(__name__)

# Issue 4: websockets logs frames at DEBUG, shortened but still holding most of a
# session token. Its connection logger is pinned at INFO so a debug run leaks none.
WIRE_LOG = logging.getLogger("presence_desktop.net.wire")
WIRE_LOG.setLevel(logging.INFO)

MAX_INCOMING_FRAME = limits.MAX_SERVER_FRAME_BYTES
"""A snapshot with a thousand friends (about 200 KB) is far larger than a command frame."""

HANDSHAKE_TIMEOUT = 15.0
"""Seconds for hello, login reply and snapshot after the socket opened."""

KEEPALIVE_SECONDS = 10.0
"""Seconds of silence from the server before a ping (``net/keepalive.py``: any
bytes received count, the server's own pings included). With
``KEEPALIVE_TIMEOUT`` a dead or frozen server (or a dropped NAT mapping) is
noticed within 15 s, so the popup stops showing friends as online long before
anyone would act on it. Traffic every 10 s also keeps proxies with a 60 s idle
timeout open (docs/performance.md, desktop_idle)."""

KEEPALIVE_TIMEOUT = 5.0
"""Seconds to wait for the pong. A loaded server answers pings from its event
loop in milliseconds; 5 s leaves room for a slow mobile link."""

UNREACHABLE = "Can't reach server"
"""Header title while retrying after an attempt that never got online."""
CONNECTION_LOST = "Connection lost"
"""Header title while retrying after an established connection dropped."""

SIGN_OUT_TIMEOUT = 5.0

AUTO_RETRY_LIMIT = 60.0
"""A rate limit up to this long is waited out silently; longer ones are shown."""

INTERNAL_ERROR_RETRIES = 5

CALL_TIMEOUT = 30.0
"""Seconds ``call`` waits for a reply (an export page of a large account)."""

_SAME_AS_DONE: dict[type[ClientMessage], frozenset[str]] = {
    FriendRequest: frozenset({ErrorCode.REQUEST_EXISTS, ErrorCode.ALREADY_FRIENDS}),
    FriendAccept: frozenset({ErrorCode.ALREADY_FRIENDS}),
    FriendDecline: frozenset({ErrorCode.NO_REQUEST}),
    FriendCancel: frozenset({ErrorCode.NO_REQUEST}),
    FriendRemove: frozenset({ErrorCode.NOT_FRIENDS}),
}
"""Errors that, for a command sent again after a drop, mean the first try worked."""

_TERMINAL_TEXT: dict[int, tuple[str, str]] = {
    CloseCode.AUTH_FAILED: ("Signed out", "Your session is no longer valid. Sign in again."),
    CloseCode.UNSUPPORTED_PROTOCOL: (
        "Update needed",
        "This server speaks a protocol version this app does not know. Update presence-desktop.",
    ),
    CloseCode.SESSION_REVOKED: (
        "Signed out",
        "This device was signed out, perhaps from another device. Sign in again to reconnect.",
    ),
    CloseCode.ACCOUNT_DELETED: ("Account deleted", "Your account no longer exists on this server."),
}
_FORGET_TOKEN: set[int] = {
    CloseCode.AUTH_FAILED,
    CloseCode.SESSION_REVOKED,
    CloseCode.ACCOUNT_DELETED,
}


@dataclasses.dataclass(slots=True)
class OutboxEntry:
    """A command waiting for its reply."""

    request_id: int
    command: ClientMessage
    attempts: int = 0
    sent_on: int | None = None
    """Number of the connection it was last sent on (None: not sent there yet)."""
    not_before: float = 0.0
    """``time.monotonic()`` before which it must not be sent (rate limits)."""


@dataclasses.dataclass(frozen=True, slots=True)
class _Outcome:
    """How one connection attempt ended, and what to do next."""

    stop: ConnectionInfo | None = None
    """Stop retrying and show this."""
    stable: bool = False
    """It stayed up long enough to start the backoff over."""
    immediate: bool = False
    """Retry at once (e.g. a stale token was dropped for a dev login)."""
    min_delay: float = 0.0
    lost: bool = False
    """The connection had been online (the header says "Connection lost", not "Can't reach")."""


class _Stop(Exception):
    def __init__(self, info: ConnectionInfo) -> None:
        super().__init__(info.title)
        self.info = info


class _AuthFailed(Exception):
    """The server refused the token or login (it closes with 4500 next)."""


GitHubLogin = LoginGitHubCode | LoginGitHubToken | LoginGitHubEditor
"""A login message sent once instead of ``auth`` (browser, device or editor sign-in)."""


class LoginRefused(Exception):
    """A login given to ``login_with`` did not produce a session (GitHub sign-in)."""

    def __init__(self, error: UserError) -> None:
        super().__init__(error.message)
        self.error = error


class _Retry(Exception):
    def __init__(self, reason: str, *, min_delay: float = 0.0, immediate: bool = False) -> None:
        super().__init__(reason)
        self.min_delay = min_delay
        self.immediate = immediate


def new_client_msg_id() -> str:
    """Unique per sender; URL-safe base64 fits the protocol's pattern."""
    return secrets.token_urlsafe(12)


class PresenceClient:
    """Keeps ``state`` in sync with the server and ``connection`` up to date."""

    def __init__(
        self,
        url: str,
        state: PresenceState,
        connection: ConnectionEvents,
        credentials: Credentials,
        *,
        dev_login: str | None = None,
        device: str = "",
        backoff: Callable[[], Iterator[float]] = backoff_delays,
        stable_after: float = STABLE_AFTER,
        open_timeout: float = 10.0,
        before_ack: Callable[[int], object] | None = None,
        keepalive: tuple[float, float] = (KEEPALIVE_SECONDS, KEEPALIVE_TIMEOUT),
    ) -> None:
        self.url = url
        self.state = state
        self.connection = connection
        self.credentials = credentials
        self.dev_login = dev_login
        self.device = device[: limits.MAX_DEVICE_CHARS]
        self._backoff = backoff
        self._stable_after = stable_after
        self._open_timeout = open_timeout
        self._before_ack = before_ack
        self._keepalive = keepalive
        """(ping interval, pong timeout) in seconds; tests shorten them."""
        self._trouble = ""
        """Why the last attempt failed ("Can't reach server"), until back online."""

        self.errors = Signal[UserError]()
        """Failures the person should see, with the server's error code."""
        self.authenticated = Signal[AuthOk]()
        """Signed in (carries my user and GitHub follow suggestions)."""
        self.delivered = Signal[ClientMessage]()
        """A queued command was confirmed by the server."""
        self.outbox_changed = Signal[int]()
        """The number of commands waiting for a reply changed."""
        self.expired = Signal[MessageExpired]()
        """A message I sent was never delivered and the server deleted it (retention)."""
        # Conversations across devices (issue 17).
        self.sent = Signal[MessageSent]()
        """The server stored a message of mine (its id and time)."""
        self.refused = Signal[ClientMessage]()
        """A queued command was refused for good (a message shows "not sent" with Retry)."""
        self.copied = Signal[MessageCopy]()
        """A message I sent, from any of my devices (carbon)."""
        self.delivery = Signal[MessageDelivered]()
        self.read_marker = Signal[ReadMarker]()
        self.read_receipt = Signal[ReadReceipt]()
        self.typing_hint = Signal[TypingHint]()
        """A friend is writing to me (ephemeral; issue 17)."""
        self._typing_to: set[int] = set()
        """Friends to send a ``typing`` hint to on the next write (the model paces them)."""
        self._read_markers: dict[int, MarkRead] = {}
        """The newest unsent ``mark_read`` per friend (only the latest matters)."""
        self._quiet_ids: set[int] = set()
        """Request ids of ``mark_read``: their replies are not outbox news, and an
        older server's ``unknown_type`` for them is expected, not an error."""
        self._calls: dict[int, asyncio.Future[AnyServerMessage]] = {}
        """Replies awaited by ``call``, by request id."""
        self._snapshots = SnapshotAssembler()
        """A live snapshot that came in parts, until its last part (protocol.md §5)."""

        self._ids = itertools.count(1)
        self._outbox: dict[int, OutboxEntry] = {}
        self._presence: SetPresence | None = None
        self._presence_sent_on: int | None = None
        self._ack_wanted = 0
        self._ack_sent = 0
        self._conn_no = 0
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        """Ends the backoff wait early."""
        self._kick = asyncio.Event()
        """Something new to send."""
        self._dev_fallback_used = False
        self._sign_out_reply: asyncio.Future[None] | None = None
        self._sign_out_id: int | None = None
        # GitHub sign-in (issue 4): a login message sent once instead of ``auth``.
        self._login: tuple[GitHubLogin, asyncio.Future[AuthOk]] | None = None

    # ---------------------------------------------------------- lifecycle

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def online(self) -> bool:
        return self.connection.current.link is Link.ONLINE

    def start(self) -> None:
        """Connect (and keep reconnecting) in the background."""
        if self.running:
            return
        self._dev_fallback_used = False
        self._task = asyncio.get_running_loop().create_task(self._run(), name="presence-client")

    async def stop(self) -> None:
        """Close the connection and stop reconnecting; the outbox is kept."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    def reconnect_now(self) -> None:
        """Skip the rest of the backoff wait, or start again after a terminal stop."""
        if self.running:
            self._wake.set()
        else:
            self.start()

    def login_with(self, message: GitHubLogin) -> asyncio.Future[AuthOk]:
        """Sign in with ``message`` on the next connection (GitHub sign-in, issue 4).

        It is sent once: a code is single-use, so a connection lost after
        sending it fails the attempt instead of replaying it. The future
        resolves with ``auth_ok`` (the session is already stored) or fails
        with ``LoginRefused``.
        """
        self.withdraw_login()
        future: asyncio.Future[AuthOk] = asyncio.get_running_loop().create_future()
        self._login = (message, future)
        self._dev_fallback_used = False
        self.reconnect_now()
        return future

    def withdraw_login(self) -> None:
        """Forget a login that was not sent yet (the person cancelled)."""
        if self._login is not None:
            _message, future = self._login
            self._login = None
            if not future.done():
                future.cancel()

    # ---------------------------------------------------------- commands

    def set_presence(self, message: SetPresence) -> None:
        """My presence; re-sent after every reconnect, latest wins."""
        self._presence = msgspec.structs.replace(message, id=None)
        self._presence_sent_on = None
        self._kick.set()

    def send(self, command: ClientMessage) -> int:
        """Queue a friend action or message until the server confirms it.

        Raises ``ValueError`` for a command the server would reject as
        malformed (validate user input before calling).
        """
        rid = next(self._ids)
        command = msgspec.structs.replace(command, id=rid)
        try:
            decode_client(encode_text(command))
        except ProtocolError as exc:
            raise ValueError(exc.message) from None
        self._outbox[rid] = OutboxEntry(rid, command)
        self.outbox_changed.emit(len(self._outbox))
        self._kick.set()
        return rid

    def send_message(self, to: int, text: str, client_msg_id: str | None = None) -> str:
        """Queue a chat message; returns its ``client_msg_id``."""
        cmid = client_msg_id or new_client_msg_id()
        self.send(SendMessage(to=to, text=text, client_msg_id=cmid))
        return cmid

    def mark_read(self, marker: MarkRead) -> None:
        """Send a read marker when connected; a newer one for the same friend replaces it.

        Not in the outbox: a marker is ephemeral (the server stores nothing) and
        must never hold up a message or show an error.
        """
        self._read_markers[marker.peer] = msgspec.structs.replace(marker, id=None)
        self._kick.set()

    def typing(self, to: int) -> None:
        """Send a typing hint now if connected; while offline it is simply dropped."""
        if self.online:
            self._typing_to.add(to)
            self._kick.set()

    async def call(self, command: ClientMessage, within: float = CALL_TIMEOUT) -> AnyServerMessage:
        """Send one command now and return its reply (``error`` included).

        Not queued: for requests that only make sense while connected
        (account export and deletion). Raises ``ConnectionError`` when not
        online, or when the connection drops before the reply.
        """
        ws = self._ws
        if ws is None or not self.online:
            raise ConnectionError("not connected to the server")
        rid = next(self._ids)
        reply: asyncio.Future[AnyServerMessage] = asyncio.get_running_loop().create_future()
        self._calls[rid] = reply
        try:
            await ws.send(encode_text(msgspec.structs.replace(command, id=rid)))
            return await asyncio.wait_for(reply, within)
        except ConnectionClosed:
            raise ConnectionError("the connection to the server dropped") from None
        finally:
            self._calls.pop(rid, None)

    async def list_sessions(self) -> list[SessionInfo]:
        """Every live session of mine, oldest first, fetched page by page.

        A reply holds as many sessions as fit in one frame and ``next`` says
        more follow (docs/protocol.md §4), so a list built from the first page
        alone would miss sessions the user may want to revoke. Raises
        ``ConnectionError`` as ``call`` does, ``RuntimeError`` with the
        server's text when it answers with an error.
        """
        listed: list[SessionInfo] = []
        after: str | None = None
        while True:
            reply = await self.call(ListSessions(after=after))
            if not isinstance(reply, Sessions):
                detail = reply.message if isinstance(reply, Error) else type(reply).__name__
                raise RuntimeError(f"the server did not list the sessions: {detail}")
            listed.extend(reply.sessions)
            if reply.next is None or not reply.sessions:
                return listed
            after = reply.next

    def pending(self) -> list[ClientMessage]:
        """Commands still waiting for the server, oldest first."""
        return [e.command for e in self._outbox.values()]

    def note_acked(self, seq: int) -> None:
        """The highest seq acknowledged in an earlier run (from runtime state)."""
        self._ack_wanted = max(self._ack_wanted, seq)
        self._ack_sent = max(self._ack_sent, seq)

    async def sign_out(self, everywhere: bool = False) -> None:
        """Revoke the session on the server (when connected), forget it here."""
        ws = self._ws
        if ws is not None and self.online:
            loop = asyncio.get_running_loop()
            self._sign_out_reply = loop.create_future()
            self._sign_out_id = next(self._ids)
            try:
                await ws.send(encode_text(SignOut(id=self._sign_out_id, everywhere=everywhere)))
                await asyncio.wait_for(self._sign_out_reply, SIGN_OUT_TIMEOUT)
            except (ConnectionClosed, TimeoutError, OSError) as exc:
                log.info("sign-out reply not received (%s); forgetting the session anyway", exc)
            finally:
                self._sign_out_reply = None
        await self.forget(ConnectionInfo(Link.SIGNED_OUT))

    async def forget(self, info: ConnectionInfo) -> None:
        """Stop, and drop the session, the outbox and what was received (signed out)."""
        await self.stop()
        self._forget_token()
        self._outbox.clear()
        self.outbox_changed.emit(0)
        self._presence_sent_on = None
        self._ack_wanted = self._ack_sent = 0
        self.state.clear()
        self.connection.set(info)

    # ---------------------------------------------------------- connection loop

    async def _run(self) -> None:
        delays = self._backoff()
        while True:
            try:
                outcome = await self._attempt()
            except Exception:
                # A bug must not end reconnecting for the rest of the session.
                log.exception("connection attempt failed unexpectedly")
                outcome = _Outcome()
            if outcome.stop is not None:
                self.connection.set(outcome.stop)
                return
            if outcome.stable:
                delays = self._backoff()
            delay = 0.0 if outcome.immediate else max(next(delays), outcome.min_delay)
            # Cleared before announcing the wait, so a "Reconnect now" from a
            # listener of that announcement is not lost.
            self._wake.clear()
            self._trouble = CONNECTION_LOST if outcome.lost else UNREACHABLE
            self.connection.set(
                ConnectionInfo(
                    Link.RECONNECTING, retry_at=time.monotonic() + delay, title=self._trouble
                )
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    async def _attempt(self) -> _Outcome:
        try:
            token = self.credentials.get()
        except Exception as exc:
            self._credential_error("Cannot read your saved sign-in", exc)
            token = None
        if token is None and self.dev_login is None and self._login is None:
            return _Outcome(
                stop=ConnectionInfo(
                    Link.SIGNED_OUT, title="Not signed in", message="Sign in to see your friends."
                )
            )
        # After a failure the header keeps saying what is wrong while it tries again
        # (a frozen server accepts the TCP connection and then answers nothing).
        self.connection.set(ConnectionInfo(Link.CONNECTING, title=self._trouble))
        try:
            async with connect(
                self.url,
                subprotocols=[Subprotocol(limits.SUBPROTOCOL)],
                compression=None,
                max_size=MAX_INCOMING_FRAME,
                open_timeout=self._open_timeout,
                close_timeout=2.0,
                ping_interval=self._keepalive[0],
                ping_timeout=self._keepalive[1],
                create_connection=QuietPingConnection,  # pings only a quiet server
                proxy=None if is_loopback_url(self.url) else True,
                user_agent_header=f"presence-desktop/{__version__}",
                logger=WIRE_LOG,
            ) as ws:
                self._ws = ws
                try:
                    return await self._session(ws, token)
                finally:
                    self._ws = None
        except _Stop as stop:
            return _Outcome(stop=stop.info)
        except _Retry as retry:
            log.info("retrying: %s", retry)
            return _Outcome(immediate=retry.immediate, min_delay=retry.min_delay)
        except InvalidURI as exc:
            return _Outcome(
                stop=ConnectionInfo(
                    Link.OFFLINE,
                    title="Invalid server address",
                    message=f"{exc}. Check the server address in Settings.",
                )
            )
        except (OSError, TimeoutError, InvalidHandshake, ConnectionClosed) as exc:
            log.info("connection to %s failed: %s", self.url, exc)
            return _Outcome()
        except ProtocolError as exc:
            log.warning("the server sent an unreadable frame while signing in: %s", exc.message)
            return _Outcome()

    async def _session(self, ws: ClientConnection, token: str | None) -> _Outcome:
        online_since: float | None = None
        writer: asyncio.Task[None] | None = None
        try:
            async with asyncio.timeout(HANDSHAKE_TIMEOUT):
                await self._handshake(ws, token)
            self._conn_no += 1
            self._presence_sent_on = None
            online_since = time.monotonic()
            self._trouble = ""
            self.connection.set(ConnectionInfo(Link.ONLINE))
            writer = asyncio.get_running_loop().create_task(self._write_loop(ws, self._conn_no))
            self._kick.set()
            async for frame in ws:
                self._dispatch(frame)
        except ConnectionClosed:
            pass
        except _AuthFailed as exc:
            log.info("sign-in refused: %s", exc)
            return self._after_close(CloseCode.AUTH_FAILED, "", False)
        except TimeoutError:
            log.warning("the server did not complete sign-in in time")
            return _Outcome()
        finally:
            if writer is not None:
                writer.cancel()
                # wait() neither raises the writer's error nor swallows our own cancellation.
                await asyncio.wait([writer])
            if self._sign_out_reply is not None and not self._sign_out_reply.done():
                self._sign_out_reply.set_result(None)
            for call in self._calls.values():
                if not call.done():
                    call.set_exception(ConnectionError("the connection to the server dropped"))
        stable = online_since is not None and time.monotonic() - online_since >= self._stable_after
        outcome = self._after_close(ws.close_code, ws.close_reason or "", stable)
        return dataclasses.replace(outcome, lost=online_since is not None)

    def _after_close(self, code: int | None, reason: str, stable: bool) -> _Outcome:
        log.info("connection closed (code %s %s)", code, reason)
        if not close_code_is_terminal(code):
            return _Outcome(stable=stable)
        assert code is not None
        if code in _FORGET_TOKEN:
            had_token = self._forget_token()
            if (
                code == CloseCode.AUTH_FAILED
                and had_token
                and self.dev_login
                and not self._dev_fallback_used
            ):
                # A stale token from an earlier run: the development login still works.
                self._dev_fallback_used = True
                return _Outcome(immediate=True)
        # Issue 4: a session the server no longer accepts needs a new sign-in, not a retry.
        link = Link.SIGNED_OUT if code in _FORGET_TOKEN else Link.OFFLINE
        title, message = _TERMINAL_TEXT.get(
            code,
            (
                "Disconnected by the server",
                f"The server closed the connection ({code}{': ' + reason if reason else ''}). "
                "Reconnect from the tray menu when the problem is solved.",
            ),
        )
        return _Outcome(stop=ConnectionInfo(link, title=title, message=message, close_code=code))

    async def _handshake(self, ws: ClientConnection, token: str | None) -> None:
        hello = decode_server(await ws.recv(), max_bytes=MAX_INCOMING_FRAME)
        if not isinstance(hello, Hello):
            raise _Retry(f"expected hello, got {type(hello).__name__}")
        pending, self._login = self._login, None
        if pending is not None:
            try:
                reply = await self._github_login(ws, *pending)
            except BaseException as exc:
                _fail_login(pending[1], exc)
                raise
            if not pending[1].done():
                pending[1].set_result(reply)
        else:
            if token is not None:
                login: ClientMessage = Auth(id=next(self._ids), session=token)
            else:
                assert self.dev_login is not None
                login = LoginDev(id=next(self._ids), login=self.dev_login, device=self.device)
            await ws.send(encode_text(login))
            answer = decode_server(await ws.recv(), max_bytes=MAX_INCOMING_FRAME)
            if isinstance(answer, Error):
                self._login_failed(answer, using_token=token is not None)
            if not isinstance(answer, AuthOk):
                raise _Retry(f"expected auth_ok, got {type(answer).__name__}")
            reply = answer
            self._store_session(reply)
        # A new connection: a half-received snapshot of the last one is void.
        snapshots = self._snapshots = SnapshotAssembler()
        while True:
            # A Snapshot comes next (its parts right behind it when it did not fit
            # in one frame); anything else before it is unexpected but harmless.
            received = decode_server(await ws.recv(), max_bytes=MAX_INCOMING_FRAME)
            if isinstance(received, (Snapshot, SnapshotPart)):
                whole = snapshots.feed(received)
                if whole is not None:
                    frame = whole
                    break
                continue
            log.warning("ignoring %s before the snapshot", type(received).__name__)
        self.authenticated.emit(reply)
        self._ack_sent = frame.acked_seq
        self._ack_wanted = max(self._ack_wanted, frame.acked_seq)
        self.state.apply_snapshot(frame)

    def _store_session(self, reply: AuthOk) -> None:
        if reply.session is not None:
            try:
                self.credentials.set(reply.session)
            except Exception as exc:
                self._credential_error("Cannot save your sign-in", exc)

    async def _github_login(
        self,
        ws: ClientConnection,
        message: GitHubLogin,
        future: asyncio.Future[AuthOk],
    ) -> AuthOk:
        """Send a GitHub login once; a refusal ends in SIGNED_OUT, never in a retry loop."""
        rid = next(self._ids)
        await ws.send(encode_text(msgspec.structs.replace(message, id=rid, device=self.device)))
        reply = decode_server(await ws.recv(), max_bytes=MAX_INCOMING_FRAME)
        if isinstance(reply, Error):
            refused = UserError("Sign-in failed", reply.message or reply.code, reply.code)
            if not future.done():
                future.set_exception(LoginRefused(refused))
            # No title: the sign-in window already shows why (and offers "Try again").
            raise _Stop(ConnectionInfo(Link.SIGNED_OUT))
        if not isinstance(reply, AuthOk) or reply.session is None:
            raise _Retry(f"expected auth_ok with a session, got {type(reply).__name__}")
        self._store_session(reply)
        return reply

    def _login_failed(self, error: Error, *, using_token: bool) -> None:
        code = error.code
        if code == ErrorCode.AUTH_FAILED:
            raise _AuthFailed(error.message)
        if code == ErrorCode.LOGIN_UNAVAILABLE:
            raise _Stop(
                ConnectionInfo(
                    Link.OFFLINE,
                    title="Sign-in method not available",
                    message=error.message or "This server does not offer this way of signing in.",
                )
            )
        if code in (
            ErrorCode.RATE_LIMITED,
            ErrorCode.UPSTREAM_UNAVAILABLE,
            ErrorCode.INTERNAL_ERROR,
        ):
            raise _Retry(f"login: {code}", min_delay=error.retry_after or 0.0)
        raise _Stop(
            ConnectionInfo(
                Link.OFFLINE,
                title="Sign-in failed",
                message=f"{error.message or code}. Sign in again.",
            )
        )

    # ---------------------------------------------------------- reading

    def _dispatch(self, frame: str | bytes) -> None:
        try:
            msg = decode_server(frame, max_bytes=MAX_INCOMING_FRAME)
        except ProtocolError as exc:
            # A newer server may send types we do not know: skip, stay connected.
            log.warning("ignoring a frame from the server: %s", exc.message)
            return
        call = self._calls.get(rid) if isinstance(rid := getattr(msg, "id", None), int) else None
        if call is not None:
            if not call.done():
                call.set_result(msg)
            return
        if isinstance(msg, PresenceUpdate):
            self.state.apply_presence(msg)
        elif isinstance(msg, RelationUpdate):
            self.state.apply_relation(msg)
        elif isinstance(msg, Message):
            self.state.add_message(msg)  # None only for a replay of a message already stored
            if msg.seq > self._ack_wanted:
                self._ack_wanted = msg.seq
                self._kick.set()
        elif isinstance(msg, (Ok, MessageSent)):
            if isinstance(msg, MessageSent):
                self.sent.emit(msg)
            self._confirmed(msg.id)
        elif isinstance(msg, Error):
            self._refused(msg)
        elif isinstance(msg, (Snapshot, SnapshotPart)):
            whole = self._snapshots.feed(msg)  # a snapshot in parts is applied once whole
            if whole is not None:
                self.state.apply_snapshot(whole)
        elif isinstance(msg, MessageExpired):
            self.expired.emit(msg)
            self.send(AckExpired(message_ids=[msg.message_id]))
        elif isinstance(msg, MessageCopy):
            self.copied.emit(msg)
        elif isinstance(msg, MessageDelivered):
            self.delivery.emit(msg)
        elif isinstance(msg, ReadMarker):
            self.read_marker.emit(msg)
        elif isinstance(msg, ReadReceipt):
            self.read_receipt.emit(msg)
        elif isinstance(msg, TypingHint):
            self.typing_hint.emit(msg)
        else:
            log.debug("unhandled %s", type(msg).__name__)

    def _confirmed(self, rid: Any) -> None:
        if rid in self._quiet_ids:
            self._quiet_ids.discard(rid)
            return
        reply = self._sign_out_reply
        if reply is not None and rid == self._sign_out_id and not reply.done():
            reply.set_result(None)
        entry = self._outbox.pop(rid, None) if isinstance(rid, int) else None
        if entry is None:
            return  # a reply to set_presence, or a duplicate reply
        self._kick.set()  # the next command may go
        self.outbox_changed.emit(len(self._outbox))
        self.delivered.emit(entry.command)

    def _refused(self, error: Error) -> None:
        if error.id in self._quiet_ids:
            self._quiet_ids.discard(error.id)
            log.info("read marker not synced (%s): %s", error.code, error.message)
            return
        entry = self._outbox.get(error.id) if isinstance(error.id, int) else None
        if entry is None:
            log.warning("server error %s: %s", error.code, error.message)
            return
        code = error.code
        if entry.attempts > 1 and code in _SAME_AS_DONE.get(type(entry.command), ()):
            self._confirmed(entry.request_id)
            return
        wait = error.retry_after if error.retry_after is not None else 1.0
        retry = (code == ErrorCode.RATE_LIMITED and wait <= AUTO_RETRY_LIMIT) or (
            code == ErrorCode.INTERNAL_ERROR and entry.attempts < INTERNAL_ERROR_RETRIES
        )
        if retry:
            entry.sent_on = None
            entry.not_before = time.monotonic() + wait
            asyncio.get_running_loop().call_later(wait, self._kick.set)
            return
        del self._outbox[entry.request_id]
        self._kick.set()
        self.outbox_changed.emit(len(self._outbox))
        self.refused.emit(entry.command)
        self.errors.emit(explain(entry.command, error, self.state.login_of))

    # ---------------------------------------------------------- writing

    async def _write_loop(self, ws: ClientConnection, conn_no: int) -> None:
        """Send acks, my presence and outbox entries whenever there is news."""
        while True:
            await self._kick.wait()
            self._kick.clear()
            if self._ack_wanted > self._ack_sent and self._stored(self._ack_wanted):
                seq = self._ack_wanted
                await ws.send(encode_text(Ack(seq=seq)))
                self._ack_sent = max(self._ack_sent, seq)
            if self._presence is not None and self._presence_sent_on != conn_no:
                presence = self._presence
                self._presence_sent_on = conn_no
                await ws.send(encode_text(msgspec.structs.replace(presence, id=next(self._ids))))
            while self._typing_to:
                await ws.send(encode_text(Typing(to=self._typing_to.pop())))
            while self._read_markers:
                _peer, marker = self._read_markers.popitem()
                rid = next(self._ids)
                self._quiet_ids.add(rid)
                await ws.send(encode_text(msgspec.structs.replace(marker, id=rid)))
            now = time.monotonic()
            for entry in list(self._outbox.values()):
                if entry.request_id not in self._outbox:
                    continue  # answered while we were sending
                if entry.sent_on == conn_no or entry.not_before > now:
                    # One command in flight, oldest first: a refused or retried
                    # message is never overtaken by a later one (issue 7).
                    break
                entry.sent_on = conn_no
                entry.attempts += 1
                await ws.send(encode_text(entry.command))
                break

    # ---------------------------------------------------------- helpers

    def _stored(self, seq: int) -> bool:
        """Persist received messages before telling the server it may forget them."""
        if self._before_ack is None:
            return True
        try:
            self._before_ack(seq)
        except Exception:
            log.exception("could not store messages up to %d; not acknowledging them", seq)
            return False
        return True

    def _forget_token(self) -> bool:
        try:
            had = self.credentials.get() is not None
            self.credentials.delete()
        except Exception as exc:
            self._credential_error("Cannot remove your saved sign-in", exc)
            return False
        return had

    def _credential_error(self, title: str, exc: Exception) -> None:
        log.warning("%s: %s", title, exc)
        self.errors.emit(
            UserError(
                title=getattr(exc, "title", title),
                message=getattr(exc, "message", str(exc)),
                code="credentials",
            )
        )


def _fail_login(future: asyncio.Future[AuthOk], exc: BaseException) -> None:
    """A GitHub login that was sent but not answered cannot be replayed: fail it."""
    if future.done():
        return
    if isinstance(exc, asyncio.CancelledError):
        future.cancel()
        return
    future.set_exception(
        LoginRefused(
            UserError(
                "Connection lost while signing in",
                "The connection to the server dropped before it answered. Sign in again.",
                "connection_lost",
            )
        )
    )


_ERROR_TEXT: dict[str, tuple[str, str]] = {
    ErrorCode.UNKNOWN_USER: ("No such user", "Nobody called {who} uses this server yet."),
    ErrorCode.ALREADY_FRIENDS: ("Already friends", "You and {who} are already friends."),
    ErrorCode.REQUEST_EXISTS: ("Request already sent", "You already asked {who}; they can accept."),
    ErrorCode.SELF_REQUEST: ("That is you", "You cannot add yourself as a friend."),
    ErrorCode.FRIEND_LIMIT: (
        "Friend limit reached",
        f"You can have at most {limits.MAX_FRIENDS} friends and pending requests. "
        "Remove someone or cancel a request first.",
    ),
    ErrorCode.NO_REQUEST: ("No pending request", "There is no pending request from or to {who}."),
    ErrorCode.NOT_FRIENDS: ("Not friends", "You and {who} are not friends (any more)."),
    ErrorCode.UNKNOWN_SESSION: ("Unknown device", "That device is already signed out."),
}

_ACTION_TEXT: dict[type[ClientMessage], str] = {
    FriendRequest: "send the friend request",
    FriendAccept: "accept the request",
    FriendDecline: "decline the request",
    FriendCancel: "cancel the request",
    FriendRemove: "remove the friend",
    Block: "block",
    Unblock: "unblock",
    SendMessage: "send the message",
}


def explain(command: ClientMessage, error: Error, login_of: Callable[[int], str]) -> UserError:
    """Turn a refused command into a title and a message a person can act on."""
    if isinstance(command, FriendRequest):
        who = command.login
    else:
        uid = getattr(command, "user_id", None) or getattr(command, "to", None)
        who = login_of(uid) if isinstance(uid, int) else "them"
    known = _ERROR_TEXT.get(error.code)
    if known is not None:
        title, message = known
        return UserError(title, message.format(who=who), error.code)
    action = _ACTION_TEXT.get(type(command), "do that")
    if error.code == ErrorCode.RATE_LIMITED:
        minutes = max(1, round((error.retry_after or 60) / 60))
        return UserError(
            "Slow down",
            f"Could not {action}: too many in a short time. Try again in {minutes} min.",
            error.code,
        )
    detail = error.message or error.code
    return UserError(f"Could not {action}", f"The server said: {detail}", error.code)
