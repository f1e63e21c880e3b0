"""Paints one row of the friends list: a section header or a friend.

One delegate paints every row (no widget per friend), which is what keeps a
list of 1,000 friends cheap. It only draws what the model's roles say; the
"⋯" button area is reported through ``menu_requested``.
"""

from __future__ import annotations

from PySide6.QtCore import (
    QAbstractItemModel,
    QEvent,
    QModelIndex,
    QPersistentModelIndex,
    QPoint,
    QRect,
    QRectF,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QFontMetrics,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPen,
)
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from ..core.state import FriendView
from ..platform.bundle import resources_dir
from .avatars import AvatarStore
from .friends_model import Role
from .present import STATUS_COLOURS, avatar_hue, initials

AnyIndex = QModelIndex | QPersistentModelIndex

ROW_HEIGHT = 52
HEADER_HEIGHT = 28
AVATAR = 36
DOT = 12
PAD = 10
MENU_BUTTON = 26
MARK_GAP = 4
STALE_OPACITY = 0.5
"""Rows while disconnected: readable, but clearly not live."""


class FriendDelegate(QStyledItemDelegate):
    menu_requested = Signal(object, QPoint)
    """The row's "⋯" button was clicked: user id and where to open the menu (global).

    The id travels as ``object``: Qt's ``int`` is 32 bits, user ids are not."""

    def __init__(self, avatars: AvatarStore | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._avatars = avatars
        # Vector marks: an emoji (★, 🔕) drew as an empty box without an emoji font.
        self._marks = {name: _mark(name) for name in ("star", "muted")}

    def sizeHint(self, option: QStyleOptionViewItem, index: AnyIndex) -> QSize:
        kind = index.data(Role.KIND)
        return QSize(option.rect.width(), HEADER_HEIGHT if kind == "header" else ROW_HEIGHT)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: AnyIndex) -> None:
        painter.save()
        try:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            if index.data(Role.KIND) == "header":
                self._paint_header(painter, option, index)
            else:
                self._paint_friend(painter, option, index)
        finally:
            painter.restore()

    def menu_rect(self, row_rect: QRect) -> QRect:
        return QRect(
            row_rect.right() - PAD - MENU_BUTTON,
            row_rect.top() + (row_rect.height() - MENU_BUTTON) // 2,
            MENU_BUTTON,
            MENU_BUTTON,
        )

    def editorEvent(
        self,
        event: QEvent,
        model: QAbstractItemModel,
        option: QStyleOptionViewItem,
        index: AnyIndex,
    ) -> bool:
        if (
            event.type() == QEvent.Type.MouseButtonRelease
            and isinstance(event, QMouseEvent)
            and event.button() == Qt.MouseButton.LeftButton
            and index.data(Role.KIND) == "friend"
            and self.menu_rect(option.rect).contains(event.position().toPoint())
        ):
            widget = option.widget
            anchor = self.menu_rect(option.rect).bottomLeft()
            where = widget.mapToGlobal(anchor) if widget is not None else anchor
            self.menu_requested.emit(int(index.data(Role.USER_ID)), where)
            return True
        return super().editorEvent(event, model, option, index)

    # ---------------------------------------------------------- painting

    def _paint_header(self, p: QPainter, option: QStyleOptionViewItem, index: AnyIndex) -> None:
        rect = option.rect
        pal = option.palette
        muted = pal.color(pal.ColorGroup.Active, pal.ColorRole.PlaceholderText)
        p.setPen(QPen(_with_alpha(muted, 70), 1))
        p.drawLine(rect.left() + PAD, rect.top(), rect.right() - PAD, rect.top())
        font = QFont(option.font)
        font.setBold(True)
        font.setPointSizeF(max(7.0, option.font.pointSizeF() * 0.85))
        font.setCapitalization(QFont.Capitalization.AllUppercase)
        font.setLetterSpacing(QFont.SpacingType.PercentageSpacing, 106)
        p.setFont(font)
        p.setPen(muted)
        text = f"{index.data(Qt.ItemDataRole.DisplayRole)} — {index.data(Role.COUNT)}"
        p.drawText(
            rect.adjusted(PAD + 2, 0, -PAD, 0),
            int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter),
            text,
        )

    def _paint_friend(self, p: QPainter, option: QStyleOptionViewItem, index: AnyIndex) -> None:
        friend: FriendView | None = index.data(Role.FRIEND)
        if friend is None:
            return
        rect = option.rect
        pal = option.palette
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        hovered = bool(option.state & QStyle.StateFlag.State_MouseOver)
        if selected:
            p.fillRect(rect, pal.highlight())
        elif hovered:
            p.fillRect(rect, _with_alpha(pal.color(pal.ColorRole.Highlight), 40))
        text_colour = pal.color(pal.ColorRole.HighlightedText if selected else pal.ColorRole.Text)
        dim_colour = _with_alpha(text_colour, 150)
        if index.data(Role.STALE):
            # Disconnected: what the row says is only the last thing we heard.
            p.setOpacity(STALE_OPACITY)

        # Avatar (or initials) in a circle, status dot bottom-right.
        avatar_rect = QRect(
            rect.left() + PAD, rect.top() + (rect.height() - AVATAR) // 2, AVATAR, AVATAR
        )
        self._paint_avatar(p, avatar_rect, friend, option.font)
        dot = QRectF(avatar_rect.right() - DOT + 3, avatar_rect.bottom() - DOT + 3, DOT, DOT)
        ring = pal.color(pal.ColorRole.Highlight if selected else pal.ColorRole.Base)
        p.setPen(QPen(ring, 2.5))
        p.setBrush(QColor(STATUS_COLOURS[friend.status.value]))
        p.drawEllipse(dot)

        # Name + login on the first line, activity on the second.
        left = avatar_rect.right() + PAD
        right = rect.right() - PAD - (MENU_BUTTON + 4 if hovered or selected else 0)
        starred = bool(index.data(Role.STARRED))
        muted = bool(index.data(Role.MUTED))
        marks = [name for name, on in (("star", starred), ("muted", muted)) if on]
        name_font = QFont(option.font)
        name_font.setBold(True)
        name_metrics = QFontMetrics(name_font)
        small_font = QFont(option.font)
        small_font.setPointSizeF(max(7.0, option.font.pointSizeF() * 0.9))
        small_metrics = QFontMetrics(small_font)
        line1 = rect.top() + rect.height() // 2 - 2
        line2 = line1 + small_metrics.ascent() + 4

        width = max(0, right - left)
        name = name_metrics.elidedText(friend.display_name, Qt.TextElideMode.ElideRight, width)
        p.setFont(name_font)
        p.setPen(text_colour)
        p.drawText(QPoint(left, line1), name)
        used = name_metrics.horizontalAdvance(name) + 6
        if friend.name and used < width:
            login = small_metrics.elidedText(
                f"@{friend.login}", Qt.TextElideMode.ElideRight, width - used
            )
            p.setFont(small_font)
            p.setPen(dim_colour)
            p.drawText(QPoint(left + used, line1), login)

        activity = str(index.data(Role.ACTIVITY) or "")
        mark_size = small_metrics.ascent()
        x = left
        for name in marks:
            self._marks[name].render(p, QRectF(x, line2 - mark_size + 1, mark_size, mark_size))
            x += mark_size + MARK_GAP
        p.setFont(small_font)
        p.setPen(dim_colour)
        p.drawText(
            QPoint(x, line2),
            small_metrics.elidedText(
                activity, Qt.TextElideMode.ElideRight, max(0, width - x + left)
            ),
        )

        if option.state & QStyle.StateFlag.State_HasFocus:
            # The keyboard's place, visible even where the selection colour is faint.
            p.setOpacity(1.0)
            p.setPen(QPen(pal.color(pal.ColorRole.Highlight).lighter(130), 2))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRoundedRect(QRectF(rect).adjusted(1.5, 1.5, -1.5, -1.5), 4, 4)

        if hovered or selected:
            button = self.menu_rect(rect)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(_with_alpha(text_colour, 30))
            p.drawRoundedRect(QRectF(button), 6, 6)
            p.setPen(text_colour)
            p.setFont(name_font)
            p.drawText(button, int(Qt.AlignmentFlag.AlignCenter), "⋯")

    def _paint_avatar(self, p: QPainter, rect: QRect, friend: FriendView, font: QFont) -> None:
        pixmap = self._avatars.pixmap(friend.user_id, friend.avatar_url) if self._avatars else None
        if pixmap is not None and not pixmap.isNull():
            p.save()
            clip = QPainterPath()
            clip.addEllipse(QRectF(rect))
            p.setClipPath(clip)
            p.drawPixmap(rect, pixmap)
            p.restore()
            return
        colour = QColor.fromHsl(avatar_hue(friend.login), 140, 95)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QBrush(colour))
        p.drawEllipse(QRectF(rect))
        f = QFont(font)
        f.setBold(True)
        f.setPixelSize(max(9, rect.height() * 38 // 100))
        p.setFont(f)
        p.setPen(QColor("#ffffff"))
        p.drawText(rect, int(Qt.AlignmentFlag.AlignCenter), initials(friend.display_name))


def _mark(name: str) -> QSvgRenderer:
    renderer = QSvgRenderer(str(resources_dir() / "icons" / f"mark-{name}.svg"))
    if not renderer.isValid():
        raise FileNotFoundError(f"row mark art missing or invalid: mark-{name}.svg")
    return renderer


def _with_alpha(colour: QColor, alpha: int) -> QColor:
    c = QColor(colour)
    c.setAlpha(alpha)
    return c
