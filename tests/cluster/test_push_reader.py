"""The bulk reader of ``RedisFanout._listen`` against any cut of the byte stream.

No Redis here (default tier): the subscription connection is stood in for by
a real ``asyncio.StreamReader`` and a real hiredis reader, configured as
redis-py configures its own, and the pushes Redis would send are fed in
chunks cut at random places. Whatever the cuts, every message reaches each
local recipient once, in the order sent, with its frame bytes intact; a
subscription confirmation or an undecodable message changes nothing; the
stream's end takes the link down, as a closed connection does.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import hiredis
from hypothesis import given, settings
from hypothesis import strategies as st
from redis._parsers.hiredis import NOT_ENOUGH_DATA

from presence_server.cluster.fanout import Event
from presence_server.cluster.redis_fanout import RedisFanout, _pushes, encode_message
from presence_server.cluster.redis_link import RedisLink

HANG_GUARD = 30.0
CHANNEL = b"presence:i:rx"


def resp(*parts: bytes) -> bytes:
    """A RESP2 array of bulk strings, as Redis sends a pub/sub push."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        out.append(b"$%d\r\n%s\r\n" % (len(part), part))
    return b"".join(out)


@dataclasses.dataclass
class Parser:
    _reader: Any
    _stream: asyncio.StreamReader


@dataclasses.dataclass
class Connection:
    _parser: Parser


@dataclasses.dataclass
class Subscription:
    connection: Connection


class Sink:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def deliver(self, event: Event) -> None:
        self.events.append(event)


message = st.tuples(
    st.frozensets(st.integers(1, 3), min_size=1),
    st.binary(max_size=300),
    st.sampled_from(["plain", "junk", "confirmation"]),
)


@settings(max_examples=200, deadline=None)
@given(
    messages=st.lists(message, max_size=25),
    cuts=st.lists(st.integers(1, 400), max_size=60),
)
def test_every_message_arrives_once_in_order_whatever_the_read_boundaries(
    messages: list[tuple[frozenset[int], bytes, str]], cuts: list[int]
) -> None:
    async def run() -> None:
        link = RedisLink("redis://127.0.0.1:1/0", ttl=30.0, instance="rx")
        link.up = True  # as if connected: the stream's end must take it down
        fanout = RedisFanout(link)
        sinks = {uid: Sink() for uid in (1, 2, 3)}
        for uid, sink in sinks.items():
            await fanout.subscribe(uid, sink)
        stream = asyncio.StreamReader()
        reader = hiredis.Reader(notEnoughData=NOT_ENOUGH_DATA)
        subscription = Subscription(Connection(Parser(reader, stream)))
        assert _pushes(subscription) is not None
        wire = b""
        expected: dict[int, list[tuple[int, bytes]]] = {uid: [] for uid in sinks}
        for seq, (recipients, frame, extra) in enumerate(messages):
            if extra == "junk":
                wire += resp(b"message", CHANNEL, b"1,2,3\nnot json\n")
            elif extra == "confirmation":
                wire += b"*3\r\n$9\r\nsubscribe\r\n$%d\r\n%s\r\n:1\r\n" % (len(CHANNEL), CHANNEL)
            payload = encode_message(sorted(recipients), Event(frame=frame, seq=seq), "tx.0", 0.0)
            wire += resp(b"message", CHANNEL, payload)
            for uid in recipients:
                expected[uid].append((seq, frame))
        # Bytes up to the first cut are already in hiredis's reader (redis-py
        # read them while confirming the subscription), the rest come cut at
        # the other places.
        at = min(cuts[0], len(wire)) if cuts else 0
        reader.feed(wire[:at])
        listener = asyncio.get_running_loop().create_task(fanout._listen(subscription))
        for cut in cuts[1:]:
            if at >= len(wire):
                break
            stream.feed_data(wire[at : at + cut])
            at += cut
            await asyncio.sleep(0)  # let the listener take what is there
        stream.feed_data(wire[at:])
        stream.feed_eof()
        async with asyncio.timeout(HANG_GUARD):
            await listener
        for uid, sink in sinks.items():
            assert [(e.seq, e.frame) for e in sink.events] == expected[uid], uid
        assert not link.up, "the end of the subscription's stream must take the link down"
        await fanout.close()
        await link.close()

    asyncio.run(run())


def test_a_moved_sharded_channel_takes_the_link_down() -> None:
    async def run() -> None:
        link = RedisLink("redis://127.0.0.1:1/0", ttl=30.0, instance="rx")
        link.up = True
        fanout = RedisFanout(link)
        sink = Sink()
        await fanout.subscribe(1, sink)
        stream = asyncio.StreamReader()
        reader = hiredis.Reader(notEnoughData=NOT_ENOUGH_DATA)
        before = encode_message([1], Event(frame=b"a", seq=1), "tx.0", 0.0)
        after = encode_message([1], Event(frame=b"b", seq=2), "tx.0", 0.0)
        stream.feed_data(
            resp(b"smessage", CHANNEL, before)
            + b"*3\r\n$12\r\nsunsubscribe\r\n$%d\r\n%s\r\n:0\r\n" % (len(CHANNEL), CHANNEL)
            + resp(b"smessage", CHANNEL, after)
        )
        async with asyncio.timeout(HANG_GUARD):
            await fanout._listen(Subscription(Connection(Parser(reader, stream))))
        assert [e.seq for e in sink.events] == [1]  # nothing read past the move
        assert not link.up
        assert "moved" in link.last_error
        await fanout.close()
        await link.close()

    asyncio.run(run())
