"""The conversation list (issue 17): one row per friend, newest activity first.

Each row shows the friend, the last message (mine prefixed "You:"), when, and
how many of theirs are unread. Activating a row opens the conversation, which
marks it read. A search field above finds messages across the whole local
history; activating a hit opens that conversation.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPalette
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from ..core.conversations import Conversations
from ..core.format import ago_text
from ..core.history import HistoryEntry, HistoryError
from ..core.state import PresenceState

AnyIndex = QModelIndex | QPersistentModelIndex

PEER_ROLE = Qt.ItemDataRole.UserRole
HEADING_ROLE = Qt.ItemDataRole.UserRole + 1
WHEN_ROLE = Qt.ItemDataRole.UserRole + 2
UNREAD_ROLE = Qt.ItemDataRole.UserRole + 3
_PAD = 10
_UNREAD_BG = QColor("#e5534b")


class InboxPage(QWidget):
    """The list of conversations (the header's "Inbox" button opens it)."""

    def __init__(
        self,
        state: PresenceState,
        conversations: Conversations,
        open_conversation: Callable[[int], None],
        *,
        clock: Callable[[], float] = time.time,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._state = state
        self._book = conversations
        self._open = open_conversation
        self._clock = clock
        v = QVBoxLayout(self)
        v.setContentsMargins(0, 0, 0, 0)
        top = QHBoxLayout()
        top.setContentsMargins(10, 6, 10, 0)
        self.back = QPushButton("← Friends")
        self.back.setFlat(True)
        self.back.setAutoDefault(False)
        top.addWidget(self.back)
        top.addStretch(1)
        v.addLayout(top)
        self.search = QLineEdit()
        self.search.setObjectName("HistorySearch")
        self.search.setPlaceholderText("Search messages on this computer")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(lambda _t: self.rebuild())
        self.search.returnPressed.connect(self._open_first)
        box = QWidget()
        bh = QHBoxLayout(box)
        bh.setContentsMargins(10, 4, 10, 4)
        bh.addWidget(self.search)
        v.addWidget(box)
        self.list = QListWidget()
        self.list.setObjectName("Conversations")
        self.list.setUniformItemSizes(False)
        self.list.setItemDelegate(ConversationDelegate(self.list))
        self.list.setFrameShape(QListWidget.Shape.NoFrame)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.itemActivated.connect(self._activated)
        self.list.itemClicked.connect(self._activated)
        v.addWidget(self.list, 1)
        self.empty = QLabel()
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        self.empty.setContentsMargins(16, 16, 16, 16)
        self.empty.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        v.addWidget(self.empty)
        conversations.listing_changed.connect(lambda _none: self.rebuild())
        state.friend_changed.connect(lambda _uid: self.rebuild())
        state.reset.connect(lambda _none: self.rebuild())
        self.rebuild()

    def rebuild(self) -> None:
        self.list.clear()
        query = self.search.text().strip()
        if query:
            self._show_hits(query)
            return
        now = self._clock()
        summaries = self._book.summaries()
        for s in summaries:
            self._add(s.peer, s.last, now, unread=s.unread)
        self.empty.setText(
            "No conversations yet. Open a friend (click, Enter or their menu) to write to them."
        )
        self._show_list(bool(summaries))

    def _show_hits(self, query: str) -> None:
        try:
            hits = self._book.search(query)
        except HistoryError as exc:
            self.empty.setText(str(exc))
            self._show_list(False)
            return
        now = self._clock()
        for hit in hits:
            self._add(hit.peer, hit, now, unread=0)
        self.empty.setText(f"No message contains “{query}”.")
        self._show_list(bool(hits))

    def _add(self, peer: int, last: HistoryEntry, now: float, *, unread: int) -> None:
        friend = self._state.friends.get(peer)
        name = friend.display_name if friend is not None else self._state.login_of(peer)
        text = ("You: " if last.outgoing else "") + " ".join(last.text.split())
        item = QListWidgetItem(text)
        item.setData(PEER_ROLE, peer)
        item.setData(HEADING_ROLE, name)
        item.setData(WHEN_ROLE, ago_text(now - last.at))
        item.setData(UNREAD_ROLE, unread)
        item.setToolTip(f"{name}\n{last.text}")
        item.setData(
            Qt.ItemDataRole.AccessibleTextRole,
            f"{name}, {unread} unread, {text}" if unread else f"{name}, {text}",
        )
        self.list.addItem(item)

    def _show_list(self, any_rows: bool) -> None:
        self.empty.setVisible(not any_rows)
        self.list.setVisible(any_rows)

    def _activated(self, item: QListWidgetItem) -> None:
        self._open(int(item.data(PEER_ROLE)))

    def _open_first(self) -> None:
        if self.list.count():
            self._activated(self.list.item(0))

    def rows(self) -> list[tuple[str, str, int]]:
        """(name, last message, unread) of each row, top to bottom (tests, accessibility)."""
        out = []
        for i in range(self.list.count()):
            item = self.list.item(i)
            out.append((str(item.data(HEADING_ROLE)), item.text(), int(item.data(UNREAD_ROLE))))
        return out


class ConversationDelegate(QStyledItemDelegate):
    """Name and time on the first line, the last message elided below, an unread pill."""

    def sizeHint(self, option: QStyleOptionViewItem, index: AnyIndex) -> QSize:
        metrics = QFontMetrics(option.font)
        return QSize(option.rect.width() or 360, 2 * metrics.height() + 2 * _PAD + 4)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: AnyIndex) -> None:
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = option.rect.adjusted(_PAD, _PAD, -_PAD, -_PAD)
        pal = option.palette
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        if selected:
            painter.fillRect(option.rect, pal.highlight())
        elif option.state & QStyle.StateFlag.State_MouseOver:
            painter.fillRect(option.rect, pal.alternateBase())
        fg = pal.color(pal.ColorRole.HighlightedText if selected else pal.ColorRole.Text)
        muted = pal.color(
            pal.ColorRole.HighlightedText if selected else pal.ColorRole.PlaceholderText
        )
        unread = int(index.data(UNREAD_ROLE) or 0)
        bold = QFont(option.font)
        bold.setBold(True)
        metrics = QFontMetrics(option.font)
        line = metrics.height()
        when = str(index.data(WHEN_ROLE))
        when_w = metrics.horizontalAdvance(when) + 4
        painter.setFont(bold)
        painter.setPen(fg)
        heading = QRect(rect.left(), rect.top(), rect.width() - when_w - 6, line)
        painter.drawText(
            heading,
            int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter),
            QFontMetrics(bold).elidedText(
                str(index.data(HEADING_ROLE)), Qt.TextElideMode.ElideRight, heading.width()
            ),
        )
        painter.setFont(option.font)
        painter.setPen(muted)
        painter.drawText(
            QRect(rect.right() - when_w, rect.top(), when_w, line),
            int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter),
            when,
        )
        body = QRect(rect.left(), rect.top() + line + 4, rect.width(), line)
        if unread:
            label = str(unread) if unread < 100 else "99+"
            w = max(line, metrics.horizontalAdvance(label) + 10)
            pill = QRectF(rect.right() - w, body.top(), w, line)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(_UNREAD_BG)
            painter.drawRoundedRect(pill, line / 2, line / 2)
            painter.setPen(QColor("#ffffff"))
            painter.setFont(bold)
            painter.drawText(pill, int(Qt.AlignmentFlag.AlignCenter), label)
            body.setRight(int(pill.left()) - 6)
        painter.setFont(bold if unread else option.font)
        painter.setPen(fg if unread else muted)
        painter.drawText(
            body,
            int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter),
            QFontMetrics(painter.font()).elidedText(
                str(index.data(Qt.ItemDataRole.DisplayRole)),
                Qt.TextElideMode.ElideRight,
                body.width(),
            ),
        )
        painter.setPen(QColor(128, 128, 128, 60))
        painter.drawLine(option.rect.bottomLeft(), option.rect.bottomRight())
        painter.restore()
