"""Render the VS Code extension's 128×128 icon from the app's SVG.

The Marketplace and the extensions view want a PNG; the art lives once, as
SVG, in resources/icons. Run after changing the art:
``uv run python scripts/make_extension_icon.py``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "resources" / "icons" / "presence.svg"
TARGET = ROOT / "resources" / "vscode-extension" / "icon.png"
SIZE = 128


def main() -> int:
    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    renderer = QSvgRenderer(str(SOURCE))
    if not renderer.isValid():
        print(f"cannot read {SOURCE.relative_to(ROOT)}", file=sys.stderr)
        return 1
    image = QImage(SIZE, SIZE, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter, QRectF(0, 0, SIZE, SIZE))
    painter.end()
    if not image.save(str(TARGET), "PNG"):
        print(f"cannot write {TARGET.relative_to(ROOT)}", file=sys.stderr)
        return 1
    print(f"wrote {TARGET.relative_to(ROOT)} ({SIZE}x{SIZE})")
    del app
    return 0


if __name__ == "__main__":
    sys.exit(main())
