"""One client connection: framing, limits, the login phase and the command loop.

Outgoing frames go through a bounded queue drained by a writer task, so a
client that stops reading fills only its own queue and is closed with 4003
instead of slowing the publisher (and with it everyone else). Commands of one
connection are handled one after the other, in the order they arrive, so
replies come back in request order.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Protocol

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from presence_protocol import (
    LOGIN_MESSAGES,
    Ack,
    AnyClientMessage,
    Auth,
    AuthOk,
    ClientMessage,
    CloseCode,
    Error,
    ErrorCode,
    LoginDev,
    LoginGitHubCode,
    LoginGitHubEditor,
    LoginGitHubToken,
    ProtocolError,
    RequestId,
    ServerMessage,
    SetPresence,
    Snapshot,
    Status,
    decode_client,
    encode,
)
from presence_protocol.paging import FrameTooLarge, fit_suggestions, snapshot_frames

from ..cluster.fanout import Event
from ..domain.presence import DeviceState
from ..storage.store import CommandError, UserRow
from .ratelimit import PresenceGate, SlidingWindow

if TYPE_CHECKING:
    from .hub import Hub

log = logging.getLogger(__name__)

MINUTE = 60.0
HELD_PRESENCE = 64
"""Presence deltas about non-friends kept per connection (see ``Connection.held``)."""
CLOSE_WAIT_SECONDS = 10.0


@dataclasses.dataclass(frozen=True, slots=True)
class _Close:
    code: int
    reason: str


def message_type(message: AnyClientMessage) -> str:
    """The protocol ``type`` of a message (a bounded label for metrics)."""
    tag = type(message).__struct_config__.tag
    return tag if isinstance(tag, str) else type(message).__name__


LoginMessage = Auth | LoginDev | LoginGitHubCode | LoginGitHubToken | LoginGitHubEditor
"""What ``LOGIN_MESSAGES`` admits before login."""


class Handlers(Protocol):
    """What a connection asks of the command table (``session.handlers``).

    The edge passes the table in, so this module does not import it: the
    handlers work on a connection, and a connection only calls them back.
    """

    async def login(self, conn: Connection, message: LoginMessage) -> bool: ...

    async def dispatch(self, conn: Connection, message: ClientMessage) -> None: ...

    async def snapshot(
        self, hub: Hub, user_id: int, status: Status, user: UserRow | None = None
    ) -> tuple[Snapshot | None, dict[int, int]]: ...


class Connection:
    def __init__(self, hub: Hub, ws: ServerConnection, handlers: Handlers, ip: str = "") -> None:
        self.hub = hub
        self.handlers = handlers
        self.ws = ws
        self.ip = ip
        """The client's address (behind a trusted proxy: from X-Forwarded-For), for logs."""
        self.metrics = hub.metrics
        self.limits = hub.limits
        self.cid = secrets.token_hex(4)
        """Log label and presence-registry device key of this connection."""
        self.finished = asyncio.Event()
        """Set when the connection is over and cleaned up (a drain waits for it)."""
        self.queue: asyncio.Queue[bytes | _Close] = asyncio.Queue(
            maxsize=self.limits.send_queue_frames
        )
        self.closing = False
        self.user: UserRow | None = None
        self.session_id: str | None = None
        self.slot_user: int | None = None
        """The user whose device slot this connection holds (from the cap check
        on, before ``user`` is set): released when the connection ends."""
        self.commands = SlidingWindow(self.limits.commands_per_minute, MINUTE)
        self.bad_frames = 0
        # Presence of this device.
        self.device = DeviceState()
        self.gate = PresenceGate(
            self.limits.presence_updates_per_window, self.limits.presence_window_seconds
        )
        self.pending_presence: SetPresence | None = None
        self.flush_timer: asyncio.TimerHandle | None = None
        self.expiry_timer: asyncio.TimerHandle | None = None
        # Delivery of messages: what was sent to this connection, and whether
        # stored messages are still being replayed (live ones then wait).
        self.ready = False
        self.early: list[Event] = []
        # What this client was told about others: friends (from the snapshot
        # and relation frames) and the newest presence version sent per user.
        # Presence about someone who is not (yet) a friend is never sent; the
        # newest such delta is held in case a relation frame making them a
        # friend arrives later with an older presence (cross-instance races).
        self.friends: set[int] = set()
        self.versions: dict[int, int] = {}
        self.held: dict[int, Event] = {}
        self.acked_seq = 0
        self.last_sent_seq = 0
        self.replay_running = False
        self.replay_pending = False
        self.replay_dirty = False
        self._replay_active = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._writer_task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ output

    def send(self, message: ServerMessage) -> None:
        """Queue a message; one that would not fit in a frame is never sent.

        ``max_server_frame_bytes`` (announced in ``hello``) is a promise to
        clients (docs/protocol.md §1): a client may close a bigger frame with
        1009 and lose everything queued behind it. Most frames are bounded by
        construction (protocol.md §8), export pages are cut by size, and a
        snapshot that does not fit is sent in parts (``snapshot_part``), back
        to back so that no other frame comes between them; this is the check
        that the bound held.
        A reply that is too big becomes an ``internal_error`` reply; anything
        else closes the connection with 1011 so the client reconnects.
        """
        frame = encode(message)
        limit = self.limits.max_server_frame_bytes
        if len(frame) > limit and isinstance(message, AuthOk):
            frame = encode(fit_suggestions(message, limit))  # suggestions are only hints
        if len(frame) <= limit:
            self.send_frame(frame)
            return
        if isinstance(message, Snapshot):
            try:  # a snapshot too long for one frame goes in parts (protocol.md §5)
                parts = snapshot_frames(message, limit)
            except FrameTooLarge:
                pass  # one entry alone is too long: nothing to cut; reported below
            else:
                for part in parts:
                    self.send_frame(encode(part))
                return
        log.error(
            "connection %s: a %s frame of %d bytes exceeds the %d-byte frame limit; not sent",
            self.cid,
            type(message).__name__,
            len(frame),
            limit,
            extra={"event": "frame_too_large", "size": len(frame)},
        )
        request_id = getattr(message, "id", None)
        if request_id is not None:
            self.reply_error(
                ErrorCode.INTERNAL_ERROR, "the answer did not fit in one frame", request_id
            )
        else:
            self.close(1011, "a frame did not fit the frame limit")

    def send_frame(self, frame: bytes) -> None:
        if self.closing:
            return
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            log.info("connection %s: send queue full, closing as slow consumer", self.cid)
            self.abort(CloseCode.SLOW_CONSUMER, "you are not reading fast enough")

    def reply_error(
        self,
        code: ErrorCode | str,
        message: str,
        request_id: RequestId | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.metrics.errors.labels(str(code)).inc()
        self.send(Error(id=request_id, code=str(code), message=message, retry_after=retry_after))

    def close(self, code: int, reason: str) -> None:
        """Close after the frames already queued (e.g. the reply saying why).

        From now on input is ignored and the device leaves the registry at
        once: friends see it go offline without waiting for the TCP close.
        """
        if self.closing:
            return
        try:
            self.queue.put_nowait(_Close(code, reason))
        except asyncio.QueueFull:
            self.abort(code, reason)
            return
        self.closing = True
        self._closed_by_server(code)
        self.spawn(self._cleanup())

    def abort(self, code: int, reason: str) -> None:
        """Close now, dropping whatever is still queued."""
        if self.closing:
            return
        self.closing = True
        self._closed_by_server(code)
        while not self.queue.empty():
            self.queue.get_nowait()
        if self._writer_task is not None:
            self._writer_task.cancel()
        self.spawn(self.ws.close(code, reason))
        self.spawn(self._cleanup())

    def _closed_by_server(self, code: int) -> None:
        self.metrics.closes.labels(str(code)).inc()
        log.log(
            logging.DEBUG if code == CloseCode.SERVER_RESTART else logging.INFO,
            "connection %s: closing with %d",
            self.cid,
            code,
            extra={
                "event": "close",
                "cid": self.cid,
                "code": int(code),
                "user": self.user.id if self.user is not None else 0,
                "ip": self.ip,
            },
        )

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "connection %s: background task failed",
                self.cid,
                exc_info=task.exception(),
            )

    async def _writer(self) -> None:
        try:
            while True:
                item = await self.queue.get()
                if isinstance(item, _Close):
                    await self.ws.close(item.code, item.reason)
                    return
                await self.ws.send(item, text=True)
                self.metrics.messages_out.inc()
        except ConnectionClosed:
            pass

    # ------------------------------------------------------------ fan-out input

    def deliver(self, event: Event) -> None:
        """Called by the fan-out for events addressed to this user."""
        if event.account_deleted:
            self.close(CloseCode.ACCOUNT_DELETED, "this account was deleted")
            return
        if event.revoke_all or (self.session_id is not None and self.session_id in event.revoke):
            self.close(CloseCode.SESSION_REVOKED, "this session was signed out")
            return
        if event.friend is not None and self.user is not None:
            self.hub.forget_friends(self.user.id)
        if event.frame is None:
            return
        if event.seq is not None:
            if self.replay_running or self.replay_pending:
                self.replay_dirty = True
                return
            delivered = max(self.acked_seq, self.last_sent_seq)
            if event.seq <= delivered:
                return
            if event.seq > delivered + 1:
                # A gap: an earlier message's event is still on its way from
                # another instance, or never comes (that instance died between
                # storing and publishing). Everything up to this seq is in the
                # database (seqs are allocated in commit order), so fetch the
                # run in order instead of skipping past the missing one.
                self.replay_dirty = True
                self.spawn(self.replay())
                return
            self.last_sent_seq = event.seq
        if not self.ready:
            self.early.append(event)
            if len(self.early) > self.limits.send_queue_frames:
                self.abort(CloseCode.SLOW_CONSUMER, "you are not reading fast enough")
            return
        self._forward(event)

    def _forward(self, event: Event) -> None:
        """Send a delta, unless it is about a non-friend or older than one already sent."""
        assert event.frame is not None
        subject = event.subject
        if subject is None:
            self.send_frame(event.frame)
            return
        if event.friend is None:  # a presence delta
            if event.version and event.version <= self.versions.get(subject, 0):
                return
            if event.version:
                self.versions[subject] = event.version
            if subject not in self.friends:
                self._hold(subject, event)
                return
            self.send_frame(event.frame)
            return
        if not event.friend:
            self.friends.discard(subject)
            self.held.pop(subject, None)
            self.send_frame(event.frame)
            return
        self.friends.add(subject)
        if event.version > self.versions.get(subject, 0):
            self.versions[subject] = event.version
        self.send_frame(event.frame)
        held = self.held.pop(subject, None)
        if held is not None and held.version > event.version:
            assert held.frame is not None
            self.send_frame(held.frame)

    def _hold(self, subject: int, event: Event) -> None:
        self.held.pop(subject, None)
        self.held[subject] = event
        if len(self.held) > HELD_PRESENCE:
            del self.held[next(iter(self.held))]

    # ------------------------------------------------------------ life cycle

    async def run(self) -> None:
        writer = self._writer_task = asyncio.create_task(self._writer())
        try:
            self.send_frame(self.hub.hello_frame)
            if await self._login_phase():
                await self._command_loop()
            else:
                await self._discard_input()
        except ConnectionClosed:
            pass
        finally:
            await self._cleanup()
            if not writer.done():
                if self.closing:
                    # Let the writer flush the reply and send the close code.
                    await asyncio.wait([writer], timeout=CLOSE_WAIT_SECONDS)
                writer.cancel()
            for task in list(self._tasks):
                if not task.done():
                    await asyncio.wait([task], timeout=CLOSE_WAIT_SECONDS)
            self.finished.set()

    async def _cleanup(self) -> None:
        """Leave fan-out and registry; safe to run more than once."""
        for timer in (self.flush_timer, self.expiry_timer):
            if timer is not None:
                timer.cancel()
        self.hub.connections.discard(self)
        if self.user is None:
            await self.release_slot()
            return
        try:
            await self.hub.fanout.unsubscribe(self.user.id, self)
            await self.hub.drop_device(self.user.id, self.cid)
        except Exception:
            log.exception("connection %s: cleanup failed", self.cid)
        self.slot_user = None

    async def take_slot(self, user_id: int) -> bool:
        """Hold one of the user's device slots (the per-user cap); False if full."""
        await self.release_slot()  # an earlier login attempt that failed halfway
        if not await self.hub.reserve_device(user_id, self.cid):
            return False
        self.slot_user = user_id
        return True

    async def release_slot(self) -> None:
        """Give back the slot of a login that did not complete (safe to repeat)."""
        user_id, self.slot_user = self.slot_user, None
        if user_id is None:
            return
        try:
            await self.hub.drop_device(user_id, self.cid)
        except Exception:
            log.exception("connection %s: releasing a device slot failed", self.cid)

    def _decode(self, data: str | bytes, *, logged_in: bool = True) -> AnyClientMessage | None:
        """A valid message, or None after answering with the decode error.

        Before login a valid frame does not reset the invalid-frame count and
        an ``ack`` is not free: only a login is of use then (see ``_login_phase``).
        """
        try:
            message = decode_client(data)
        except ProtocolError as exc:
            self.metrics.messages_in.labels("invalid").inc()
            self.commands.allow()  # invalid frames use up the command budget too
            self.reply_error(exc.code, exc.message, exc.request_id)
            self._count_bad_frame()
            return None
        if logged_in:
            self.bad_frames = 0
        self.metrics.messages_in.labels(message_type(message)).inc()
        if not logged_in or not isinstance(message, Ack):
            wait = self.commands.allow()
            if wait is not None:
                self.reply_error(
                    ErrorCode.RATE_LIMITED,
                    f"at most {self.limits.commands_per_minute} commands per minute",
                    message.id,
                    retry_after=round(wait, 3),
                )
                return None
        return message

    def _count_bad_frame(self) -> None:
        self.bad_frames += 1
        if self.bad_frames >= self.limits.max_bad_frames:
            self.close(CloseCode.TOO_MANY_ERRORS, "too many invalid frames")

    async def _login_phase(self) -> bool:
        """Read frames until one logs in, for at most the auth deadline.

        Before login only a login message is of any use, so every other frame
        (an ``ack`` too) is answered with an error and counts as invalid, and
        at most ``max_login_frames`` frames are read at all: a stranger cannot
        keep the server busy with well-formed junk until the deadline.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.limits.auth_deadline_seconds
        frames = 0
        while not self.closing:
            try:
                async with asyncio.timeout_at(deadline):
                    data = await self.ws.recv()
            except TimeoutError:
                self.close(CloseCode.AUTH_TIMEOUT, "no login before the deadline")
                return False
            if self.closing:
                return False
            frames += 1
            if await self._login_frame(data):
                return True
            if frames >= self.limits.max_login_frames:
                self.close(CloseCode.TOO_MANY_ERRORS, "too many frames before login")
        return False

    async def _discard_input(self) -> None:
        """Read and drop frames until the connection is closed.

        The close frame we sent is answered only if we keep reading: frames
        the client sent meanwhile would otherwise fill the receive buffer,
        reading would pause, and the close would hang until its timeout.
        Bounded, like the wait for the writer: a client that never completes
        the close is cut when the handler returns.
        """
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_WAIT_SECONDS):
                while True:
                    await self.ws.recv()

    async def _login_frame(self, data: str | bytes) -> bool:
        """Handle one frame before login; True once it logged in."""
        message = self._decode(data, logged_in=False)
        if message is None:
            return False
        if not isinstance(message, LOGIN_MESSAGES):
            self.reply_error(
                ErrorCode.NOT_AUTHENTICATED,
                "log in first (auth or a login message)",
                message.id,
            )
            self._count_bad_frame()
            return False
        try:
            return await self.handlers.login(self, message)
        except Exception:
            log.exception("connection %s: login failed", self.cid)
            self.reply_error(ErrorCode.INTERNAL_ERROR, "the server failed", message.id)
            return False

    async def _command_loop(self) -> None:
        while True:
            data = await self.ws.recv()
            if self.closing:
                continue
            message = self._decode(data)
            if message is None:
                continue
            try:
                await self.handlers.dispatch(self, message)
            except CommandError as exc:
                self.reply_error(exc.code, exc.message, message.id, exc.retry_after)
            except ConnectionClosed:
                raise
            except Exception:
                log.exception("connection %s: %s failed", self.cid, type(message).__name__)
                self.reply_error(
                    ErrorCode.INTERNAL_ERROR,
                    "the server failed; the command was not applied",
                    message.id,
                )

    # ------------------------------------------------------------ session start

    async def start_session(self, user: UserRow, session_id: str) -> None:
        """Become this user's device: subscribe first, so nothing falls between."""
        self.user = user
        self.session_id = session_id
        self.acked_seq = user.acked_seq
        self.replay_running = True
        self.hub.connections.add(self)  # its session counts as used (retention)
        await self.hub.fanout.subscribe(user.id, self)

    def mark_ready(self, versions: dict[int, int]) -> None:
        """The snapshot is queued; deltas that arrived meanwhile follow it.

        ``versions`` maps each friend in the snapshot to the presence version
        it showed, so an older delta still in flight is dropped.
        """
        self.friends = set(versions)
        self.versions = {uid: v for uid, v in versions.items() if v}
        self.held.clear()
        self.ready = True
        early, self.early = self.early, []
        for event in early:
            self._forward(event)

    async def resync(self) -> None:
        """Send a fresh snapshot and whatever messages are missing.

        After the fan-out lost events (Redis was unreachable), this brings the
        client back to the truth; it applies a snapshot at any time.
        """
        if self.closing or self.user is None or not self.ready:
            return  # still logging in: its own snapshot and replay are on their way
        self.ready = False
        frame: Snapshot | None = None
        versions: dict[int, int] = {}
        try:
            frame, versions = await self.handlers.snapshot(
                self.hub, self.user.id, self.device.status
            )
            if frame is not None:
                self.send(frame)
        finally:
            self.mark_ready(versions if frame is not None else {})
        if not self.replay_pending:
            await self.replay()

    async def replay(self) -> None:
        """Send stored unacknowledged messages in seq order, a batch at a time."""
        assert self.user is not None
        if self._replay_active:
            self.replay_dirty = True  # the running loop goes round once more
            return
        self._replay_active = True
        self.replay_running = True
        try:
            while True:
                self.replay_dirty = False
                after = max(self.acked_seq, self.last_sent_seq)
                rows = await self.hub.store.unacked(
                    self.user.id, after, self.limits.max_replay_messages
                )
                for row in rows:
                    self.send(row.wire())
                    self.last_sent_seq = row.seq
                if len(rows) >= self.limits.max_replay_messages:
                    self.replay_pending = True
                    return
                self.replay_pending = False
                if not self.replay_dirty:
                    return
        finally:
            self.replay_running = False
            self._replay_active = False

    def initial_device(self, user: UserRow, now: int) -> DeviceState:
        """A new device starts with the status last chosen on any device.

        Away is per device (idle) so a freshly connected device starts online;
        a timed status whose time has passed has already reverted to online.
        """
        status = user.status
        until = user.status_until
        if status is Status.AWAY or (until is not None and until <= now):
            status, until = Status.ONLINE, None
        if status is Status.ONLINE:
            until = None
        return DeviceState(status=status, until=until, status_stamp=self.hub.clock_ns())
