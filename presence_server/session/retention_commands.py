"""A connection's part of retention: expiry notices after login, ``ack_expired``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from presence_protocol import AckExpired, Ok

from ..domain.retention import MAX_NOTICES_PER_LOGIN, forget_notices, pending_notices

if TYPE_CHECKING:
    from .machine import Session


async def send_notices(conn: Session) -> None:
    """After login: every expiry notice not yet acknowledged (up to a cap)."""
    assert conn.user is not None
    for notice in await pending_notices(conn.hub.store, conn.user.id, MAX_NOTICES_PER_LOGIN):
        conn.send(notice)


async def ack_expired(conn: Session, message: AckExpired) -> None:
    """``ack_expired``: the sender saw these notices; drop the tombstones."""
    assert conn.user is not None
    ids = [int(m) for m in message.message_ids if m.isdecimal() and len(m) <= 18]
    if ids:
        await forget_notices(conn.hub.store, conn.user.id, ids)
    conn.send(Ok(id=message.id))
