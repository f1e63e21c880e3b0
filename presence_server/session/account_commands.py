"""The ``export_account`` and ``delete_account`` commands of a connection.

What they read and delete is ``domain.account``; here is only what a
connection does with it: the reply, and the fan-out that tells everyone who
could see a relation with a deleted account, and closes its devices.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from presence_protocol import (
    DeleteAccount,
    ErrorCode,
    ExportAccount,
    Ok,
    Relation,
    RelationUpdate,
    encode,
)

from ..cluster.fanout import Event
from ..domain.account import delete, export_page, parse_cursor, related_ids
from ..storage.store import CommandError

if TYPE_CHECKING:
    from .machine import Session


async def export_account(conn: Session, message: ExportAccount) -> None:
    """One page, cut to the frame limit this connection announced."""
    assert conn.user is not None
    page = await export_page(
        conn.hub.store,
        conn.user.id,
        conn.session_id,
        parse_cursor(message.after),
        request_id=message.id,
        max_bytes=conn.limits.max_server_frame_bytes,
    )
    conn.send(page)


async def delete_account(conn: Session, message: DeleteAccount) -> None:
    """``delete_account``: ok, then every device of mine closes with 4503."""
    hub = conn.hub
    assert conn.user is not None
    me = conn.user.id
    if message.confirm_login.lower() != conn.user.login.lower():
        raise CommandError(
            ErrorCode.CONFIRM_MISMATCH.value,
            "confirm_login must be this account's login; nothing was deleted",
        )
    related = await related_ids(hub.store, me)
    async with hub.locked(me, *related):
        deleted = await hub.store.finish(delete(hub.store, me))  # durable
        conn.send(Ok(id=message.id))
        if deleted is not None:
            gone = encode(RelationUpdate(user=deleted.user.wire(), relation=Relation.NONE))
            event = Event(frame=gone, subject=me, friend=False)
            await hub.fanout.publish(deleted.tell, event)
    await hub.fanout.publish([me], Event(account_deleted=True))
