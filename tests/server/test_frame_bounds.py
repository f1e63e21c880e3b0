"""Which server frames can outgrow ``max_server_frame_bytes``, at their worst case.

docs/protocol.md §8 sorts every server frame into three kinds, and this file
holds the proof for each claim:

* bounded by construction: every field has a protocol or schema limit, and
  the frame built from the widest value of each still fits 1 MiB with room
  to spare (presence, relation, message, message_copy, message_expired,
  message_delivered, read markers, replies);
* cut to fit: ``snapshot`` (parts), ``account_export`` (pages), ``sessions``
  (pages continued with ``list_sessions.after``; tests/server/
  test_sessions_paging.py), and the suggestions of ``auth_ok`` (hints; as many
  as fit) — the single entries they are cut into are bounded, so cutting
  always makes progress;
* the operator's: ``hello`` (the configured server name and limits).

Worst case per field: JSON escapes a control character into six bytes
(``\\u0001``); activity labels may not hold control characters, so their
worst is a four-byte code point each; user names and avatar URLs come from
GitHub and are as long as the users table holds (255 and 1000 characters).
"""

from __future__ import annotations

import msgspec
import pytest

from presence_protocol import (
    AccountData,
    AccountExport,
    Activity,
    ActivityKind,
    AuthOk,
    Direction,
    Error,
    ExportedMessage,
    ExportedRelation,
    Friend,
    Message,
    MessageCopy,
    MessageDelivered,
    MessageExpired,
    MessageSent,
    Ok,
    Presence,
    PresenceUpdate,
    ReadMarker,
    ReadReceipt,
    Relation,
    RelationUpdate,
    SeenStatus,
    ServerMessage,
    SessionInfo,
    Sessions,
    Snapshot,
    SnapshotPart,
    Status,
    TypingHint,
    User,
    encode,
    limits,
)
from presence_protocol.paging import fit_suggestions, item_size
from presence_server.edge.github import DEFAULT_FOLLOWING_CAP
from presence_server.session.conversations import MAX_DELIVERED_IDS
from presence_server.session.handlers import LONGEST_SESSIONS_NEXT, sessions_cursor
from presence_server.storage.schema import sessions, users

LIMIT = limits.MAX_SERVER_FRAME_BYTES
BIG_ID = 2**53
BIG_TIME = 2**40
MESSAGE_ID = "9" * 19  # a 64-bit message id
REQUEST_ID = "\x01" * limits.MAX_REQUEST_ID_CHARS
NAME_CHARS = getattr(users.c.name.type, "length", None)
AVATAR_CHARS = getattr(users.c.avatar_url.type, "length", None)
SESSION_ID_CHARS = getattr(sessions.c.id.type, "length", 0)
WORST_USER = User(
    id=BIG_ID,
    login="a" * limits.MAX_LOGIN_CHARS,
    name="\x01" * (NAME_CHARS or 0),
    avatar_url="\x01" * (AVATAR_CHARS or 0),
)
WORST_LABEL = "😀" * limits.MAX_LABEL_CHARS
WORST_ACTIVITY = Activity(
    kind=ActivityKind.DEBUGGING,
    editor=WORST_LABEL,
    language=WORST_LABEL,
    project=WORST_LABEL,
    file=WORST_LABEL,
    since=BIG_TIME,
)
WORST_PRESENCE = Presence(
    status=SeenStatus.OFFLINE, activity=WORST_ACTIVITY, last_seen=BIG_TIME, until=BIG_TIME
)
WORST_TEXT = "\x01" * limits.MAX_MESSAGE_CHARS

BOUNDED: list[ServerMessage] = [
    PresenceUpdate(
        user_id=BIG_ID,
        status=SeenStatus.OFFLINE,
        activity=WORST_ACTIVITY,
        last_seen=BIG_TIME,
        until=BIG_TIME,
    ),
    RelationUpdate(user=WORST_USER, relation=Relation.FRIEND, presence=WORST_PRESENCE),
    Message(seq=BIG_ID, message_id=MESSAGE_ID, sender=BIG_ID, text=WORST_TEXT, sent_at=BIG_TIME),
    MessageCopy(
        message_id=MESSAGE_ID, client_msg_id="c" * 64, to=BIG_ID, text=WORST_TEXT, sent_at=BIG_TIME
    ),
    MessageExpired(
        message_id=MESSAGE_ID,
        client_msg_id="c" * 64,
        to=BIG_ID,
        sent_at=BIG_TIME,
        expired_at=BIG_TIME,
    ),
    MessageDelivered(to=BIG_ID, message_ids=[MESSAGE_ID] * MAX_DELIVERED_IDS),
    MessageSent(id=REQUEST_ID, message_id=MESSAGE_ID, client_msg_id="c" * 64, sent_at=BIG_TIME),
    ReadMarker(peer=BIG_ID, message_id=MESSAGE_ID, sent_at=BIG_TIME),
    ReadReceipt(reader=BIG_ID, message_id=MESSAGE_ID, sent_at=BIG_TIME),
    TypingHint(user_id=BIG_ID),
    Ok(id=REQUEST_ID),
    # An error's text is the server's, cut to MAX_ERROR_MESSAGE_CHARS (a
    # validation error may quote a client's long value).
    Error(
        id=REQUEST_ID,
        code="invalid_message",
        message="\x01" * limits.MAX_ERROR_MESSAGE_CHARS,
        retry_after=1e300,
    ),
]


def test_the_schema_bounds_what_a_user_record_can_hold() -> None:
    assert NAME_CHARS == 255 and AVATAR_CHARS == 1000 and SESSION_ID_CHARS == 32


@pytest.mark.parametrize("frame", BOUNDED, ids=lambda f: type(f).__name__)
def test_a_bounded_frame_fits_at_its_worst(frame: ServerMessage) -> None:
    """Even in the smallest frame limit a server may be configured with."""
    size = len(encode(frame))
    assert size <= limits.MIN_SERVER_FRAME_BYTES, f"{type(frame).__name__}: {size} bytes at worst"


def test_cutting_makes_progress_in_the_smallest_allowed_limit_too() -> None:
    """In any limit the configuration check allows, the first frame of a cut
    answer holds its envelope (the widest user record as ``me``, the export's
    account record with it) plus one widest entry, and a continuation frame
    (``snapshot_part``, an export page after the first) holds one widest entry."""
    smallest = limits.MIN_SERVER_FRAME_BYTES
    friend = item_size(Friend(user=WORST_USER, presence=WORST_PRESENCE))
    relation = item_size(ExportedRelation(user=WORST_USER, since=BIG_TIME))
    first = Snapshot(me=WORST_USER, acked_seq=BIG_ID, more=False)
    assert len(encode(first)) <= smallest
    assert len(encode(SnapshotPart(more=False))) + friend + 64 <= smallest
    account = AccountData(
        user=WORST_USER,
        kind="github",
        created_at=BIG_TIME,
        status=Status.INVISIBLE,
        status_until=BIG_TIME,
        last_seen=BIG_TIME,
        acked_seq=BIG_ID,
    )
    page = AccountExport(id=REQUEST_ID, account=account, next="n" * 32)
    assert len(encode(page)) + relation + 64 <= smallest


@pytest.mark.parametrize(
    "entry",
    [
        Friend(user=WORST_USER, presence=WORST_PRESENCE),
        WORST_USER,
        ExportedRelation(user=WORST_USER, since=BIG_TIME),
        SessionInfo(
            id="f" * 32,
            device="\x01" * limits.MAX_DEVICE_CHARS,
            created_at=BIG_TIME,
            last_used_at=BIG_TIME,
            current=True,
        ),
        ExportedMessage(
            message_id=MESSAGE_ID,
            direction=Direction.RECEIVED,
            peer=BIG_ID,
            text=WORST_TEXT,
            sent_at=BIG_TIME,
            seq=BIG_ID,
            delivered=True,
            expired_at=BIG_TIME,
        ),
    ],
    ids=lambda e: type(e).__name__,
)
def test_every_entry_a_cut_frame_is_made_of_fits_many_times(entry: object) -> None:
    """Snapshot parts and export pages always make progress: the widest single
    entry is a small fraction of a frame (and of an envelope with it)."""
    envelope = len(encode(Snapshot(me=WORST_USER, acked_seq=BIG_ID, more=False)))
    assert envelope + item_size(entry) <= LIMIT // 16


def test_a_sessions_page_holds_many_of_the_widest_entries() -> None:
    """A ``sessions`` page is sized with the longest ``next`` and a request id
    at its widest: even then the widest session entry is a small fraction of it."""
    envelope = Sessions(id=REQUEST_ID, next=LONGEST_SESSIONS_NEXT)
    widest = SessionInfo(
        id="f" * SESSION_ID_CHARS,
        device="\x01" * limits.MAX_DEVICE_CHARS,
        created_at=BIG_TIME,
        last_used_at=BIG_TIME,
        current=True,
    )
    assert len(encode(envelope)) + item_size(widest) <= LIMIT // 16
    assert len(LONGEST_SESSIONS_NEXT) <= 64  # as long as list_sessions.after may be
    assert len(sessions_cursor(2**63 - 1, "f" * SESSION_ID_CHARS)) <= len(LONGEST_SESSIONS_NEXT)


def test_auth_ok_keeps_the_suggestions_that_fit_in_order() -> None:
    reply = AuthOk(
        id=REQUEST_ID,
        user=WORST_USER,
        session_id="f" * 16,
        session="t" * 43,
        suggestions=[
            msgspec.structs.replace(WORST_USER, id=n) for n in range(1, DEFAULT_FOLLOWING_CAP + 1)
        ],
    )
    assert len(encode(reply)) > LIMIT  # the default follow cap with the widest records
    fitted = fit_suggestions(reply, LIMIT)
    assert len(encode(fitted)) <= LIMIT
    assert fitted.suggestions == reply.suggestions[: len(fitted.suggestions)]
    assert len(fitted.suggestions) > DEFAULT_FOLLOWING_CAP // 4
    assert fit_suggestions(fitted, LIMIT) is fitted  # one that fits is left alone
