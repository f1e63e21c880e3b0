"""Render a picture of the VS Code friends view from the extension's own view model.

VS Code cannot run on the machines this project is built on, so the
Marketplace README shows a rendering instead of a screenshot: the sections,
rows, second lines and status bar text are computed by the extension's real
code (``lib/view.js``, through ``test-support/sample-view.js`` under node) and
only drawn here, in VS Code's dark theme proportions. Run after changing the
view: ``uv run python scripts/render_vscode_view.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QGuiApplication, QImage, QPainter, QPen
from PySide6.QtSvg import QSvgRenderer

ROOT = Path(__file__).resolve().parent.parent
EXTENSION = ROOT / "resources" / "vscode-extension"
TARGET = EXTENSION / "media" / "friends-view.png"

WIDTH, HEIGHT = 520, 290
SCALE = 2  # drawn at 2x so it stays sharp on high-density screens
ACTIVITY_BAR = 48
ROW = 22
BACKGROUND = QColor("#181818")
SIDEBAR = QColor("#181818")
BAR = QColor("#1f1f1f")
TEXT = QColor("#cccccc")
DIM = QColor("#9d9d9d")
HEADER = QColor("#bbbbbb")
STATUS = {
    "online": QColor("#89d185"),
    "dnd": QColor("#f14c4c"),
    "away": QColor("#cca700"),
    "invisible": QColor("#6b6b6b"),
    "offline": QColor("#6b6b6b"),
}


def view_model() -> dict[str, Any]:
    out = subprocess.run(
        ["node", str(EXTENSION / "test-support" / "sample-view.js")],
        check=True,
        capture_output=True,
        text=True,
    )
    model: dict[str, Any] = json.loads(out.stdout)
    return model


def font(size: float, bold: bool = False) -> QFont:
    f = QFont("DejaVu Sans")
    f.setPixelSize(round(size))
    f.setBold(bold)
    return f


def draw(model: dict[str, Any]) -> QImage:
    image = QImage(WIDTH * SCALE, HEIGHT * SCALE, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(BACKGROUND)
    p = QPainter(image)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setRenderHint(QPainter.RenderHint.TextAntialiasing)
    p.scale(SCALE, SCALE)

    # Activity bar with the Presence container selected.
    p.fillRect(QRectF(0, 0, ACTIVITY_BAR, HEIGHT - 22), BAR)
    p.fillRect(QRectF(0, 12, 2, 28), QColor("#0078d4"))
    icon = QSvgRenderer(str(EXTENSION / "media" / "presence.svg"))
    svg = (EXTENSION / "media" / "presence.svg").read_text().replace("currentColor", "#d7d7d7")
    icon.load(svg.encode())
    icon.render(p, QRectF(12, 14, 24, 24))

    # Sidebar: title, view header, sections.
    x0 = ACTIVITY_BAR
    p.fillRect(QRectF(x0, 0, WIDTH - x0, HEIGHT - 22), SIDEBAR)
    p.setPen(HEADER)
    p.setFont(font(11))
    p.drawText(QRectF(x0 + 20, 0, 300, 35), Qt.AlignmentFlag.AlignVCenter, "PRESENCE")
    p.setFont(font(11, bold=True))
    p.drawText(QRectF(x0 + 8, 35, 300, ROW), Qt.AlignmentFlag.AlignVCenter, "⌄  FRIENDS")
    y = 35 + ROW
    for section in model["sections"]:
        p.setPen(TEXT)
        p.setFont(font(13))
        p.drawText(
            QRectF(x0 + 16, y, 400, ROW), Qt.AlignmentFlag.AlignVCenter, f"⌄  {section['label']}"
        )
        y += ROW
        for friend in section["friends"]:
            colour = STATUS.get(friend["status"], TEXT)
            centre = QPointF(x0 + 44, y + ROW / 2)
            if friend["status"] == "offline":
                p.setPen(QPen(colour, 1.6))
                p.setBrush(Qt.BrushStyle.NoBrush)
            else:
                p.setPen(Qt.PenStyle.NoPen)
                p.setBrush(colour)
            p.drawEllipse(centre, 5, 5)
            p.setPen(TEXT)
            p.setFont(font(13))
            label_rect = QRectF(x0 + 56, y, WIDTH - x0 - 60, ROW)
            p.drawText(label_rect, Qt.AlignmentFlag.AlignVCenter, friend["label"])
            width = p.fontMetrics().horizontalAdvance(friend["label"])
            p.setPen(DIM)
            p.setFont(font(12))
            p.drawText(
                QRectF(x0 + 56 + width + 8, y, WIDTH - x0 - 64 - width, ROW),
                Qt.AlignmentFlag.AlignVCenter,
                friend["description"],
            )
            y += ROW
    # Status bar.
    p.fillRect(QRectF(0, HEIGHT - 22, WIDTH, 22), QColor("#181818"))
    p.fillRect(QRectF(0, HEIGHT - 23, WIDTH, 1), QColor("#2b2b2b"))
    p.setPen(TEXT)
    p.setFont(font(12))
    p.drawText(
        QRectF(10, HEIGHT - 22, WIDTH, 22),
        Qt.AlignmentFlag.AlignVCenter,
        model["statusBar"]["text"],
    )
    p.end()
    return image


def main() -> int:
    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    image = draw(view_model())
    if not image.save(str(TARGET), "PNG"):
        print(f"cannot write {TARGET.relative_to(ROOT)}", file=sys.stderr)
        return 1
    print(f"wrote {TARGET.relative_to(ROOT)}")
    del app
    return 0


if __name__ == "__main__":
    sys.exit(main())
