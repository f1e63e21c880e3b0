"""The local editor bridge (net/bridge.py) under 20,000 hostile lines.

Lines come from hypothesis strategies over the bridge's own message types
(encoded with msgspec, so types and ranges are often wrong), random bytes,
invalid UTF-8, deep and huge JSON, unknown types, endless lines, floods and
fatal hellos, spread over a thousand short connections (the bridge's rate
limit allows 20 lines at once per connection, so this is how hostile lines
get parsed at all), while one well-behaved editor keeps reporting. Half the
hostile connections speak version 2, whose commands reach a real
``EditorLink`` on a signed-in desktop: only well-formed commands may become
actions (a status of the protocol, a message of 1–500 characters to a
friend), and no GitHub session is taken. The bridge must answer only with
its documented lines and codes, never fail, let every hostile connection go,
and keep serving the good editor fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import statistics
import time
from collections.abc import Hashable
from pathlib import Path

import hypothesis.strategies as st
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings

from presence_desktop.core.activity import ActivityMerger, EditorReport, Source
from presence_desktop.core.api import ConnectionEvents, ConnectionInfo, Link
from presence_desktop.core.state import PresenceState
from presence_desktop.net import bridge_protocol as bp
from presence_desktop.net.bridge import EditorBridge
from presence_desktop.net.editor_link import EditorLink
from presence_protocol import Friend, Presence, SeenStatus, Snapshot, Status, User, limits

pytestmark = [pytest.mark.slow, pytest.mark.qasync]  # the bridge is a QLocalServer

LINES = 20_000
PER_CONNECTION = 20
CONCURRENT = 16
GOOD_EVERY = 0.5
"""Seconds between the good editor's reports (the documented 2 lines/s)."""
PACE = 0.1
"""Seconds each attacker waits between connections, so the attack lasts a few
seconds and the good editor reports all through it."""


def hypothesis_corpus(size: int) -> list[bytes]:
    """Lines built by hypothesis from the bridge message types."""
    corpus: list[bytes] = []
    types = st.one_of(
        st.from_type(bp.Hello),
        st.from_type(bp.ActivityLine),
        st.from_type(bp.Bye),
        st.from_type(bp.SetStatusLine),
        st.from_type(bp.SendMessageLine),
        st.from_type(bp.OpenPopupLine),
        st.from_type(bp.SignInLine),
        st.from_type(bp.GitHubSessionLine),
    )

    @settings(
        max_examples=size,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(types)
    def collect(message: bp.ClientLine) -> None:
        corpus.append(msgspec.json.encode(message))

    collect()
    return corpus


def hostile_line(rng: random.Random, corpus: list[bytes]) -> bytes:
    pick = rng.randrange(14)
    if pick < 5:
        line = rng.choice(corpus)
        if rng.random() < 0.3:  # flip a byte
            i = rng.randrange(len(line))
            line = line[:i] + bytes([rng.randrange(256)]) + line[i + 1 :]
        return line
    if pick == 5:
        return rng.randbytes(rng.randrange(1, 300)).replace(b"\n", b" ")
    if pick == 6:
        return b"\xff\xfe" + rng.randbytes(20).replace(b"\n", b"")
    if pick == 7:
        depth = rng.choice([100, 1000, 5000])
        return b'{"type":"activity","workspace":' + b"[" * depth + b"]" * depth + b"}"
    if pick == 8:
        return b'{"type":"activity","workspace":"' + b"w" * rng.randrange(5000, 20000) + b'"}'
    if pick == 9:
        kind = rng.choice(["teleport", "", "HELLO", "hello ", "error", "0"])
        return json.dumps({"type": kind, "bridge": 1}).encode()
    if pick == 10:
        return json.dumps(
            {"type": "hello", "bridge": rng.choice([0, -1, 3, 99, "1", None])}
        ).encode()
    if pick == 11:
        value = rng.choice([1, None, [], {}, True, 1e308, "x" * 5000])
        return json.dumps({"type": "activity", "focused": value, "kind": value}).encode()
    if pick == 12:
        return b"[1,2,3]" if rng.random() < 0.5 else b'"just a string"'
    return b"\r" * rng.randrange(1, 5) + b"{}"


class Actions:
    """What hostile commands made the desktop do (checked to be well-formed)."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []

    def set_status(self, status: Status, until: int | None) -> None:
        self.calls.append(("set_status", status, until))

    def send_message(self, user_id: int, text: str) -> None:
        self.calls.append(("send_message", user_id, text))

    def sign_in(self) -> None:
        self.calls.append(("sign_in",))


class _NoServer:
    url = "ws://127.0.0.1:9/"


async def _never_accepts(_url: str) -> bool:
    return False


V2_LINES = {
    "hello",
    "error",
    "result",
    "friends",
    "friend",
    "friend_removed",
    "state",
    "sign_in_request",
    "sign_in_result",
}


class Recorder:
    """Every report the bridge hands to the merger, with when it arrived."""

    def __init__(self, merger: ActivityMerger) -> None:
        self.arrived: dict[str, float] = {}
        self.hostile = 0
        real = merger.update

        def update(window: Hashable, report: EditorReport, source: Source = Source.BRIDGE) -> None:
            if report.workspace.startswith("good-"):
                self.arrived[report.workspace] = time.monotonic()
            else:
                self.hostile += 1
            real(window, report, source)

        merger.update = update  # type: ignore[method-assign]


async def read_answers(reader: asyncio.StreamReader) -> list[bytes]:
    data = await asyncio.wait_for(reader.read(), 30)
    return [line for line in data.split(b"\n") if line]


async def test_twenty_thousand_hostile_lines(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    loop = asyncio.get_running_loop()
    merger = ActivityMerger(loop)
    recorder = Recorder(merger)
    address = str(tmp_path / "run" / "bridge.sock")
    bridge = EditorBridge(merger, address)
    bridge.start()
    # A signed-in desktop with one friend (id 2), serving version-2 commands.
    state, connection, actions = PresenceState(), ConnectionEvents(), Actions()
    link = EditorLink(
        bridge,
        state,
        connection,
        actions,
        lambda: _NoServer(),  # type: ignore[arg-type, return-value]
        accepts_editor=_never_accepts,
    )
    link.open_popup = lambda: actions.calls.append(("open_popup",))
    connection.set(ConnectionInfo(Link.ONLINE))
    state.apply_snapshot(
        Snapshot(
            me=User(id=1, login="me"),
            friends=[
                Friend(user=User(id=2, login="pal"), presence=Presence(status=SeenStatus.ONLINE))
            ],
        )
    )

    rng = random.Random(5)
    corpus = hypothesis_corpus(2000)
    lines = [hostile_line(rng, corpus) for _ in range(LINES)]
    batches = [lines[i : i + PER_CONNECTION] for i in range(0, LINES, PER_CONNECTION)]
    answers: list[bytes] = []
    stop = asyncio.Event()

    # The good editor: a report every GOOD_EVERY seconds, each with a new workspace.
    good_reader, good_writer = await asyncio.open_unix_connection(address)
    good_writer.write(b'{"type":"hello","bridge":1,"editor":"Good Code"}\n')
    await good_writer.drain()
    assert json.loads(await good_reader.readline())["type"] == "hello"
    sent_at: dict[str, float] = {}

    async def good_editor() -> None:
        n = 0
        while not stop.is_set():
            name = f"good-{n}"
            sent_at[name] = time.monotonic()
            good_writer.write(
                json.dumps({"type": "activity", "workspace": name, "focused": True}).encode()
                + b"\n"
            )
            await good_writer.drain()
            n += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), GOOD_EVERY)

    async def attacker(mine: list[list[bytes]]) -> None:
        for batch in mine:
            await asyncio.sleep(PACE)
            reader, writer = await asyncio.open_unix_connection(address, limit=2**20)
            try:
                if rng.random() < 0.5:  # past hello, where activity lines are parsed
                    version = rng.choice([1, 2])  # version 2: commands are parsed too
                    writer.write(b'{"type":"hello","bridge":%d,"editor":"Evil"}\n' % version)
                for line in batch:
                    writer.write(line + b"\n")
                if len(batch[-1]) % 7 == 0:
                    writer.write(b"x" * (bp.MAX_LINE_BYTES + 10))  # a line that never ends
                await writer.drain()
                writer.write_eof()
                answers.extend(await read_answers(reader))
            except (ConnectionError, TimeoutError):
                pass
            finally:
                writer.close()

    started = time.monotonic()
    good = asyncio.ensure_future(good_editor())
    await asyncio.gather(*(attacker(batches[i::CONCURRENT]) for i in range(CONCURRENT)))
    elapsed = time.monotonic() - started
    stop.set()
    await good

    # Every answer is a documented line: the bridge's hello, or an error with a known code.
    codes: dict[str, int] = {}
    for raw in answers:
        answer = json.loads(raw)
        assert answer["type"] in V2_LINES, answer
        if answer["type"] == "error":
            assert answer["code"] in {c.value for c in bp.ErrorCode}, answer
            codes[answer["code"]] = codes.get(answer["code"], 0) + 1
    assert codes.get("bad_line") and codes.get("invalid") and codes.get("line_too_long")
    # Only well-formed commands became actions; no GitHub session was taken.
    for call in actions.calls:
        if call[0] == "set_status":
            assert isinstance(call[1], Status) and (call[2] is None or call[2] > time.time())
        elif call[0] == "send_message":
            assert call[1] == 2 and 1 <= len(str(call[2])) <= limits.MAX_MESSAGE_CHARS
        else:
            assert call[0] in ("open_popup",), call
    assert not link.waiting_for_editor

    # The good editor was served throughout, quickly.
    delays = [recorder.arrived[w] - sent_at[w] for w in sent_at if w in recorder.arrived]
    assert len(delays) >= len(sent_at) - 1, (len(delays), len(sent_at))
    assert max(delays) < 1.0, max(delays)
    assert bridge.listening and bridge.connection_count == 1  # every hostile connection let go
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    good_writer.close()
    await link.aclose()
    bridge.close()
    print(
        f"\nbridge fuzz: {LINES} lines over {len(batches)} connections in {elapsed:.1f}s, "
        f"{len(answers)} answers {codes}, {recorder.hostile} hostile reports accepted, "
        f"{len(actions.calls)} hostile commands carried out, "
        f"good editor: {len(delays)} reports, median {statistics.median(delays) * 1000:.1f} ms, "
        f"max {max(delays) * 1000:.1f} ms"
    )
