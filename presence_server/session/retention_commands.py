"""A connection's part of retention: ``ack_expired`` (the expiry notices a
login sends are read with its snapshot, ``handlers._start``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from presence_protocol import AckExpired, Ok

from ..domain.retention import forget_notices

if TYPE_CHECKING:
    from .machine import Session


async def ack_expired(conn: Session, message: AckExpired) -> None:
    """``ack_expired``: the sender saw these notices; drop the tombstones."""
    assert conn.user is not None
    ids = [int(m) for m in message.message_ids if m.isdecimal() and len(m) <= 18]
    if ids:
        await forget_notices(conn.hub.store, conn.user.id, ids)
    conn.send(Ok(id=message.id))
