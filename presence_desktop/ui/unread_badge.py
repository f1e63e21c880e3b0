"""The unread count on the tray icon (issue 17): a red disc with a number, top right.

Drawn on top of the status icon at every size the tray host may ask for, so
it stays legible from 16 px up. It shows whatever my status is — Do not
disturb silences notifications, it does not hide that messages wait (quiet,
not invisible). The status badge keeps the bottom-right corner.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QIcon, QImage, QPainter, QPixmap

from .icons import RATIOS, SIZES, IconFactory
from .present import Badge

MAX_SHOWN = 9
"""Beyond this the disc says "9+": two digits do not fit a 16 px icon."""

_DISC = QColor("#e5534b")


def count_label(count: int) -> str:
    """'' for nothing unread, else the count, capped as "9+"."""
    if count <= 0:
        return ""
    return str(count) if count <= MAX_SHOWN else f"{MAX_SHOWN}+"


class CountedIcons:
    """Status icons with an unread count, cached per (badge, label)."""

    def __init__(self, icons: IconFactory) -> None:
        self._icons = icons
        self._cache: dict[tuple[Badge | None, str], QIcon] = {}

    def image(self, badge: Badge | None, count: int, size: int, ratio: float = 1.0) -> QImage:
        image = self._icons.image(badge, size, ratio)
        label = count_label(count)
        if not label:
            return image
        px = image.width()
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        d = px * (0.62 if px <= 26 else 0.5)
        w = d if len(label) == 1 else d * 1.3
        disc = QRectF(px - w, 0, w, d)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(255, 255, 255))
        painter.drawRoundedRect(disc, d / 2, d / 2)  # a light rim separates it from the art
        inner = disc.adjusted(px / 32, px / 32, -px / 32, -px / 32)
        painter.setBrush(_DISC)
        painter.drawRoundedRect(inner, inner.height() / 2, inner.height() / 2)
        font = QFont()
        font.setBold(True)
        font.setPixelSize(max(6, round(inner.height() * 0.78)))
        painter.setFont(font)
        painter.setPen(QColor(255, 255, 255))
        painter.drawText(inner, int(Qt.AlignmentFlag.AlignCenter), label)
        painter.end()
        return image

    def icon(self, badge: Badge | None, count: int) -> QIcon:
        key = (badge, count_label(count))
        if not key[1]:
            return self._icons.icon(badge)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        icon = QIcon()
        for size in SIZES:
            for ratio in RATIOS:
                icon.addPixmap(QPixmap.fromImage(self.image(badge, count, size, ratio)))
        self._cache[key] = icon
        return icon
