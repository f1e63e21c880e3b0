"""The app icon with a status badge, rendered from the SVG art at every size asked for.

Tray hosts ask for anything from 16 to 64 px, at device pixel ratios 1–3.
Rendering each size from vector art keeps the icon crisp everywhere; 16–24 px
use a simplified variant so the outline stays on the pixel grid. Only the
tray's sizes are rendered for badged icons, and the plain icon is left to
Qt's SVG engine (issue 18, memory: all 20 sizes of every badge up front held
several MiB of pixmaps nobody displayed). A Python ``QIconEngine`` rendering
on demand was tried and crashed at interpreter exit (PySide6 ownership of
engines cloned by ``QIcon``).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QIcon, QImage, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer

from ..platform.bundle import resources_dir
from .present import Badge

SIZES = (16, 20, 22, 24, 32, 40, 48, 64, 128, 256)
TRAY_SIZES = tuple(s for s in SIZES if s <= 64)
RATIOS = (1.0, 2.0)
"""Device pixel ratios for icons rendered ahead (the unread-count icons); the badge
icons here render each size on demand instead."""
_SMALL_MAX_PX = 26
_DIMMED_OPACITY = 0.8


def icons_dir() -> Path:
    return resources_dir() / "icons"


class IconFactory:
    """Renders and caches one QIcon per badge; cheap after the first call."""

    def __init__(self, directory: Path | None = None) -> None:
        base = directory or icons_dir()
        self._base = base
        self._glyph = _renderer(base / "presence.svg")
        self._glyph_small = _renderer(base / "presence-small.svg")
        self._badges = {b: _renderer(base / f"badge-{b.value}.svg") for b in Badge}
        self._icons: dict[Badge | None, QIcon] = {}

    def image(self, badge: Badge | None, size: int, ratio: float = 1.0) -> QImage:
        """``size`` logical pixels at ``ratio``; the badge sits bottom-right."""
        px = max(1, round(size * ratio))
        image = QImage(px, px, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        glyph = self._glyph_small if px <= _SMALL_MAX_PX else self._glyph
        if badge is Badge.DISCONNECTED:
            # Grey and faded as one layer, so the overlapping bubbles do not show
            # through each other.
            layer = QImage(px, px, QImage.Format.Format_ARGB32_Premultiplied)
            layer.fill(Qt.GlobalColor.transparent)
            layer_painter = QPainter(layer)
            layer_painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            glyph.render(layer_painter, QRectF(0, 0, px, px))
            layer_painter.end()
            painter.setOpacity(_DIMMED_OPACITY)
            painter.drawImage(0, 0, _greyed(layer))
            painter.setOpacity(1.0)
        else:
            glyph.render(painter, QRectF(0, 0, px, px))
        if badge is not None:
            # Relatively larger on tiny icons so the colour still reads.
            share = 0.56 if px <= _SMALL_MAX_PX else 0.46
            b = px * share
            self._badges[badge].render(painter, QRectF(px - b, px - b, b, b))
        painter.end()
        image.setDevicePixelRatio(ratio)
        return image

    def icon(self, badge: Badge | None) -> QIcon:
        cached = self._icons.get(badge)
        if cached is not None:
            return cached
        if badge is None:
            # The plain app icon (windows, dialogs, balloons) can be asked for at
            # any size up to 256 px: Qt's own SVG icon engine renders it on demand.
            icon = QIcon(str(self._base / "presence.svg"))
        else:
            # Badged icons are for the tray, which asks for 16–64 px: only those
            # are rendered (all sizes up to 256 px at two ratios held ~2 MiB each).
            icon = QIcon()
            for size in TRAY_SIZES:
                for ratio in RATIOS:
                    icon.addPixmap(QPixmap.fromImage(self.image(badge, size, ratio)))
        self._icons[badge] = icon
        return icon


def _renderer(path: Path) -> QSvgRenderer:
    renderer = QSvgRenderer(str(path))
    if not renderer.isValid():
        raise FileNotFoundError(f"icon art missing or invalid: {path}")
    return renderer


def _greyed(image: QImage) -> QImage:
    """Greyscale that keeps the alpha channel (Format_Grayscale8 would drop it)."""
    grey = image.convertToFormat(QImage.Format.Format_ARGB32)
    alpha = grey.convertToFormat(QImage.Format.Format_Alpha8)
    grey = grey.convertToFormat(QImage.Format.Format_Grayscale8).convertToFormat(
        QImage.Format.Format_ARGB32_Premultiplied
    )
    grey.setAlphaChannel(alpha)
    return grey
