"""Conversations across devices (issue 17): carbons, delivery notices, read markers.

Everything here is live and ephemeral: nothing new is stored, so the
server's retention rules are unchanged (it still forgets delivered messages)
and a device that is offline simply misses these frames. Each piece is one
function the existing handlers call at one point, so the module stays
separate from the session and store layers being restructured around it:

- ``publish_copy``: after a message is stored, every connection of the
  sender gets a ``message_copy`` (XMPP's message carbons).
- ``publish_delivered``: after a recipient's ack moves forward, the senders of
  the messages it covers get ``message_delivered`` (pending → sent → delivered).
- ``mark_read``: the ``mark_read`` command; my devices get ``read_marker``,
  and the peer gets ``read_receipt`` only when I opted in and we are friends.
- ``typing``: the ``typing`` hint, passed to a friend as it is; no reply and
  nothing stored. It counts against the command limit like any command, which
  bounds a client that ignores the pacing the protocol asks for.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import TYPE_CHECKING

import sqlalchemy as sa

from presence_protocol import (
    MarkRead,
    MessageCopy,
    MessageDelivered,
    Ok,
    ReadMarker,
    ReadReceipt,
    Typing,
    TypingHint,
    encode,
)

from ..cluster.fanout import Event
from ..storage.schema import messages

if TYPE_CHECKING:
    from ..storage.store import MessageRow
    from .hub import Hub
    from .machine import Session

log = logging.getLogger(__name__)

MAX_DELIVERED_IDS = 500
"""Message ids per ``message_delivered`` frame (one replay batch at most)."""


async def publish_copy(hub: Hub, row: MessageRow) -> None:
    """Tell every device of the sender about a message it sent (the sending one too).

    The sending device recognises its own ``client_msg_id`` and ignores the
    copy; excluding it here would need the fan-out to know connections, which
    it deliberately does not (events are addressed to users).
    """
    copy = MessageCopy(
        message_id=str(row.id),
        client_msg_id=row.client_msg_id,
        to=row.recipient_id,
        text=row.text,
        sent_at=row.sent_at,
    )
    await hub.fanout.publish([row.sender_id], Event(frame=encode(copy)))


async def publish_delivered(hub: Hub, recipient: int, after_seq: int, upto_seq: int) -> None:
    """Tell senders that ``recipient`` acknowledged its messages in (after_seq, upto_seq].

    A read of rows the ack just covered: they are still stored (retention
    keeps delivered messages for a while), and a row already swept simply
    earns no notice, which costs a sender only a "sent" mark that stays.
    """
    if upto_seq <= after_seq:
        return
    async with hub.store.read() as conn:
        rows = (
            await conn.execute(
                sa.select(messages.c.id, messages.c.sender_id)
                .where(
                    messages.c.recipient_id == recipient,
                    messages.c.seq > after_seq,
                    messages.c.seq <= upto_seq,
                    messages.c.expired_at.is_(None),
                )
                .order_by(messages.c.seq)
                .limit(MAX_DELIVERED_IDS)
            )
        ).all()
    by_sender: dict[int, list[str]] = defaultdict(list)
    for row in rows:
        by_sender[int(row.sender_id)].append(str(row.id))
    for sender, ids in by_sender.items():
        notice = MessageDelivered(to=recipient, message_ids=ids)
        await hub.fanout.publish([sender], Event(frame=encode(notice)))


async def mark_read(conn: Session, message: MarkRead) -> None:
    """``mark_read``: sync the read state to my devices; a receipt only if asked for."""
    assert conn.user is not None
    hub = conn.hub
    me = conn.user.id
    marker = ReadMarker(peer=message.peer, message_id=message.message_id, sent_at=message.sent_at)
    conn.send(Ok(id=message.id))
    await hub.fanout.publish([me], Event(frame=encode(marker)))
    if message.receipt and message.peer != me and message.peer in await hub.store.friend_ids(me):
        receipt = ReadReceipt(reader=me, message_id=message.message_id, sent_at=message.sent_at)
        await hub.fanout.publish([message.peer], Event(frame=encode(receipt)))


async def typing(conn: Session, message: Typing) -> None:
    """``typing``: a hint to a friend; silently dropped for anyone else (it must not
    reveal whether someone exists or is a friend)."""
    assert conn.user is not None
    hub = conn.hub
    me = conn.user.id
    # ``conn.is_friend`` is this connection's view of my friends (kept current
    # by relation events): a hint never costs a database read.
    if message.to != me and conn.is_friend(message.to):
        await hub.fanout.publish([message.to], Event(frame=encode(TypingHint(user_id=me))))
