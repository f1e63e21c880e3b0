"""Cutting long lists into frames and joining them (presence_protocol/paging.py).

The rule, over random snapshots and frame limits: every frame fits the
limit, the frames are a snapshot and then snapshot parts with ``more`` true
on all but the last, and joining them gives back exactly the snapshot.
"""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from presence_protocol import (
    Activity,
    Friend,
    Presence,
    SeenStatus,
    Snapshot,
    SnapshotPart,
    Status,
    User,
    decode_server,
    encode,
    encode_text,
    limits,
)
from presence_protocol.paging import FrameTooLarge, SnapshotAssembler, snapshot_frames

# Labels as wide as the protocol allows: four-byte code points, quotes and
# backslashes (two bytes once escaped) and plain ASCII.
label_text = st.sampled_from(["a", "é" * 100, "語" * 99, "😀" * 100, '"\\' * 50, "Python"])
users = st.builds(
    User,
    id=st.integers(min_value=1, max_value=2**53),
    login=st.from_regex(r"[a-z][a-z0-9]{0,38}", fullmatch=True),
    name=st.none() | st.sampled_from(["Ada", "語" * 255, '"\\' * 40, "\x01" * 50]),
    avatar_url=st.none() | st.just("https://avatars.example/u/1?v=4"),
)
activities = st.builds(
    Activity, editor=label_text, language=label_text, project=label_text, file=label_text
)
friends = st.builds(
    Friend,
    user=users,
    presence=st.builds(
        Presence, status=st.sampled_from(list(SeenStatus)), activity=st.none() | activities
    ),
)
snapshots = st.builds(
    Snapshot,
    me=users,
    status=st.sampled_from(list(Status)),
    friends=st.lists(friends, max_size=40),
    incoming=st.lists(users, max_size=40),
    outgoing=st.lists(users, max_size=10),
    blocked=st.lists(users, max_size=40),
    acked_seq=st.integers(min_value=0, max_value=2**53),
)


def _join(frames: list[Snapshot | SnapshotPart]) -> Snapshot:
    assembler = SnapshotAssembler()
    done = None
    for n, frame in enumerate(frames):
        # What a client gets is what went over the wire.
        wire = decode_server(encode_text(frame), max_bytes=2**30)
        assert isinstance(wire, (Snapshot, SnapshotPart))
        done = assembler.feed(wire)
        assert (done is None) == (n < len(frames) - 1)
    assert done is not None and not assembler.pending
    return done


@settings(deadline=None)  # no speed bound: the machine is shared
@given(snapshot=snapshots, limit=st.integers(min_value=3_000, max_value=200_000))
def test_every_frame_fits_and_the_parts_join_to_the_snapshot(
    snapshot: Snapshot, limit: int
) -> None:
    frames = snapshot_frames(snapshot, limit)
    assert all(len(encode(frame)) <= limit for frame in frames)
    assert isinstance(frames[0], Snapshot)
    assert all(isinstance(frame, SnapshotPart) for frame in frames[1:])
    assert [frame.more for frame in frames] == [True] * (len(frames) - 1) + [False]
    assert _join(frames) == snapshot
    if len(encode(snapshot)) <= limit:
        assert frames == [snapshot]  # a snapshot that fits goes as it is


def test_a_thousand_widest_friends_need_several_frames_of_the_real_limit() -> None:
    """MAX_FRIENDS friends with every label at its longest do not fit in one
    frame: the reason snapshots come in parts (docs/protocol.md §8)."""
    wide = "😀" * limits.MAX_LABEL_CHARS
    friend = Friend(
        user=User(id=2**53, login="a" * limits.MAX_LOGIN_CHARS, name="語" * 255),
        presence=Presence(
            status=SeenStatus.ONLINE,
            activity=Activity(editor=wide, language=wide, project=wide, file=wide),
        ),
    )
    snapshot = Snapshot(
        me=User(id=1, login="me"),
        friends=[
            msgspec.structs.replace(friend, user=User(id=n + 2, login=f"f{n}", name="語" * 255))
            for n in range(limits.MAX_FRIENDS)
        ],
    )
    assert len(encode(snapshot)) > limits.MAX_SERVER_FRAME_BYTES
    frames = snapshot_frames(snapshot, limits.MAX_SERVER_FRAME_BYTES)
    assert len(frames) > 1
    assert all(len(encode(frame)) <= limits.MAX_SERVER_FRAME_BYTES for frame in frames)
    assert _join(frames) == snapshot


def test_an_entry_that_fits_no_frame_is_refused() -> None:
    snapshot = Snapshot(me=User(id=1, login="me"), incoming=[User(id=2, login="x", name="n" * 900)])
    with pytest.raises(FrameTooLarge):
        snapshot_frames(snapshot, 600)


def test_a_part_without_its_snapshot_is_ignored_and_a_new_snapshot_starts_over() -> None:
    assembler = SnapshotAssembler()
    assert assembler.feed(SnapshotPart(incoming=[User(id=5, login="e")])) is None
    first = Snapshot(me=User(id=1, login="me"), incoming=[User(id=2, login="b")], more=True)
    assert assembler.feed(first) is None and assembler.pending
    # The connection dropped; the next connection's snapshot replaces the half one.
    again = Snapshot(me=User(id=1, login="me"), incoming=[User(id=3, login="c")])
    assert assembler.feed(again) == again
    assert assembler.feed(SnapshotPart(incoming=[User(id=4, login="d")])) is None
