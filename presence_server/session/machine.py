"""One connection's protocol life as a state machine, without a socket.

A ``Session`` is what python-websockets' ``Protocol`` is to its asyncio
connection: all the state and every decision, no I/O of its own. The
transport (``edge.transport``) hands it each received frame
(``receive``), the fan-out hands it events (``deliver``), and its injected
clock (``session.timing``) fires its timers: the auth deadline, presence
pacing, status expiry. What it says goes to an ``Output``: frames, written at
once and in order, and at most one close. Store, registry and fan-out calls
go through the hub, so tests drive a session with a real SQLite store, an
in-process fan-out, a list for output and a fake clock, and never sleep.

Frames are written straight to the output (as ``websockets.broadcast``
does), never queued here: the output reports how many bytes still wait for
the client, and one that lets more than ``send_buffer_bytes`` pile up is
closed with 4003, so a client that stops reading costs bounded memory and
never slows the publisher (and with it everyone else). Commands of one
session are handled one after the other, in the order they arrive, so
replies come back in request order.

A session lives once per connection, so its state is in slots, and what
most connections never need (held presence, early events, background tasks)
is created on first use.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Protocol

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
from presence_protocol.limits import MAX_ERROR_MESSAGE_CHARS
from presence_protocol.paging import FrameTooLarge, fit_suggestions, snapshot_frames

from ..cluster.fanout import Event
from ..config import ServerLimits
from ..domain.presence import DeviceState
from ..metrics import AnyMetrics
from ..storage.store import CommandError, UserRow
from . import ratelimit
from .ratelimit import PresenceGate
from .timing import Timer

if TYPE_CHECKING:
    from .hub import Hub

log = logging.getLogger(__name__)

MINUTE = 60.0
HELD_PRESENCE = 64
"""Presence deltas about non-friends kept per session (see ``Session.held``)."""
NEW_DEVICE = DeviceState()
"""Every session's device before login (frozen, so one instance serves all)."""


def message_type(message: AnyClientMessage) -> str:
    """The protocol ``type`` of a message (a bounded label for metrics)."""
    tag = type(message).__struct_config__.tag
    return tag if isinstance(tag, str) else type(message).__name__


LoginMessage = Auth | LoginDev | LoginGitHubCode | LoginGitHubToken | LoginGitHubEditor
"""What ``LOGIN_MESSAGES`` admits before login."""


class Output(Protocol):
    """Where a session's frames go: the WebSocket transport, or a list in tests."""

    def write(self, frame: bytes) -> int:
        """Send one text frame, after those already written; return the bytes not yet
        read by the client (the WebSocket output hands a turn's frames to the
        socket together, at the start of the loop's next turn)."""
        ...

    def close(self, code: int, reason: str) -> None:
        """Send the close frame after everything written (called at most once)."""
        ...


class Handlers(Protocol):
    """What a session asks of the command table (``session.handlers``).

    The edge passes the table in, so this module does not import it: the
    handlers work on a session, and a session only calls them back.
    """

    async def login(self, conn: Session, message: LoginMessage) -> bool: ...

    async def dispatch(self, conn: Session, message: ClientMessage) -> None: ...

    async def snapshot(
        self, hub: Hub, user_id: int, status: Status, user: UserRow | None = None
    ) -> tuple[Snapshot | None, dict[int, int]]: ...

    async def apply_presence(self, conn: Session, message: SetPresence) -> None: ...


class Session:
    __slots__ = (
        "__weakref__",
        "_busy",
        "_finished_waiter",
        "_left",
        "_replay_active",
        "_tasks",
        "acked_seq",
        "authenticated",
        "bad_frames",
        "cid",
        "closing",
        "command_times",
        "deadline_passed",
        "deadline_timer",
        "device",
        "early",
        "expiry_timer",
        "finished",
        "flush_timer",
        "gate",
        "handlers",
        "held",
        "hub",
        "ip",
        "known",
        "last_sent_seq",
        "login_frames",
        "out",
        "pending_presence",
        "ready",
        "replay_dirty",
        "replay_pending",
        "replay_running",
        "session_id",
        "slot_user",
        "user",
    )

    def __init__(
        self,
        hub: Hub,
        handlers: Handlers,
        out: Output,
        ip: str = "",
    ) -> None:
        self.hub = hub
        self.handlers = handlers
        self.out = out
        self.ip = ip
        """The client's address (behind a trusted proxy: from X-Forwarded-For), for logs."""
        self.cid = secrets.token_hex(4)
        """Log label and presence-registry device key of this session."""
        self.closing = False
        """Closed by either side: input is ignored and nothing more is sent."""
        self.finished = False
        """Over and cleaned up (``end``); a drain waits for it (``wait_finished``)."""
        self._finished_waiter: asyncio.Future[None] | None = None
        self._left = False
        """Out of the fan-out and the registry already (``_cleanup`` or a drain's
        ``Hub.leave_all``): a session is taken out once, not once per way it ends."""
        self.authenticated = False
        self.user: UserRow | None = None
        self.session_id: str | None = None
        self.slot_user: int | None = None
        """The user whose device slot this session holds (from the cap check
        on, before ``user`` is set): released when the session ends."""
        self.command_times: list[float] = []
        """When the commands of the last minute came (``_allow_command``); only
        the list is per connection, the limit is the server's."""
        self.bad_frames = 0
        self.login_frames = 0
        self._busy = False
        self.deadline_passed = False
        self.deadline_timer: Timer | None = None
        # Presence of this device; the gate comes with its first update.
        self.device = NEW_DEVICE
        self.gate: PresenceGate | None = None
        self.pending_presence: SetPresence | None = None
        self.flush_timer: Timer | None = None
        self.expiry_timer: Timer | None = None
        # Delivery of messages: what was sent to this session, and whether
        # stored messages are still being replayed (live ones then wait).
        self.ready = False
        self.early: list[Event] | None = None
        # What this client was told about others: friends (from the snapshot
        # and relation frames) and the newest presence version sent per user.
        # Presence about someone who is not (yet) a friend is never sent; the
        # newest such delta is held in case a relation frame making them a
        # friend arrives later with an older presence (cross-instance races).
        self.known: dict[int, int] = {}
        """Per user: the newest presence version this client was told about,
        as is for a friend and as ``-(version + 1)`` for anyone else. One
        dict instead of a friend set plus a version map: it is the biggest
        part of an idle session, and a friend's entry reuses the registry's
        version object."""
        self.held: dict[int, Event] | None = None
        self.acked_seq = 0
        self.last_sent_seq = 0
        self.replay_running = False
        self.replay_pending = False
        self.replay_dirty = False
        self._replay_active = False
        self._tasks: set[asyncio.Task[None]] | None = None

    @property
    def metrics(self) -> AnyMetrics:
        return self.hub.metrics

    @property
    def limits(self) -> ServerLimits:
        return self.hub.limits

    # ------------------------------------------------------------ output

    def send(self, message: ServerMessage) -> None:
        """Send a message; one that would not fit in a frame is never sent.

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
        """Write a frame now; close a client that has stopped reading (4003)."""
        if self.closing:
            return
        waiting = self.out.write(frame)  # the output counts frames (messages_out)
        if waiting > self.limits.send_buffer_bytes:
            log.info(
                "connection %s: %d bytes wait for the client, closing as slow consumer",
                self.cid,
                waiting,
            )
            self.close(CloseCode.SLOW_CONSUMER, "you are not reading fast enough")

    def reply_error(
        self,
        code: ErrorCode | str,
        message: str,
        request_id: RequestId | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.metrics.errors.labels(str(code)).inc()
        text = message[:MAX_ERROR_MESSAGE_CHARS]  # a bounded frame (protocol.md §8)
        self.send(Error(id=request_id, code=str(code), message=text, retry_after=retry_after))

    def close(self, code: int, reason: str) -> None:
        """Close after the frames already written (e.g. the reply saying why).

        From now on input is ignored and the device leaves the registry at
        once: friends see it go offline without waiting for the TCP close.
        """
        if self.closing:
            return
        self.closing = True
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
        self.out.close(code, reason)
        if code == CloseCode.SERVER_RESTART and self.hub.stopping and self.user is not None:
            # A drain: the server takes everyone out at once (``Hub.leave_all``),
            # not one background task per session.
            return
        self.spawn(self._cleanup())

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run work the session started by itself (a timer, a close) in the background."""
        task = asyncio.create_task(coro)
        if self._tasks is None:
            self._tasks = set()
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if self._tasks is not None:
            self._tasks.discard(task)
            if not self._tasks:
                self._tasks = None
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "connection %s: background task failed",
                self.cid,
                exc_info=task.exception(),
            )

    async def settle(self) -> None:
        """Wait until the background work is done, also work started meanwhile."""
        while self._tasks:
            await asyncio.wait(list(self._tasks))

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
            if self.early is None:
                self.early = []
            self.early.append(event)
            if len(self.early) > self.limits.max_early_events:
                self.close(CloseCode.SLOW_CONSUMER, "you are not reading fast enough")
            return
        self._forward(event)

    def is_friend(self, user_id: int) -> bool:
        """This client was told ``user_id`` is a friend (snapshot or relation frame)."""
        return self.known.get(user_id, -1) >= 0

    def _forward(self, event: Event) -> None:
        """Send a delta, unless it is about a non-friend or older than one already sent."""
        assert event.frame is not None
        subject = event.subject
        if subject is None:
            self.send_frame(event.frame)
            return
        entry = self.known.get(subject, -1)
        friend = entry >= 0
        version = entry if friend else -entry - 1
        if event.friend is None:  # a presence delta
            if event.version and event.version <= version:
                return
            if event.version:
                self.known[subject] = event.version if friend else -event.version - 1
            if not friend:
                self._hold(subject, event)
                return
            self.send_frame(event.frame)
            return
        if not event.friend:
            if friend:
                self.known[subject] = -version - 1
            if self.held is not None:
                self.held.pop(subject, None)
            self.send_frame(event.frame)
            return
        self.known[subject] = max(version, event.version)
        self.send_frame(event.frame)
        held = self.held.pop(subject, None) if self.held is not None else None
        if held is not None and held.version > event.version:
            assert held.frame is not None
            self.send_frame(held.frame)

    def _hold(self, subject: int, event: Event) -> None:
        if self.held is None:
            self.held = {}
        self.held.pop(subject, None)
        self.held[subject] = event
        if len(self.held) > HELD_PRESENCE:
            del self.held[next(iter(self.held))]

    # ------------------------------------------------------------ client input

    def start(self) -> None:
        """The connection is open: greet, and start the login deadline."""
        self.send_frame(self.hub.hello_frame)
        self.deadline_timer = self.hub.clock.call_later(
            self.limits.auth_deadline_seconds, self._deadline
        )

    def _deadline(self) -> None:
        self.deadline_timer = None
        if self.authenticated or self.closing:
            return
        self.deadline_passed = True
        if not self._busy:  # else the login under way decides (``_before_login``)
            self.close(CloseCode.AUTH_TIMEOUT, "no login before the deadline")

    async def receive(self, data: str | bytes) -> None:
        """Handle one frame from the client, completely (replies are written)."""
        if self.closing:
            return
        if self.authenticated:
            await self._command(data)
        else:
            await self._before_login(data)

    async def _before_login(self, data: str | bytes) -> None:
        """Before login only a login message is of any use, so every other frame
        (an ``ack`` too) is answered with an error and counts as invalid, and
        at most ``max_login_frames`` frames are read at all: a stranger cannot
        keep the server busy with well-formed junk until the deadline.
        """
        self.login_frames += 1
        self._busy = True
        try:
            logged_in = await self._login_frame(data)
        finally:
            self._busy = False
        if logged_in:
            self.authenticated = True
            if self.deadline_timer is not None:
                self.deadline_timer.cancel()
                self.deadline_timer = None
        elif self.deadline_passed:
            self.close(CloseCode.AUTH_TIMEOUT, "no login before the deadline")
        elif self.login_frames >= self.limits.max_login_frames:
            self.close(CloseCode.TOO_MANY_ERRORS, "too many frames before login")

    def _decode(self, data: str | bytes, *, logged_in: bool = True) -> AnyClientMessage | None:
        """A valid message, or None after answering with the decode error.

        Before login a valid frame does not reset the invalid-frame count and
        an ``ack`` is not free: only a login is of use then (see ``_before_login``).
        """
        try:
            message = decode_client(data)
        except ProtocolError as exc:
            self.metrics.messages_in.labels("invalid").inc()
            self._allow_command()  # invalid frames use up the command budget too
            self.reply_error(exc.code, exc.message, exc.request_id)
            self._count_bad_frame()
            return None
        if logged_in:
            self.bad_frames = 0
        self.metrics.messages_in.labels(message_type(message)).inc()
        if not logged_in or not isinstance(message, Ack):
            wait = self._allow_command()
            if wait is not None:
                self.reply_error(
                    ErrorCode.RATE_LIMITED,
                    f"at most {self.limits.commands_per_minute} commands per minute",
                    message.id,
                    retry_after=round(wait, 3),
                )
                return None
        return message

    def _allow_command(self) -> float | None:
        """Count a command; None, or the seconds until the rate limit allows one."""
        minute = self.limits.commands_per_minute
        return ratelimit.allow(self.command_times, minute, MINUTE, self.hub.monotonic())

    def _count_bad_frame(self) -> None:
        self.bad_frames += 1
        if self.bad_frames >= self.limits.max_bad_frames:
            self.close(CloseCode.TOO_MANY_ERRORS, "too many invalid frames")

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

    async def _command(self, data: str | bytes) -> None:
        message = self._decode(data)
        if message is None:
            return
        try:
            await self.handlers.dispatch(self, message)
        except CommandError as exc:
            self.reply_error(exc.code, exc.message, message.id, exc.retry_after)
        except Exception:
            log.exception("connection %s: %s failed", self.cid, type(message).__name__)
            self.reply_error(
                ErrorCode.INTERNAL_ERROR,
                "the server failed; the command was not applied",
                message.id,
            )

    # ------------------------------------------------------------ life cycle

    def _cancel_timers(self) -> None:
        for timer in (self.deadline_timer, self.flush_timer, self.expiry_timer):
            if timer is not None:
                timer.cancel()
        self.deadline_timer = self.flush_timer = self.expiry_timer = None

    async def _cleanup(self) -> None:
        """Leave fan-out and registry; safe to run more than once, and does the
        work once (a close and then the transport's end both call it)."""
        self._cancel_timers()
        self.hub.connections.discard(self)
        if self.user is None:
            await self.release_slot()
            return
        if self._left:
            return
        self._left = True
        try:
            await self.hub.fanout.unsubscribe(self.user.id, self)
            await self.hub.drop_device(self.user.id, self.cid)
        except Exception:
            log.exception("connection %s: cleanup failed", self.cid)
        self.slot_user = None

    async def leave(self) -> None:
        """The connection is gone (either side closed it): stop, and leave everything."""
        self.closing = True
        await self._cleanup()

    def detach(self) -> tuple[int, str] | None:
        """For a drain's bulk teardown (``Hub.leave_all``): stop the timers and
        return (user, device) to take out of fan-out and registry, or None if
        there is nothing to take out (not logged in, or already out)."""
        self._cancel_timers()
        if self.user is None or self._left:
            return None
        self._left = True
        self.slot_user = None
        return self.user.id, self.cid

    def end(self) -> None:
        """The transport is done with this session (a drain waits for this)."""
        self.finished = True
        self.hub.finished(self)
        if self._finished_waiter is not None and not self._finished_waiter.done():
            self._finished_waiter.set_result(None)

    async def wait_finished(self) -> None:
        if self.finished:
            return
        if self._finished_waiter is None:
            self._finished_waiter = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._finished_waiter)

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
        """The snapshot is sent; deltas that arrived meanwhile follow it.

        ``versions`` maps each friend in the snapshot to the presence version
        it showed, so an older delta still in flight is dropped.
        """
        self.known = versions  # the caller's fresh dict: kept, not copied
        self.held = None
        self.ready = True
        early, self.early = self.early, None
        for event in early or ():
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

    # ------------------------------------------------------------ delivery state

    def ackable(self, seq: int) -> int | None:
        """The seq an ``ack`` may record: only what this session was sent, and
        only a step forward (None: nothing new, so nothing to write)."""
        seq = min(seq, self.last_sent_seq)
        return seq if seq > self.acked_seq else None

    def acked(self, stored: int) -> None:
        """The store recorded this session's ack up to ``stored``."""
        self.acked_seq = max(self.acked_seq, stored)

    async def replay_after_ack(self) -> None:
        """A replay batch waits for the client's ack before the next one is sent."""
        if self.replay_pending and self.acked_seq >= self.last_sent_seq:
            await self.replay()

    def pace_presence(self, message: SetPresence) -> bool:
        """True: apply ``message`` now. False: this window is used up; the
        latest such message applies when it ends (``_flush_presence``)."""
        if self.gate is None:
            limits = self.limits
            self.gate = PresenceGate(
                limits.presence_updates_per_window,
                limits.presence_window_seconds,
                self.hub.monotonic,
            )
        wait = self.gate.offer()
        if wait is None:
            return True
        self.pending_presence = message
        if self.flush_timer is None:
            self.flush_timer = self.hub.clock.call_later(wait, self._flush_presence)
        return False

    def _flush_presence(self) -> None:
        self.flush_timer = None
        message, self.pending_presence = self.pending_presence, None
        if message is None or self.closing:
            return
        assert self.gate is not None
        self.gate.flush()
        self.spawn(self.handlers.apply_presence(self, message))

    def schedule_expiry(self) -> None:
        """A timed status reverts to online on the server when its time passes."""
        if self.expiry_timer is not None:
            self.expiry_timer.cancel()
            self.expiry_timer = None
        until = self.device.until
        if until is None:
            return
        delay = max(until - self.hub.clock_ns() / 1e9, 0.0)
        self.expiry_timer = self.hub.clock.call_later(
            delay, lambda: self.spawn(self._expire(until))
        )

    async def _expire(self, until: int) -> None:
        self.expiry_timer = None
        if self.closing or self.device.until != until:
            return
        assert self.user is not None
        me = self.user.id
        old = self.device
        self.device = DeviceState(
            status=Status.ONLINE,
            activity=old.activity,
            until=None,
            status_stamp=self.hub.clock_ns(),
            activity_stamp=old.activity_stamp,
        )
        await self.hub.store.expire_status(me, until)
        await self.hub.set_device(me, self.cid, self.device)
