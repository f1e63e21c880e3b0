"""The app icon with a status badge, rendered from the SVG art at every size asked for.

Tray hosts ask for anything from 16 to 64 px, at device pixel ratios 1–3.
Rendering each size from vector art keeps the icon crisp everywhere; 16–24 px
use a simplified variant so the outline stays on the pixel grid. Sizes are
rendered when a tray host or window asks for them, not ahead (issue 18,
memory: rendering all 20 sizes of every badge up front held several MiB of
pixmaps nobody displayed).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QRect, QRectF, QSize, Qt
from PySide6.QtGui import QIcon, QIconEngine, QImage, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer

from ..platform.bundle import resources_dir
from .present import Badge

SIZES = (16, 20, 22, 24, 32, 40, 48, 64, 128, 256)
_SMALL_MAX_PX = 26
_DIMMED_OPACITY = 0.8


def icons_dir() -> Path:
    return resources_dir() / "icons"


class IconFactory:
    """Renders and caches one QIcon per badge; cheap after the first call."""

    def __init__(self, directory: Path | None = None) -> None:
        base = directory or icons_dir()
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
        icon = QIcon(_BadgeEngine(self, badge))
        self._icons[badge] = icon
        return icon


class _BadgeEngine(QIconEngine):
    """Renders the badged icon at the size asked for, and keeps only what was asked for."""

    def __init__(self, factory: IconFactory, badge: Badge | None) -> None:
        super().__init__()
        self._factory = factory
        self._badge = badge
        self._cache: dict[tuple[int, float], QPixmap] = {}

    def _pixmap(self, size: QSize, ratio: float) -> QPixmap:
        side = max(1, min(size.width(), size.height()))
        key = (side, ratio)
        pixmap = self._cache.get(key)
        if pixmap is None:
            pixmap = QPixmap.fromImage(self._factory.image(self._badge, side, ratio))
            self._cache[key] = pixmap
        return pixmap

    def pixmap(self, size: QSize, mode: QIcon.Mode, state: QIcon.State) -> QPixmap:
        # Qt asks for device pixels here; render 1:1.
        return self._pixmap(size, 1.0)

    def scaledPixmap(
        self, size: QSize, mode: QIcon.Mode, state: QIcon.State, scale: float
    ) -> QPixmap:
        return self._pixmap(size, scale)

    def paint(self, painter: QPainter, rect: QRect, mode: QIcon.Mode, state: QIcon.State) -> None:
        ratio = painter.device().devicePixelRatioF() if painter.device() is not None else 1.0
        painter.drawPixmap(rect, self._pixmap(rect.size(), ratio))

    def availableSizes(
        self, mode: QIcon.Mode = QIcon.Mode.Normal, state: QIcon.State = QIcon.State.Off
    ) -> list[QSize]:
        return [QSize(s, s) for s in SIZES]

    def actualSize(self, size: QSize, mode: QIcon.Mode, state: QIcon.State) -> QSize:
        side = min(size.width(), size.height())
        return QSize(side, side)

    def clone(self) -> QIconEngine:
        return _BadgeEngine(self._factory, self._badge)

    def key(self) -> str:
        return "presence-badge"


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
