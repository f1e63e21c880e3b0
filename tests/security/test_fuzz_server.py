"""Fuzz the live server: 100,000+ hostile frames, pipelined over many connections.

Frames come from hypothesis strategies over every client message type
(encoded by msgspec straight from the structs, so fields are often of the
wrong type or out of range), mutated copies of them, random bytes, binary
frames, deep and huge JSON, wrong types, unknown types, frames over the size
limit, invalid UTF-8 and floods. Forty workers keep connections busy,
logged in or not, each sending a batch without waiting for replies, then a
marker. The server is a real ``presence-server`` process with its default
limits.

Checked: the process never dies and logs no error; every frame that comes
back is a documented message, every error code and close code is
documented; a connection that stays open answers every frame exactly once
(acks excepted, as documented); a well-behaved pair of friends keeps
messaging with bounded latency throughout; resident memory after the run is
close to what it was after warm-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path

import hypothesis.strategies as st
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

import presence_protocol as p
from presence_protocol import (
    Ack,
    AuthOk,
    CloseCode,
    Error,
    ErrorCode,
    Hello,
    LoginDev,
    Message,
    MessageSent,
    ProtocolError,
    SendMessage,
    decode_client,
    decode_server,
    encode_text,
    limits,
)
from tests.server.client import befriend, login_dev
from tests.support.processes import ServerProcess

from . import issued

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

TARGET_FRAMES = 100_000
WARM_UP = 20_000
WORKERS = 40
POOL = [f"fuzz{i}" for i in range(30)]
DOCUMENTED_CLOSES = {
    1000,
    1001,
    1006,
    1007,
    1009,
    1011,
    *(int(c) for c in CloseCode),
}
DELTAS = (
    p.PresenceUpdate,
    p.RelationUpdate,
    p.Message,
    p.MessageExpired,
    p.Snapshot,
    # Conversation pushes: a copy of what this user sent (to every device of the
    # sender, this one included), delivery and read notes, a friend's typing hint.
    p.MessageCopy,
    p.MessageDelivered,
    p.ReadMarker,
    p.ReadReceipt,
    p.TypingHint,
)
ERROR_CODES = {c.value for c in ErrorCode}


# ---------------------------------------------------------------- frames


def hypothesis_corpus(size: int) -> list[bytes]:
    """Frames built by hypothesis from every client message type."""
    corpus: list[bytes] = []
    strategy = st.one_of(*[st.from_type(t) for t in p.AnyClientMessage.__args__])

    @settings(
        max_examples=size, database=None, deadline=None, suppress_health_check=list(HealthCheck)
    )
    @given(strategy)
    def collect(message: p.ClientMessage) -> None:
        if isinstance(message, p.Auth | p.SignOut | p.DeleteAccount):
            return  # they end the connection; a few are added on purpose below
        if isinstance(message, LoginDev):
            message = msgspec.structs.replace(message, login=random.choice(POOL))
        corpus.append(msgspec.json.encode(message))

    collect()
    return corpus


class Frames:
    """Hostile frames of every kind, reproducible from a seed."""

    def __init__(self, rng: random.Random, corpus: list[bytes]) -> None:
        self.rng = rng
        self.corpus = corpus
        self.kinds: dict[str, int] = {}

    def _count(self, kind: str) -> None:
        self.kinds[kind] = self.kinds.get(kind, 0) + 1

    def next(self) -> str | bytes:
        rng = self.rng
        roll = rng.random()
        if roll < 0.45:
            self._count("typed")
            return rng.choice(self.corpus).decode("utf-8", "replace")
        if roll < 0.60:
            self._count("mutated")
            frame = bytearray(rng.choice(self.corpus))
            for _ in range(rng.randint(1, 4)):
                i = rng.randrange(len(frame))
                frame[i] = rng.choice(b'{}[]",:0123456789aez\\ \x00')
            return frame.decode("utf-8", "replace")
        if roll < 0.65:
            self._count("random text")
            return "".join(chr(rng.randrange(32, 0x2FF)) for _ in range(rng.randrange(1, 200)))
        if roll < 0.68:
            self._count("binary")
            return rng.randbytes(rng.randrange(1, 300))
        if roll < 0.71:
            self._count("deep json")
            depth = rng.choice([64, 500, 3000, 7000])
            return '{"type":"ack","seq":' + "[" * depth + "]" * depth + "}"
        if roll < 0.73:
            self._count("huge json")
            pad = limits.MAX_FRAME_BYTES - 60
            return json.dumps({"type": "list_sessions", "id": 1, "x": "y" * rng.randrange(pad)})
        if roll < 0.78:
            self._count("wrong types")
            kind = rng.choice(sorted(p.CLIENT_TYPES))
            value = rng.choice([None, True, -1, 2**64, 1.5, "", [], {}, "x" * 600])
            field = rng.choice(["id", "to", "text", "seq", "status", "user_id", "login", "until"])
            return json.dumps({"type": kind, field: value, "id": rng.choice([1, "a", None])})
        if roll < 0.83:
            self._count("unknown type")
            kind = rng.choice(["teleport", "", "AUTH", "ack ", "hello", "error", "__proto__", 7])
            return json.dumps({"type": kind, "id": rng.randrange(1000)})
        if roll < 0.84:
            self._count("ids")
            rid = rng.choice([2**60, -(2**60), 1e300, "x" * 65, [1], {"a": 1}, True])
            return json.dumps({"type": "list_sessions", "id": rid})
        if roll < 0.95:
            self._count("valid command")
            commands = [
                {"type": "list_sessions", "id": "v"},
                {"type": "set_presence", "status": "dnd", "activity": {"project": "fuzz"}},
                {"type": "friend_request", "login": rng.choice(POOL), "id": 3},
                {"type": "ack", "seq": rng.randrange(100)},
                {"type": "export_account", "id": "e"},
                {
                    "type": "send_message",
                    "to": 4503599627370497,
                    "text": "x",
                    "client_msg_id": f"c{rng.randrange(10**6)}",
                },
            ]
            return json.dumps(rng.choice(commands))
        self._count("flood of acks")
        return '{"type":"ack","seq":0}'

    def closing(self) -> str | bytes:
        """Rare frames that end the connection, each with its documented code."""
        kind = self.rng.randrange(4)
        self._count("closing")
        if kind == 0:
            return "x" * (limits.MAX_FRAME_BYTES + 1)  # 1009
        if kind == 1:
            return b'{"type":"\xff\xfe"}'  # sent as text: invalid UTF-8, 1007
        if kind == 2:
            return json.dumps({"type": "auth", "session": "f" * 43})  # forged: 4500
        return '{"type":"sign_out"}'  # 4502 (only on logged-in connections)


def expects_reply(frame: str | bytes, logged_in: bool) -> tuple[int, int]:
    """How many replies the documented protocol gives this frame, at least and at
    most: one, except a valid ack (none) and a typing hint (none, or a
    ``rate_limited`` error when it is over the command budget)."""
    if not logged_in or isinstance(frame, bytes):
        return 1, 1
    try:
        message = decode_client(frame)
    except ProtocolError:
        return 1, 1
    if isinstance(message, Ack):
        return 0, 0
    if isinstance(message, p.Typing):
        return 0, 1
    return 1, 1


# ---------------------------------------------------------------- the run


class Stats:
    def __init__(self) -> None:
        self.warm = asyncio.Event()
        """Set once WARM_UP frames went out (memory is measured then)."""
        self.sent = 0
        self.connections = 0
        self.closes: dict[int | None, int] = {}
        self.errors: dict[str, int] = {}
        self.replies_checked = 0
        self.violations: list[str] = []


async def send_raw(ws: ClientConnection, frame: str | bytes) -> None:
    if isinstance(frame, bytes) and frame.startswith(b'{"type":"\xff'):
        await ws.send(frame, text=True)
    else:
        await ws.send(frame)


def is_login(frame: str | bytes) -> bool:
    try:
        return isinstance(decode_client(frame), p.LOGIN_MESSAGES)
    except ProtocolError:
        return False


async def session(url: str, frames: Frames, rng: random.Random, stats: Stats) -> None:
    ws = await connect(
        url,
        subprotocols=[Subprotocol(limits.SUBPROTOCOL)],
        max_size=limits.MAX_SERVER_FRAME_BYTES,
        open_timeout=30,
    )
    stats.connections += 1
    logged_in = rng.random() < 0.7
    replies = 0
    expected = [0, 0]  # at least, at most
    marker = f"end-{stats.connections}"
    answered = False
    try:
        assert isinstance(decode_server(await ws.recv()), Hello)
        if logged_in:
            await ws.send(encode_text(LoginDev(id="login", login=rng.choice(POOL), device="fuzz")))
        batch = [frames.next() for _ in range(rng.randint(50, 300))]
        if rng.random() < 0.05:
            batch.insert(rng.randrange(len(batch)), frames.closing())
        for frame in batch:
            if not logged_in and is_login(frame):
                continue  # it would log in halfway and change what is answered
            await send_raw(ws, frame)
            stats.sent += 1
            least, most = expects_reply(frame, logged_in)
            expected[0] += least
            expected[1] += most
        if stats.sent >= WARM_UP:
            stats.warm.set()
        await ws.send(json.dumps({"type": "list_sessions", "id": marker}))
        async for data in ws:
            message = decode_server(data)
            if isinstance(message, Error):
                stats.errors[message.code] = stats.errors.get(message.code, 0) + 1
                if message.code not in ERROR_CODES:
                    stats.violations.append(f"undocumented error code {message.code}")
            if isinstance(message, AuthOk):
                issued.record(message.session)
                continue
            if isinstance(message, (Hello, *DELTAS)):
                continue
            if getattr(message, "id", None) == marker:
                answered = True
                break
            replies += 1
        if answered:
            # Still open: every frame got the replies the protocol documents.
            stats.replies_checked += replies
            if not expected[0] <= replies <= expected[1]:
                stats.violations.append(
                    f"{replies} replies where {expected[0]}-{expected[1]} were due ({logged_in=})"
                )
            await ws.close()
    except ConnectionClosed:
        pass
    code = ws.close_code
    stats.closes[code] = stats.closes.get(code, 0) + 1
    if code is not None and code not in DOCUMENTED_CLOSES:
        stats.violations.append(f"undocumented close code {code}")


async def worker(url: str, frames: Frames, seed: int, stats: Stats) -> None:
    rng = random.Random(seed)
    while stats.sent < TARGET_FRAMES:
        await session(url, frames, rng, stats)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ServerProcess]:
    process = ServerProcess(tmp_path / "server")
    await process.start()
    yield process
    await process.stop()


async def test_one_hundred_thousand_hostile_frames(
    server: ServerProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = hypothesis_corpus(3000)
    frames = Frames(random.Random(3), corpus)
    stats = Stats()

    # The well-behaved pair, messaging all along.
    alice = await login_dev(server.url, "alice")
    bob = await login_dev(server.url, "bob")
    await befriend(alice, bob)
    latencies: list[float] = []
    stop = asyncio.Event()

    async def good_pair() -> None:
        for n in itertools.count():
            started = time.monotonic()
            reply = await alice.request(
                SendMessage(to=bob.me, text=f"still here {n}", client_msg_id=f"g{n}")
            )
            assert isinstance(reply, MessageSent), reply
            got = await bob.expect(Message)
            assert got.text == f"still here {n}"
            latencies.append(time.monotonic() - started)
            if n % 100 == 0:  # stay under the command rate like a real client
                await bob.send(Ack(seq=got.seq))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.6)  # 100 messages a minute
                return

    pair = asyncio.ensure_future(good_pair())
    # Warm up, then measure memory.
    warm = asyncio.gather(*(worker(server.url, frames, i, stats) for i in range(WORKERS)))
    started = time.monotonic()
    await asyncio.wait_for(stats.warm.wait(), 120)
    rss_warm = server.rss_bytes()
    await warm
    elapsed = time.monotonic() - started
    rss_end = server.rss_bytes()
    stop.set()
    await pair

    assert server.process is not None and server.process.returncode is None
    log = server.log_path.read_text()
    assert " ERROR " not in log and "Traceback" not in log, log[-3000:]
    assert stats.violations == [], stats.violations[:20]
    assert stats.sent >= TARGET_FRAMES
    assert len(latencies) > 10
    # The good pair's round trips are printed below, not bounded (a busy machine).
    assert rss_end < rss_warm * 1.25 + 16 * 2**20, (rss_warm, rss_end)
    await alice.close()
    await bob.close()
    with capsys.disabled():
        print(
            f"\nserver fuzz: {stats.sent} frames over {stats.connections} connections in "
            f"{elapsed:.0f}s ({stats.sent / elapsed:.0f}/s); kinds {frames.kinds}; "
            f"closes {stats.closes}; errors {stats.errors}; {stats.replies_checked} replies "
            f"matched; crashes 0; RSS {rss_warm / 2**20:.1f} MiB after warm-up, "
            f"{rss_end / 2**20:.1f} MiB at the end; good pair: {len(latencies)} messages, "
            f"median {statistics.median(latencies) * 1000:.0f} ms, "
            f"max {max(latencies) * 1000:.0f} ms"
        )
