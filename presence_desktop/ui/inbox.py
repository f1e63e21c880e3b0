"""Received messages, newest first, with Reply; opening the page marks them read."""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPalette
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from ..core.format import ago_text
from ..core.state import InboxMessage, PresenceState

AnyIndex = QModelIndex | QPersistentModelIndex


class InboxPage(QWidget):
    def __init__(
        self,
        state: PresenceState,
        reply: Callable[[int, str], None],
        *,
        clock: Callable[[], float] = time.time,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._state = state
        self._reply = reply
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
        self.reply_button = QPushButton("Reply…")
        self.reply_button.setAutoDefault(False)
        self.reply_button.setEnabled(False)
        self.reply_button.clicked.connect(self._reply_selected)
        top.addWidget(self.reply_button)
        v.addLayout(top)
        self.list = QListWidget()
        self.list.setObjectName("Inbox")
        self.list.setWordWrap(True)
        self.list.setUniformItemSizes(False)
        self.list.setItemDelegate(MessageDelegate(self.list))
        self.list.setFrameShape(QListWidget.Shape.NoFrame)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.itemSelectionChanged.connect(
            lambda: self.reply_button.setEnabled(bool(self.list.selectedItems()))
        )
        self.list.itemDoubleClicked.connect(lambda _item: self._reply_selected())
        v.addWidget(self.list, 1)
        self.empty = QLabel("No messages yet.")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        v.addWidget(self.empty)
        state.inbox_changed.connect(lambda _none: self.rebuild())
        self.rebuild()

    def rebuild(self) -> None:
        self.list.clear()
        now = self._clock()
        for message in reversed(self._state.inbox):
            item = QListWidgetItem(message.text)
            item.setData(Qt.ItemDataRole.UserRole, (message.sender_id, message.sender_login))
            item.setData(
                _HEADING_ROLE, f"{message.sender_login} · {ago_text(now - message.sent_at)}"
            )
            item.setData(_UNREAD_ROLE, not message.read)
            item.setToolTip(_item_text(message, now))
            self.list.addItem(item)
        self.empty.setVisible(not self._state.inbox)
        self.list.setVisible(bool(self._state.inbox))

    def _reply_selected(self) -> None:
        items = self.list.selectedItems()
        if items:
            sender_id, login = items[0].data(Qt.ItemDataRole.UserRole)
            self._reply(int(sender_id), str(login))


_HEADING_ROLE = Qt.ItemDataRole.UserRole + 1
_UNREAD_ROLE = Qt.ItemDataRole.UserRole + 2
_PAD = 10


class MessageDelegate(QStyledItemDelegate):
    """Sender and age on the first line, the message wrapped below."""

    def sizeHint(self, option: QStyleOptionViewItem, index: AnyIndex) -> QSize:
        width = max(120, option.rect.width() or 360) - 2 * _PAD
        metrics = QFontMetrics(option.font)
        body = metrics.boundingRect(
            QRect(0, 0, width, 10_000),
            int(Qt.TextFlag.TextWordWrap),
            str(index.data(Qt.ItemDataRole.DisplayRole)),
        )
        return QSize(width + 2 * _PAD, metrics.height() + body.height() + 2 * _PAD + 4)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: AnyIndex) -> None:
        painter.save()
        rect = option.rect.adjusted(_PAD, _PAD, -_PAD, -_PAD)
        pal = option.palette
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        if selected:
            painter.fillRect(option.rect, pal.highlight())
        text = pal.color(pal.ColorRole.HighlightedText if selected else pal.ColorRole.Text)
        heading_font = QFont(option.font)
        heading_font.setBold(True)
        painter.setFont(heading_font)
        painter.setPen(text)
        metrics = QFontMetrics(heading_font)
        heading = str(index.data(_HEADING_ROLE))
        if index.data(_UNREAD_ROLE):
            heading = "● " + heading
        painter.drawText(
            QRect(rect.left(), rect.top(), rect.width(), metrics.height()),
            int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter),
            metrics.elidedText(heading, Qt.TextElideMode.ElideRight, rect.width()),
        )
        painter.setFont(option.font)
        painter.drawText(
            rect.adjusted(0, metrics.height() + 4, 0, 0),
            int(Qt.TextFlag.TextWordWrap | Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop),
            str(index.data(Qt.ItemDataRole.DisplayRole)),
        )
        painter.setPen(QColor(128, 128, 128, 60))
        painter.drawLine(option.rect.bottomLeft(), option.rect.bottomRight())
        painter.restore()


def _item_text(message: InboxMessage, now: float) -> str:
    return f"{message.sender_login} · {ago_text(now - message.sent_at)}\n{message.text}"
