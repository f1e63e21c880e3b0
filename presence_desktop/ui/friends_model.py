"""The friends list as a flat Qt model: a header row per non-empty section, then its friends.

Fed only by ``PresenceState`` signals. A presence delta touches one row: it is
updated in place (``dataChanged``) or moved to its new sorted place
(``beginMoveRows``), and the section headers whose counts changed are
refreshed; a section that empties loses its header row, one that fills gains
it. Only a new snapshot, a sign-out or a new search resets the model.

The order is stable on purpose (issue 18): within a section starred friends
come first, then by login; activity never reorders rows, so a row moves only
when its status (its section) or its star changes. While the pointer is over
the list (``hold``) even those moves wait, and happen when it leaves.

Sorting is done here in Python with ``bisect`` rather than by a sort proxy,
because a proxy would call back into Python for every comparison and 1,000
rows would take far longer than a frame.
"""

from __future__ import annotations

import bisect
import enum
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
)

from presence_protocol import SeenStatus

from ..core.state import FriendView, PresenceState
from .present import Section, matches, section_of, spoken_row, status_rank

Describe = Callable[[FriendView, float], str]
"""Activity line of a friend at wall time ``now`` (Unix seconds)."""

AnyIndex = QModelIndex | QPersistentModelIndex

_Key = tuple[tuple[int, int, str], int]
"""((0 if starred else 1, status rank, login folded), user id)."""


class Role(enum.IntEnum):
    KIND = Qt.ItemDataRole.UserRole + 1
    """"header" or "friend"."""
    SECTION = enum.auto()
    COUNT = enum.auto()
    """Friends shown in a header's section."""
    FRIEND = enum.auto()
    USER_ID = enum.auto()
    ACTIVITY = enum.auto()
    STARRED = enum.auto()
    MUTED = enum.auto()
    STALE = enum.auto()
    """Not connected: the row shows the last known presence (painted dimmed)."""


class FriendsModel(QAbstractListModel):
    def __init__(
        self,
        state: PresenceState,
        describe: Describe,
        *,
        is_starred: Callable[[int], bool] = lambda _uid: False,
        is_muted: Callable[[int], bool] = lambda _uid: False,
        clock: Callable[[], float] = time.time,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._state = state
        self._describe = describe
        self._is_starred = is_starred
        self._is_muted = is_muted
        self._clock = clock
        self._query = ""
        self._stale = False
        self._held = False
        self._pending: set[int] = set()
        """Friends whose move waits for the pointer to leave the list."""
        self._lists: list[list[_Key]] = [[] for _ in Section]
        self._where: dict[int, tuple[Section, _Key]] = {}
        self._rebuild()
        state.reset.connect(self._on_reset)
        state.friend_changed.connect(self._place)
        state.friend_added.connect(self._place)
        state.friend_removed.connect(self._place)

    # ---------------------------------------------------------- public

    @property
    def query(self) -> str:
        return self._query

    def set_query(self, text: str) -> None:
        if text == self._query:
            return
        self._query = text
        self.beginResetModel()
        self._rebuild()
        self.endResetModel()

    @property
    def stale(self) -> bool:
        return self._stale

    def set_stale(self, stale: bool) -> None:
        """Mark every row as last known (disconnected) or live again."""
        if stale != self._stale:
            self._stale = stale
            self.refresh_all()

    @property
    def held(self) -> bool:
        return self._held

    def hold(self, held: bool) -> None:
        """While held (pointer over the list) rows keep their places; moves happen on release."""
        if held == self._held:
            return
        self._held = held
        if not held:
            pending, self._pending = self._pending, set()
            for user_id in sorted(pending):
                self._place(user_id)

    def key_of(self, friend: FriendView) -> _Key:
        """Place within its section: starred first, then by status (online before
        do not disturb), then by login."""
        starred = 0 if self._is_starred(friend.user_id) else 1
        return (starred, status_rank(friend.status), friend.login.casefold()), friend.user_id

    def count(self, section: Section) -> int:
        return len(self._lists[section])

    def header_row(self, section: Section) -> int:
        return _header_row(section, [len(x) for x in self._lists])

    def row_of(self, user_id: int) -> int | None:
        where = self._where.get(user_id)
        if where is None:
            return None
        section, key = where
        return self.header_row(section) + 1 + bisect.bisect_left(self._lists[section], key)

    def user_id_at(self, row: int) -> int | None:
        hit = self._locate(row)
        return None if hit is None or hit[1] is None else hit[1][1]

    def refresh(self, user_id: int) -> None:
        """Repaint one friend's row (avatar arrived, star toggled: which also moves it)."""
        self._place(user_id, force=True)

    def refresh_all(self) -> None:
        """Repaint every row without changing the structure (relative times moved on)."""
        if self.rowCount():
            self.dataChanged.emit(self.index(0), self.index(self.rowCount() - 1))

    # ---------------------------------------------------------- Qt model API

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        if parent.isValid():
            return 0
        return sum(len(items) + 1 for items in self._lists if items)

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        hit = self._locate(index.row()) if index.isValid() else None
        if hit is None:
            return Qt.ItemFlag.NoItemFlags
        if hit[1] is None:
            return Qt.ItemFlag.ItemIsEnabled
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        hit = self._locate(index.row()) if index.isValid() else None
        if hit is None:
            return None
        section, key = hit
        if key is None:
            return self._header_data(section, role)
        friend = self._state.friends.get(key[1])
        if friend is None:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return friend.display_name
        if role == Role.KIND:
            return "friend"
        if role == Role.SECTION:
            return section
        if role == Role.FRIEND:
            return friend
        if role == Role.USER_ID:
            return friend.user_id
        if role == Role.ACTIVITY:
            return self._activity(friend)
        if role == Role.STALE:
            return self._stale
        if role == Role.STARRED:
            return self._is_starred(friend.user_id)
        if role == Role.MUTED:
            return self._is_muted(friend.user_id)
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{friend.display_name} (@{friend.login})\n{self._activity(friend)}"
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return spoken_row(friend, self._describe(friend, self._clock()), stale=self._stale)
        return None

    def _activity(self, friend: FriendView) -> str:
        text = self._describe(friend, self._clock())
        if not self._stale or friend.status is SeenStatus.OFFLINE:
            return text  # "Last seen 3 h ago" is already a past fact
        return f"Last known: {text}"

    def _header_data(self, section: Section, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return section.title
        if role == Role.KIND:
            return "header"
        if role == Role.SECTION:
            return section
        if role == Role.COUNT:
            return self.count(section)
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return f"{section.title}, {self.count(section)}"
        return None

    # ---------------------------------------------------------- internals

    def _locate(self, row: int) -> tuple[Section, _Key | None] | None:
        """(section, key) of a row; key None for the section's header."""
        if row < 0:
            return None
        start = 0
        for section in Section:
            items = self._lists[section]
            if not items:
                continue  # an empty section has no header row
            if row == start:
                return section, None
            if row <= start + len(items):
                return section, items[row - start - 1]
            start += len(items) + 1
        return None

    def _visible(self, friend: FriendView) -> bool:
        if not self._query:
            return True
        return matches(friend, self._query, self._describe(friend, self._clock()))

    def _rebuild(self) -> None:
        lists: list[list[_Key]] = [[] for _ in Section]
        where: dict[int, tuple[Section, _Key]] = {}
        for uid, friend in self._state.friends.items():
            if not self._visible(friend):
                continue
            section = section_of(friend.status)
            key = self.key_of(friend)
            lists[section].append(key)
            where[uid] = (section, key)
        for items in lists:
            items.sort()
        self._lists = lists
        self._where = where
        self._pending.clear()

    def _on_reset(self, _: None) -> None:
        self.beginResetModel()
        self._rebuild()
        self.endResetModel()

    def _place(self, user_id: int, *, force: bool = False) -> None:
        """Bring one friend's row in line with the state: insert, move, update or remove."""
        friend = self._state.friends.get(user_id)
        old = self._where.get(user_id)
        target: tuple[Section, _Key] | None = None
        if friend is not None and self._visible(friend):
            target = (section_of(friend.status), self.key_of(friend))
        if old is None and target is None:
            return
        if old is None:
            assert target is not None
            self._insert(user_id, target)
            return
        if target is None:
            self._remove(user_id, old)
            return
        if old == target:
            self._changed(user_id)
            return
        if self._held and not force:
            # Under the pointer: repaint in place (the dot shows the new status),
            # move when the pointer leaves.
            self._pending.add(user_id)
            self._changed(user_id)
            return
        self._pending.discard(user_id)
        old_section, old_key = old
        section, key = target
        if section is not old_section and (
            len(self._lists[old_section]) == 1 or not self._lists[section]
        ):
            # A header row appears or goes: a plain move cannot express that.
            self._remove(user_id, old)
            self._insert(user_id, target)
            return
        lens = [len(x) for x in self._lists]
        root = QModelIndex()
        i = bisect.bisect_left(self._lists[old_section], old_key)
        old_row = _header_row(old_section, lens) + 1 + i
        j = bisect.bisect_left(self._lists[section], key)
        if section is old_section and j > i:
            j -= 1  # the old entry, which sorts before the new place, goes away
        new_lens = list(lens)
        new_lens[old_section] -= 1
        new_lens[section] += 1
        new_row = _header_row(section, new_lens) + 1 + j
        if new_row != old_row:
            # Qt wants the destination in pre-move coordinates: one past the
            # final row when moving down.
            dest = new_row + 1 if new_row > old_row else new_row
            self.beginMoveRows(root, old_row, old_row, root, dest)
            del self._lists[old_section][i]
            self._lists[section].insert(j, key)
            self._where[user_id] = target
            self.endMoveRows()
        else:
            self._lists[old_section][i] = key
            self._where[user_id] = target
        idx = self.index(new_row)
        self.dataChanged.emit(idx, idx)
        if section is not old_section:
            self._header_changed(old_section)
            self._header_changed(section)

    def _insert(self, user_id: int, target: tuple[Section, _Key]) -> None:
        section, key = target
        lens = [len(x) for x in self._lists]
        header = _header_row(section, lens)
        j = bisect.bisect_left(self._lists[section], key)
        first = header if lens[section] == 0 else header + 1 + j
        last = header + 1 + j
        self.beginInsertRows(QModelIndex(), first, last)
        self._lists[section].insert(j, key)
        self._where[user_id] = target
        self.endInsertRows()
        if first == last:
            self._header_changed(section)

    def _remove(self, user_id: int, old: tuple[Section, _Key]) -> None:
        section, key = old
        lens = [len(x) for x in self._lists]
        header = _header_row(section, lens)
        i = bisect.bisect_left(self._lists[section], key)
        only = lens[section] == 1
        first = header if only else header + 1 + i
        self.beginRemoveRows(QModelIndex(), first, header + 1 + i)
        del self._lists[section][i]
        del self._where[user_id]
        self._pending.discard(user_id)
        self.endRemoveRows()
        if not only:
            self._header_changed(section)

    def _changed(self, user_id: int) -> None:
        row = self.row_of(user_id)
        if row is not None:
            idx = self.index(row)
            self.dataChanged.emit(idx, idx)

    def _header_changed(self, section: Section) -> None:
        if not self._lists[section]:
            return  # no header row to repaint
        idx = self.index(self.header_row(section))
        self.dataChanged.emit(idx, idx)


def _header_row(section: Section, lens: list[int]) -> int:
    """Row of ``section``'s header (where it would go if the section is empty)."""
    return sum(lens[s] + 1 for s in Section if s < section and lens[s])
