"""Many callers' Redis commands, written down one connection in one go per turn, pipelined.

The registry runs one script per presence change and the fan-out one per
event. Sent one by one through redis-py's client, each call costs the
instance more Python than Redis spends on it: the script wrapper, a pool
checkout under the pool's condition, the retry wrapper, a fresh timeout
context (the profile of one of three instances put half of the registry's
10 % there). ``RedisBatch`` queues commands from any number of callers;
once per event loop turn in which something was queued, everything queued
goes down a connection of its own as one packed buffer, and a reader task
hands out the replies in order: a burst costs one write and no per-call
machinery. The buffer is packed here (``pack``) rather than by redis-py,
which spends more than twice the CPU on it.

Pipelined: a write does not wait for the replies of the one before it.
When it did (one write in flight at a time), an event queued while the
previous write's round trip was under way waited out that round trip
before it even left; with three instances, Redis and the clients sharing
two cores, that round trip was 3.5 ms at the median and 40 ms at p99, and
it was most of what a friend on another instance waited beyond one on the
same instance (docs/decisions.md, "Redis writes are pipelined").

Order: commands reach Redis in the order they were queued, on one
connection, so Redis runs them in that order. The registry relies on it
(two changes of one user, queued in order under the user's lock, are
applied in order) and so does the fan-out (an instance's events leave in
publish order).

Failures: an error reply (``ResponseError``, e.g. ``NOSCRIPT``) belongs to its
command only; the other replies of the write are still read and handed out.
A connection failure, or a write whose replies take longer than the
timeout once the replies before them are in, fails every command written on
that connection and still waiting; the connection is closed and opened
again by the next write.
The batch never marks the link down itself: callers do, as they did for
direct calls, so there is still one recovery path (``RedisLink``). When
the link comes up again it closes every connection of the pool, this one
included, since after a Redis restart they are all dead; the next write
reconnects it.

A caller cancelled while waiting does not take its command out of the
write: the command was queued, and may already be in Redis.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any, Union

import hiredis
from redis._parsers.hiredis import NOT_ENOUGH_DATA
from redis.exceptions import RedisError, ResponseError

log = logging.getLogger(__name__)

_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)
"""``redis_link.REDIS_ERRORS`` (which imports this module)."""

BATCH_COMMANDS = 512
"""Commands in one write at most; a longer queue is written in several."""

Command = Sequence[bytes | str | int | float]

WRITE_BUDGET_SECONDS = 0.005
"""A turn that keeps queueing writes what it queued so far once the oldest
command has waited this long (as ``edge.transport.FLUSH_BUDGET_SECONDS``
bounds its frames to clients), instead of holding it to the turn's end."""

READ_BYTES = 1 << 16
"""Read at most this much of a connection per wake-up (redis-py reads 64 KiB too)."""


def hiredis_parts(connection: Any) -> tuple[hiredis.Reader, asyncio.StreamReader] | None:
    """A redis-py connection's hiredis reader and socket stream, or None when
    redis-py reads it some other way (then its own ``read_response`` it is).

    These are redis-py's own objects (``_AsyncHiredisParser``), not copies:
    replies it has parsed already are still in the reader, and bytes it has
    not read are still in the stream, so reading through them directly keeps
    the connection in step. Reading replies (the batch's) or pushes (the
    fan-out's subscription) this way skips redis-py's per-reply machinery.
    tests/cluster/test_redis_receive.py fails if a redis-py upgrade moves them.
    """
    parser = getattr(connection, "_parser", None)
    reader = getattr(parser, "_reader", None)
    stream = getattr(parser, "_stream", None)
    if isinstance(reader, hiredis.Reader) and isinstance(stream, asyncio.StreamReader):
        return reader, stream
    return None


async def read_replies(connection: Any, count: int) -> list[Any]:
    """The next ``count`` replies of ``connection``, error replies as
    ``ResponseError`` values (what redis-py's reader makes of them).

    Through the connection's hiredis reader when it has one: every reply
    already read is taken in one go, the socket is read only when a reply
    is incomplete. Otherwise one ``read_response`` per reply.
    """
    parts = hiredis_parts(connection)
    replies: list[Any] = []
    if parts is None:
        for _ in range(count):
            try:
                # No timeout per reply (``inf``: no timer set up and torn down
                # each time); the caller's timeout covers them all.
                replies.append(await connection.read_response(timeout=math.inf))
            except ResponseError as error:
                replies.append(error)  # this command's; the stream is still in step
        return replies
    reader, stream = parts
    while len(replies) < count:
        reply = reader.gets()
        if reply is NOT_ENOUGH_DATA:
            data = await stream.read(READ_BYTES)
            if not data:
                raise ConnectionError("redis closed the connection")
            reader.feed(data)
        else:
            replies.append(reply)
    return replies


def _argument(arg: bytes | str | int | float) -> bytes:
    if isinstance(arg, bytes):
        return arg
    if isinstance(arg, str):
        return arg.encode()
    if isinstance(arg, int | float) and not isinstance(arg, bool):
        return repr(arg).encode()
    raise TypeError(f"a Redis argument must be bytes, str, int or float: {arg!r}")


class Packed(bytes):
    """One whole command already in RESP form (``Template``): ``pack`` copies it as is."""

    __slots__ = ()


def pack(commands: Sequence[Command | Packed]) -> bytes:
    """Commands as one RESP buffer: the bytes redis-py's ``pack_commands``
    makes of them (tests check that over random commands), for less than
    half its CPU (7.6 against 17.4 us for a ROUTE call, measured under load):
    no encoder object, no buffer splitting for large arguments, one join.
    Arguments are bytes, str (UTF-8), int or float (``repr``, as redis-py);
    a ``Packed`` command is taken as it is."""
    out: list[bytes] = []
    for command in commands:
        if type(command) is Packed:
            out.append(command)
            continue
        out.append(b"*%d\r\n" % len(command))
        for arg in command:
            data = _argument(arg)
            out.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(out)


class Template:
    """A command whose arguments are partly the same every time, packed once.

    ``Template(b"EVALSHA", sha, 0, None, None)`` leaves two slots (``None``);
    calling it with two bytes values gives the whole command as ``pack``
    would make it: the fixed arguments are packed already, each value adds
    its length line and itself, one join for the whole (0.8 µs for a
    ``ROUTE``, against 1.4 µs for one ``%`` format of the whole command).
    The fan-out's ``ROUTE`` and the registry's ``PUT`` (one of each per
    presence change) go this way.
    """

    __slots__ = ("_after", "_head", "slots")

    def __init__(self, *args: bytes | str | int | float | None) -> None:
        pieces = [b"*%d\r\n" % len(args)]
        fixed: list[bytes] = []
        for arg in args:
            if arg is None:
                fixed.append(b"".join(pieces))
                pieces = []
            else:
                data = _argument(arg)
                pieces.append(b"$%d\r\n%b\r\n" % (len(data), data))
        fixed.append(b"".join(pieces))
        self._head = fixed[0]
        """Everything before the first slot."""
        self._after = tuple(b"\r\n" + piece for piece in fixed[1:])
        """After each slot's value: its line end, then the fixed arguments up to the next slot."""
        self.slots = len(self._after)

    def __call__(self, *values: bytes) -> Packed:
        if len(values) != self.slots:
            raise TypeError(f"this command has {self.slots} open arguments, got {len(values)}")
        after = self._after
        out = [self._head]
        for i, value in enumerate(values):
            out.append(b"$%d\r\n" % len(value))
            out.append(value)
            out.append(after[i])
        return Packed(b"".join(out))


def replies_of(outcome: Any) -> list[Any]:
    """The replies in a ``submit`` future's result; raises the write's error."""
    if isinstance(outcome, _Failed):
        raise outcome.error
    replies: list[Any] = outcome
    return replies


class _Failed:
    """A whole write failed; what its waiting callers raise.

    Kept as a value rather than set as the future's exception, so that a
    caller that was cancelled meanwhile leaves no "exception never
    retrieved" behind.
    """

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class _Then:
    """The callback of a caller that reads its replies without waiting (``RedisBatch.then``)."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[list[Any] | BaseException], None]) -> None:
        self.fn = fn


_Target = Union["asyncio.Future[list[Any] | _Failed]", _Then, Callable[[BaseException], None]]
"""Who hears of a queued write: a waiting caller's future, the reply callback
of a caller that does not wait (``RedisBatch.then``), or the error callback
of one that only needs to hear of failures (``RedisBatch.send``)."""
_Entry = tuple[Sequence[Command | Packed], _Target]


def _settle(target: _Target, outcome: list[Any] | _Failed) -> None:
    if isinstance(target, asyncio.Future):
        if not target.done():
            target.set_result(outcome)
        return
    if isinstance(target, _Then):
        try:
            target.fn(outcome.error if isinstance(outcome, _Failed) else outcome)
        except Exception:
            log.exception("a redis write's reply callback failed")
        return
    if isinstance(outcome, _Failed):
        error: BaseException | None = outcome.error
    else:
        error = next((r for r in outcome if isinstance(r, ResponseError)), None)
    if error is not None:
        try:
            target(error)
        except Exception:
            log.exception("a redis write's error callback failed")


class RedisBatch:
    def __init__(self, pool: Any, timeout: float) -> None:
        self._pool = pool
        """The link's connection pool. The batch takes one connection out of it
        for good, so that closing the pool (``Redis.aclose``, or the link's
        fresh start after an outage) closes it too."""
        self._timeout = timeout
        """For a connection, and for one write's replies once the replies of
        the writes before it are read (as for one command before; ``_check``)."""
        self._queue: collections.deque[_Entry] = collections.deque()
        """Queued, not yet written."""
        self._queued = 0
        self._in_flight: collections.deque[list[_Entry]] = collections.deque()
        """Written on the current connection, replies not yet read: one list per write."""
        self._generation = 0
        """The current connection's number: a reader or a failure of an
        older connection must not touch what was written on a newer one."""
        self.budget = WRITE_BUDGET_SECONDS
        """``WRITE_BUDGET_SECONDS``; tests that count writes per burst lift it."""
        self._write_scheduled = False
        self._opened = 0.0
        """When the first command of the coming write was queued."""
        self._connecting: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._front_since = 0.0
        """Since when the oldest write in flight has been waiting for its replies
        (written, or the replies before it read, whichever came later)."""
        self._watchdog: asyncio.TimerHandle | None = None
        self._breaking: asyncio.Task[None] | None = None
        self._expired = False
        """Set when the watchdog cancels the reader: a timeout, not a close."""
        self._conn: Any = None
        self._closed = False
        self.writes = 0
        """Writes so far (tests and benchmarks compare it with the commands)."""
        self.commands = 0

    async def call(self, *command: bytes | str | int | float) -> Any:
        """One command's reply; raises its ``ResponseError``, or the write's error."""
        return await self.call_packed(command)

    async def call_packed(self, command: Command | Packed) -> Any:
        """``call`` of a command given whole (a ``Template``'s, or a tuple)."""
        reply = (await self.execute([command]))[0]
        if isinstance(reply, ResponseError):
            raise reply
        return reply

    async def execute(self, commands: Sequence[Command | Packed]) -> list[Any]:
        """Every command's reply, in order, error replies as ``ResponseError``
        values; raises (a ``redis_link.REDIS_ERRORS`` member) if the write failed."""
        if not commands:
            return []
        # No shield: a caller cancelled while waiting cancels its own future
        # only (settling skips futures that are done); its command is
        # written all the same, as documented above.
        return replies_of(await self.submit(commands))

    def submit(self, commands: Sequence[Command | Packed]) -> asyncio.Future[Any]:
        """Queue ``commands`` now (in order with everything queued before) and
        return the future of their outcome, for ``replies_of`` (``execute``
        awaits it; the fan-out's durable events await it themselves)."""
        future: asyncio.Future[list[Any] | _Failed] = asyncio.get_running_loop().create_future()
        self._enqueue(commands, future)
        return future

    def send(
        self, commands: Sequence[Command | Packed], on_error: Callable[[BaseException], None]
    ) -> None:
        """Queue ``commands`` for a caller that does not wait (in order with
        everything queued before, as ``submit``). ``on_error`` is called with
        the write's error, or the first error reply among them; nothing is
        called when all went well. The fan-out's presence deltas go this
        way: no future, no callback scheduled per event."""
        self._enqueue(commands, on_error)

    def then(
        self,
        commands: Sequence[Command | Packed],
        on_outcome: Callable[[list[Any] | BaseException], None],
    ) -> None:
        """Queue ``commands`` for a caller that does not wait but reads the
        replies (in order with everything queued before, as ``submit``).
        ``on_outcome`` gets the replies (error replies as ``ResponseError``
        values) or the write's error, in the batch's task, once the replies
        are read. The registry's presence writes go this way: the instance
        already knows their answer, and only a surprise needs acting on
        (``RedisRegistry.put``)."""
        self._enqueue(commands, _Then(on_outcome))

    def _enqueue(self, commands: Sequence[Command | Packed], target: _Target) -> None:
        """Queue for the next write (at the end of this turn); a closed batch fails at once."""
        if self._closed:
            _settle(target, _Failed(ConnectionError("the redis batch is closed")))
            return
        self._queue.append((commands, target))
        self._queued += len(commands)
        if not self._write_scheduled:
            self._write_scheduled = True
            self._opened = time.monotonic()
            asyncio.get_running_loop().call_soon(self._write_soon)
        elif time.monotonic() - self._opened >= self.budget:
            # A long turn (a backlog after the process had no core): what it
            # queued so far goes now, not when the whole backlog is done.
            self._opened = time.monotonic()
            self._write()

    # ------------------------------------------------------------ writing

    def _take(self) -> tuple[list[_Entry], list[Command | Packed]]:
        """The oldest queued entries, up to one write's worth of commands."""
        batch: list[_Entry] = []
        count = 0
        queue = self._queue
        while queue and (not batch or count + len(queue[0][0]) <= BATCH_COMMANDS):
            entry = queue.popleft()
            batch.append(entry)
            count += len(entry[0])
        self._queued -= count
        return batch, [c for cmds, _ in batch for c in cmds]

    def _write_soon(self) -> None:
        self._write_scheduled = False
        self._write()

    def _write(self) -> None:
        """Write everything queued, now, without waiting for earlier replies.

        Called once per turn in which something was queued (and inside a
        turn that has queued for ``WRITE_BUDGET_SECONDS``): what the turn
        queued shares one write. Replies are read by ``_read`` in write
        order; a write never waits for the round trip of the one before it
        (which, with several processes on a busy core, was milliseconds
        during which the next events sat in the queue).
        """
        if self._closed or self._connecting is not None or not self._queue:
            return  # the connecting task writes the queue once connected
        conn = self._conn
        if conn is None or not conn.is_connected:
            self._connecting = asyncio.get_running_loop().create_task(
                self._connect(), name="redis-batch-connect"
            )
            return
        writer = conn._writer  # redis-py's StreamWriter (``send_packed_command`` writes to it)
        if not self._in_flight:
            loop = asyncio.get_running_loop()
            self._front_since = loop.time()
            if self._watchdog is None:
                self._watchdog = loop.call_at(self._front_since + self._timeout, self._check)
        while self._queue:
            batch, commands = self._take()
            writer.write(pack(commands))
            self._in_flight.append(batch)
            self.writes += 1
            self.commands += len(commands)
        if self._reader is None:
            self._start_reader()

    async def _connect(self) -> None:
        """(Re)connect the batch's connection, then write the queue.

        Whatever was written on the previous connection and is still
        unanswered fails first: that connection is gone, and its replies
        with it. A failure to connect fails what is queued (callers retry
        or mark the link down, as for a failed write).
        """
        try:
            self._fail_in_flight(ConnectionError("the redis connection was lost"))
            try:
                async with asyncio.timeout(self._timeout):
                    if self._conn is None:
                        self._conn = await self._pool.get_connection()
                    if not self._conn.is_connected:
                        await self._conn.connect()
            except _ERRORS as exc:
                self._fail_queued(exc)
                return
            self._generation += 1
        finally:
            if self._connecting is asyncio.current_task():
                self._connecting = None
        self._write()

    # ------------------------------------------------------------ reading

    async def _read(self, conn: Any, generation: int) -> None:
        """Hand out replies, one write's at a time and in write order, while
        writes on connection ``generation`` wait for them."""
        self._expired = False
        try:
            while self._in_flight and generation == self._generation:
                batch = self._in_flight[0]
                count = sum(len(cmds) for cmds, _ in batch)
                try:
                    # No timeout context per read (a timer in the loop's heap
                    # per write): the watchdog (``_check``) times it out.
                    replies = await read_replies(conn, count)
                except asyncio.CancelledError:
                    if not self._expired:
                        raise  # closed
                    self._expired = False
                    task = asyncio.current_task()
                    if task is not None:
                        task.uncancel()
                    if generation == self._generation:
                        await self._break(conn, self._timed_out())
                    return
                except _ERRORS as exc:
                    if generation == self._generation:
                        await self._break(conn, exc)
                    return
                except Exception as exc:  # a reply the parser could not read
                    if generation == self._generation:
                        error = ConnectionError(f"unreadable reply from redis: {exc!r}")
                        await self._break(conn, error)
                    return
                if generation != self._generation:
                    return  # that connection failed meanwhile; its writes were failed
                self._in_flight.popleft()
                if self._in_flight:
                    self._front_since = asyncio.get_running_loop().time()
                start = 0
                for cmds, target in batch:
                    _settle(target, replies[start : start + len(cmds)])
                    start += len(cmds)
        finally:
            if self._reader is asyncio.current_task():
                self._reader = None
                if self._in_flight and not self._closed:
                    # Writes of a newer connection arrived while this reader
                    # was leaving (or a reply callback queued some): read them.
                    self._start_reader()

    def _check(self) -> None:
        """The watchdog: a write whose replies have not all come within the
        timeout of its turn to be read (as for one command before) fails
        the connection and every write on it. One timer per timeout period
        while writes wait, however many writes there are."""
        self._watchdog = None
        if not self._in_flight or self._closed:
            return
        loop = asyncio.get_running_loop()
        deadline = self._front_since + self._timeout
        if loop.time() < deadline:
            self._watchdog = loop.call_at(deadline, self._check)
            return
        reader = self._reader
        if reader is not None and not reader.done():
            self._expired = True
            reader.cancel()
        elif self._conn is not None:  # no reader (not expected): out of step all the same
            self._breaking = loop.create_task(self._break(self._conn, self._timed_out()))

    def _timed_out(self) -> TimeoutError:
        return TimeoutError(f"redis did not answer within {self._timeout} s")

    def _start_reader(self) -> None:
        conn = self._conn
        if conn is not None and conn.is_connected:
            self._reader = asyncio.get_running_loop().create_task(
                self._read(conn, self._generation), name="redis-batch"
            )
        else:
            self._fail_in_flight(ConnectionError("the redis connection was lost"))

    async def _break(self, conn: Any, error: BaseException) -> None:
        """The connection failed: every write on it fails, and it is closed
        (replies may be left unread: it is out of step); the next write
        connects again."""
        self._generation += 1
        self._fail_in_flight(error)
        await self._disconnect(conn)

    # ------------------------------------------------------------ failing

    def _fail_in_flight(self, error: BaseException) -> None:
        in_flight, self._in_flight = self._in_flight, collections.deque()
        failed = _Failed(error)
        for batch in in_flight:
            for _, target in batch:
                _settle(target, failed)

    def _fail_queued(self, error: BaseException) -> None:
        queue, self._queue = self._queue, collections.deque()
        self._queued = 0
        failed = _Failed(error)
        for _, target in queue:
            _settle(target, failed)

    @staticmethod
    async def _disconnect(conn: Any) -> None:
        with contextlib.suppress(*_ERRORS, asyncio.CancelledError):
            await conn.disconnect(nowait=True)

    async def close(self) -> None:
        self._closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        for task in (self._connecting, self._reader):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._connecting = self._reader = None
        error = ConnectionError("the redis batch was closed")
        self._fail_in_flight(error)
        self._fail_queued(error)
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._disconnect(conn)
            with contextlib.suppress(*_ERRORS):
                await self._pool.release(conn)
