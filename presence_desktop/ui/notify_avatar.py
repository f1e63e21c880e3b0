"""An avatar image file for a notification's icon (issue 17).

Notification services take an icon as a file. A friend's downloaded avatar is
used as it is; without one (no GitHub picture, offline, a dev login) the same
initials-in-a-coloured-circle the friends list draws is rendered once to a
PNG in the cache, so the notification still says who it is from at a glance.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QImage, QPainter

from .present import avatar_hue, initials

SIZE = 96


def initials_avatar(directory: Path, login: str, display_name: str) -> Path:
    """The PNG of ``login``'s placeholder avatar (written on first use)."""
    path = directory / f"initials-{login.casefold()}.png"
    if path.exists():
        return path
    directory.mkdir(parents=True, exist_ok=True)
    image = QImage(SIZE, SIZE, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    p = QPainter(image)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QBrush(QColor.fromHsl(avatar_hue(login), 140, 95)))
    p.drawEllipse(QRectF(0, 0, SIZE, SIZE))
    font = QFont()
    font.setBold(True)
    font.setPixelSize(SIZE * 38 // 100)
    p.setFont(font)
    p.setPen(QColor("#ffffff"))
    p.drawText(QRectF(0, 0, SIZE, SIZE), int(Qt.AlignmentFlag.AlignCenter), initials(display_name))
    p.end()
    tmp = path.with_name(path.stem + ".part.png")
    if not image.save(str(tmp)):
        raise OSError(f"cannot write {tmp}")
    tmp.replace(path)
    return path
