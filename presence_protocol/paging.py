"""Long lists in frames of at most ``max_server_frame_bytes`` (docs/protocol.md §1).

A server frame has an announced size limit, but some answers hold lists no
rule keeps short: incoming friend requests and blocks are not bounded by
``MAX_FRIENDS``, and a user record or an activity can take kilobytes. Rather
than close the connection when such an answer does not fit, the server cuts
it: a ``snapshot`` continues in ``snapshot_part`` frames, an account export
continues on the next page. Both sides use this module, so the rule for
cutting and the rule for joining cannot drift apart.

Sizes are counted, not guessed: each list item is encoded once, and a frame
takes items while the envelope plus the items (each with its comma) plus the
brackets of every list stays within the limit. The count is an upper bound
(a few bytes per list), so a frame never exceeds the limit and is seldom
more than a few dozen bytes below it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from .codec import encode
from .messages import (
    AccountData,
    AccountExport,
    AccountLists,
    AuthOk,
    ExportedMessage,
    ServerMessage,
    Snapshot,
    SnapshotPart,
)

SNAPSHOT_LISTS = ("friends", "incoming", "outgoing", "blocked")
"""The lists of a snapshot, in the order they are cut and joined."""
ACCOUNT_LISTS = ("friends", "incoming", "outgoing", "blocked", "sessions")
"""The lists of an exported account record, in the order they are paged."""

_item_encoder = msgspec.json.Encoder()


class FrameTooLarge(ValueError):
    """One item (or the envelope alone) does not fit in a frame of this size."""


def item_size(item: Any) -> int:
    """Bytes ``item`` takes inside a list of a frame (without its comma)."""
    return len(_item_encoder.encode(item))


class Budget:
    """Bytes a frame has left for list items, once its envelope is counted.

    ``envelope`` is the frame with every list empty; ``lists`` names the lists
    items may go to. Their brackets and names are counted whether or not the
    envelope already shows them (a list omitted while empty), and each item
    is counted with a comma: an upper bound by a few bytes, never below.
    """

    def __init__(self, limit: int, envelope: ServerMessage, lists: Iterable[str]) -> None:
        self.limit = limit
        self.left = limit - len(encode(envelope)) - sum(len(f',"{name}":[]') for name in lists)
        self.items = 0

    def take(self, size: int) -> bool:
        """Count an item of ``size`` bytes in if it fits; False (nothing counted) if not."""
        if size + 1 > self.left:
            return False
        self.left -= size + 1
        self.items += 1
        return True


def _empty_lists(names: Sequence[str]) -> dict[str, list[Any]]:
    return {name: [] for name in names}


def snapshot_frames(snapshot: Snapshot, max_bytes: int) -> list[Snapshot | SnapshotPart]:
    """``snapshot`` as frames of at most ``max_bytes``: itself when it fits, else
    a ``snapshot`` (``more`` true) with the first items and ``snapshot_part``
    frames with the rest, in order, the last one with ``more`` false.

    Raises ``FrameTooLarge`` when a single item does not fit in a frame.
    """
    whole = msgspec.structs.replace(snapshot, more=False)
    if len(encode(whole)) <= max_bytes:
        return [whole]
    # ``more`` false is the longer spelling: every frame is sized with it.
    first = msgspec.structs.replace(whole, **_empty_lists(SNAPSHOT_LISTS))
    frames: list[Snapshot | SnapshotPart] = [first]
    budget = Budget(max_bytes, first, SNAPSHOT_LISTS)
    if budget.left < 0:
        raise FrameTooLarge(f"a snapshot's envelope does not fit in {max_bytes} bytes")
    for name in SNAPSHOT_LISTS:
        for item in getattr(snapshot, name):
            size = item_size(item)
            if not budget.take(size):
                part = SnapshotPart()
                budget = Budget(max_bytes, part, SNAPSHOT_LISTS)
                if not budget.take(size):
                    raise FrameTooLarge(f"one {name} entry of {size} bytes exceeds {max_bytes}")
                frames.append(part)
            getattr(frames[-1], name).append(item)
    for frame in frames[:-1]:
        frame.more = True
    return frames


def fit_suggestions(reply: AuthOk, max_bytes: int) -> AuthOk:
    """``reply`` with as many of its ``suggestions`` as fit in ``max_bytes``, in order.

    Suggestions are hints (people you follow on GitHub who use this server),
    already capped in number; the rest of ``auth_ok`` is small. Rather than
    refuse a sign-in over them, the ones that do not fit are left out.
    """
    if len(encode(reply)) <= max_bytes:
        return reply
    budget = Budget(max_bytes, msgspec.structs.replace(reply, suggestions=[]), ["suggestions"])
    kept = []
    for user in reply.suggestions:
        if not budget.take(item_size(user)):
            break
        kept.append(user)
    return msgspec.structs.replace(reply, suggestions=kept)


class SnapshotAssembler:
    """Joins a snapshot sent in parts; feed it every ``snapshot`` and ``snapshot_part``.

    ``feed`` returns the complete snapshot once its last frame arrived, else
    None. A part with no snapshot before it (the connection dropped in the
    middle of one) is ignored; a new ``snapshot`` starts over.
    """

    def __init__(self) -> None:
        self._partial: Snapshot | None = None

    @property
    def pending(self) -> bool:
        """A snapshot has begun and its last part has not arrived yet."""
        return self._partial is not None

    def feed(self, frame: Snapshot | SnapshotPart) -> Snapshot | None:
        if isinstance(frame, Snapshot):
            copy = msgspec.structs.replace(
                frame, more=False, **{name: list(getattr(frame, name)) for name in SNAPSHOT_LISTS}
            )
            self._partial = copy if frame.more else None
            return None if frame.more else copy
        if self._partial is None:
            return None
        for name in SNAPSHOT_LISTS:
            getattr(self._partial, name).extend(getattr(frame, name))
        if frame.more:
            return None
        done, self._partial = self._partial, None
        return done


def join_export(pages: Sequence[AccountExport]) -> tuple[AccountData | None, list[ExportedMessage]]:
    """The account record (its lists joined across pages) and every message of an export."""
    account = pages[0].account if pages else None
    if account is not None:
        lists = {name: list(getattr(account, name)) for name in ACCOUNT_LISTS}
        for page in pages[1:]:
            more: AccountLists | None = page.account_more
            if more is not None:
                for name in ACCOUNT_LISTS:
                    lists[name].extend(getattr(more, name))
        account = msgspec.structs.replace(account, **lists)
    return account, [message for page in pages for message in page.messages]
