"""The friends list as a flat Qt model: a header row per section, then its friends.

Fed only by ``PresenceState`` signals. A presence delta touches one row: it is
updated in place (``dataChanged``) or moved to its new sorted place
(``beginMoveRows``), and the two section headers whose counts changed are
refreshed. Only a new snapshot, a sign-out or a new search resets the model.
Sorting is done here in Python with ``FriendView.sort_key`` and ``bisect``
rather than by a sort proxy, because a proxy would call back into Python for
every comparison and 1,000 rows would take far longer than a frame.
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

from ..core.state import FriendView, PresenceState
from .present import Section, matches, section_of, spoken_row

Describe = Callable[[FriendView, float], str]
"""Activity line of a friend at wall time ``now`` (Unix seconds)."""

AnyIndex = QModelIndex | QPersistentModelIndex

_Key = tuple[tuple[int, float, str], int]


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
        """Repaint one friend's row (avatar arrived, star toggled…)."""
        row = self.row_of(user_id)
        if row is not None:
            idx = self.index(row)
            self.dataChanged.emit(idx, idx)

    def refresh_all(self) -> None:
        """Repaint every row without changing the structure (relative times moved on)."""
        if self.rowCount():
            self.dataChanged.emit(self.index(0), self.index(self.rowCount() - 1))

    # ---------------------------------------------------------- Qt model API

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        if parent.isValid():
            return 0
        return len(Section) + len(self._where)

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
        return f"Last known: {text}" if self._stale else text

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
            key = (friend.sort_key(), uid)
            lists[section].append(key)
            where[uid] = (section, key)
        for items in lists:
            items.sort()
        self._lists = lists
        self._where = where

    def _on_reset(self, _: None) -> None:
        self.beginResetModel()
        self._rebuild()
        self.endResetModel()

    def _place(self, user_id: int) -> None:
        """Bring one friend's row in line with the state: insert, move, update or remove."""
        friend = self._state.friends.get(user_id)
        old = self._where.get(user_id)
        target: tuple[Section, _Key] | None = None
        if friend is not None and self._visible(friend):
            target = (section_of(friend.status), (friend.sort_key(), user_id))
        if old is None and target is None:
            return
        lens = [len(x) for x in self._lists]
        root = QModelIndex()

        if old is None:
            assert target is not None
            section, key = target
            j = bisect.bisect_left(self._lists[section], key)
            row = _header_row(section, lens) + 1 + j
            self.beginInsertRows(root, row, row)
            self._lists[section].insert(j, key)
            self._where[user_id] = target
            self.endInsertRows()
            self._header_changed(section)
            return

        old_section, old_key = old
        i = bisect.bisect_left(self._lists[old_section], old_key)
        old_row = _header_row(old_section, lens) + 1 + i

        if target is None:
            self.beginRemoveRows(root, old_row, old_row)
            del self._lists[old_section][i]
            del self._where[user_id]
            self.endRemoveRows()
            self._header_changed(old_section)
            return

        section, key = target
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

    def _header_changed(self, section: Section) -> None:
        idx = self.index(self.header_row(section))
        self.dataChanged.emit(idx, idx)


def _header_row(section: Section, lens: list[int]) -> int:
    return sum(lens[s] + 1 for s in Section if s < section)
