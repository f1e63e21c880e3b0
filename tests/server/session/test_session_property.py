"""Random sequences of commands, events and time against sessions, without sockets.

Two friends with up to two devices each send messages, ack, change presence
(some of it timed), send junk, stop reading, drop and reconnect, while a fake
clock jumps forward. The rules that must hold whatever the order:

* every request id a device sent gets exactly one reply while its session is
  open (at most one if the session was closed meanwhile), and no reply
  carries an id that device did not send;
* the message seqs one session receives strictly increase;
* nothing acknowledged is replayed: a device that logs in after its user
  acknowledged seq ``n`` never receives a message with seq ≤ ``n``;
* nothing is lost: every message the server confirmed with ``message_sent``
  reaches some device of its recipient (a fresh one at the end at the latest);
* when every device has gone, nobody is online any more.
"""

from __future__ import annotations

import asyncio
import dataclasses
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from presence_protocol import (
    Ack,
    AnyServerMessage,
    Error,
    ListSessions,
    LoginDev,
    Message,
    MessageSent,
    Ok,
    SendMessage,
    Sessions,
    SetPresence,
    Status,
)
from presence_server import ServerLimits
from tests.support.clock import FakeClock
from tests.support.sessions import Device, befriend, session_hub

USERS = ("alice", "bob")
DEVICES = 2
LIMITS = ServerLimits(
    commands_per_minute=10**6,
    presence_updates_per_window=2,
    presence_window_seconds=5.0,
    send_buffer_bytes=3000,
)
REPLIES = (Ok, MessageSent, Sessions, Error)

user = st.sampled_from(range(len(USERS)))
device = st.sampled_from(range(DEVICES))
operation = st.one_of(
    st.tuples(st.just("send"), user, device, st.integers(1, 300)),
    st.tuples(st.just("ack"), user, device, st.integers(-2, 1)),
    st.tuples(st.just("presence"), user, device, st.sampled_from(list(Status)), st.integers(0, 40)),
    st.tuples(st.just("advance"), st.floats(0.1, 30.0)),
    st.tuples(st.just("connect"), user, device),
    st.tuples(st.just("leave"), user, device),
    st.tuples(st.just("junk"), user, device),
    st.tuples(st.just("list"), user, device),
    st.tuples(st.just("stop_reading"), user, device),
)
operations = st.lists(operation, min_size=5, max_size=40)


@dataclasses.dataclass
class Seen:
    """What one device sent and received."""

    dev: Device
    floor: int
    """Its user's acknowledged seq when it logged in: nothing at or below may come."""
    asked: set[object] = dataclasses.field(default_factory=set)
    replies: Counter[object] = dataclasses.field(default_factory=Counter)
    seqs: list[int] = dataclasses.field(default_factory=list)
    open_after: set[object] = dataclasses.field(default_factory=set)
    """Request ids after whose command the session was still open."""


class World:
    def __init__(self) -> None:
        self.devices: dict[tuple[int, int], Seen] = {}
        self.gone: list[Seen] = []
        self.ids = 0
        self.acked = [0, 0]
        self.confirmed: list[set[str]] = [set(), set()]
        self.received: list[set[str]] = [set(), set()]
        self.user_ids = [0, 0]

    def next_id(self) -> str:
        self.ids += 1
        return f"r{self.ids}"

    def absorb(self) -> None:
        for (u, _), seen in list(self.devices.items()):
            self.absorb_frames(u, seen, seen.dev.wire.take())

    def absorb_frames(self, u: int, seen: Seen, frames: list[AnyServerMessage]) -> None:
        for frame in frames:
            if isinstance(frame, Message):
                assert not seen.seqs or frame.seq > seen.seqs[-1], (seen.seqs, frame.seq)
                assert frame.seq > seen.floor, "an acknowledged message came again"
                seen.seqs.append(frame.seq)
                self.received[u].add(frame.message_id)
            elif isinstance(frame, REPLIES) and frame.id is not None:
                assert frame.id in seen.asked, f"a reply to {frame.id!r}, never asked"
                seen.replies[frame.id] += 1
                if isinstance(frame, MessageSent):
                    self.confirmed[1 - u].add(frame.message_id)

    async def request(self, u: int, seen: Seen, data: object, request_id: str) -> None:
        seen.asked.add(request_id)
        self.absorb_frames(u, seen, await seen.dev.send(data))  # type: ignore[arg-type]
        if not seen.dev.session.closing:
            seen.open_after.add(request_id)
        self.absorb()


async def run(ops: list[tuple[object, ...]]) -> None:
    clock = FakeClock()
    with tempfile.TemporaryDirectory() as tmp:
        async with session_hub(Path(tmp) / "p.sqlite3", clock, limits=LIMITS) as hub:
            world = World()

            async def connect(u: int, d: int) -> Seen:
                seen = Seen(Device(hub), floor=world.acked[u])
                world.devices[(u, d)] = seen
                seen.asked.add("login")
                frames = await seen.dev.send(LoginDev(id="login", login=USERS[u], device=f"d{d}"))
                world.absorb_frames(u, seen, frames)
                world.user_ids[u] = seen.dev.me
                world.absorb()
                return seen

            first = [await connect(0, 0), await connect(1, 0)]
            await befriend(first[0].dev, first[1].dev)
            for seen in first:
                seen.asked.update({"befriend-1", "befriend-2"})

            for op in ops:
                kind = op[0]
                if kind == "advance":
                    clock.advance(float(op[1]))  # type: ignore[arg-type]
                    for seen in world.devices.values():
                        await seen.dev.session.settle()
                    world.absorb()
                    continue
                u, d = int(op[1]), int(op[2])  # type: ignore[call-overload]
                seen_or_none = world.devices.get((u, d))
                if kind == "connect":
                    if seen_or_none is None:
                        await connect(u, d)
                    continue
                if seen_or_none is None:
                    continue
                seen = seen_or_none
                if kind == "leave" or seen.dev.session.closing:
                    await seen.dev.leave()
                    world.absorb()
                    world.gone.append(world.devices.pop((u, d)))
                    continue
                rid = world.next_id()
                if kind == "send":
                    to = world.user_ids[1 - u]
                    message = SendMessage(id=rid, to=to, text="x" * int(op[3]), client_msg_id=rid)  # type: ignore[call-overload]
                    await world.request(u, seen, message, rid)
                elif kind == "ack":
                    if not seen.seqs:
                        continue
                    seq = max(seen.seqs[-1] + int(op[3]), 1)  # type: ignore[call-overload]
                    world.absorb_frames(u, seen, await seen.dev.send(Ack(seq=seq)))
                    world.acked[u] = max(world.acked[u], min(seq, seen.seqs[-1]))
                    world.absorb()
                elif kind == "presence":
                    minutes = int(op[4])  # type: ignore[call-overload]
                    until = int(clock.now) + minutes if minutes else None
                    presence = SetPresence(id=rid, status=Status(str(op[3])), until=until)
                    await world.request(u, seen, presence, rid)
                elif kind == "junk":
                    await world.request(u, seen, f'{{"type":"nope","id":"{rid}"}}', rid)
                elif kind == "list":
                    await world.request(u, seen, ListSessions(id=rid), rid)
                elif kind == "stop_reading":
                    seen.dev.wire.reading = False

            # Everyone leaves; then a fresh device per user collects what is left.
            for key in list(world.devices):
                seen = world.devices.pop(key)
                await seen.dev.leave()
                world.gone.append(seen)
            assert await hub.registry.connected() == [], "someone stayed online"
            for u in range(len(USERS)):
                await connect(u, 9)
                world.gone.append(world.devices.pop((u, 9)))
            for seen in world.gone:
                for asked in seen.asked:
                    assert seen.replies[asked] <= 1, f"{asked} answered {seen.replies[asked]} times"
                    if asked in seen.open_after:
                        assert seen.replies[asked] == 1, f"{asked} never answered"
            for u in range(len(USERS)):
                missing = world.confirmed[u] - world.received[u]
                assert not missing, f"{USERS[u]} never got {sorted(missing)}"


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(ops=operations)
def test_replies_seqs_acks_and_delivery_hold_for_any_sequence(
    ops: list[tuple[object, ...]],
) -> None:
    asyncio.run(run(ops))


@pytest.mark.slow  # hundreds of sequences
@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(ops=st.lists(operation, min_size=20, max_size=80))
def test_many_longer_sequences(ops: list[tuple[object, ...]]) -> None:
    asyncio.run(run(ops))
