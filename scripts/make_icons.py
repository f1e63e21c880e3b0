"""Render the app icon from its SVG source into every raster format the platforms want.

Outputs (committed, next to the source in resources/icons/):
  presence-<N>.png   N in PNG_SIZES — Linux desktop entry, window icons, docs
  presence.ico       Windows: several sizes in one file (PNG-compressed entries)
  presence.icns      macOS: the .app bundle icon, 1x and 2x entries
and the 128 px Marketplace icon of the VS Code extension when that folder
exists and has none yet.

Sizes up to 24 px use presence-small.svg, a hinted variant drawn for the pixel
grid, like the tray does. Rendering is QtSvg on QImage; the .ico and .icns
containers are written with the standard library. Run it after changing the
SVG art:  uv run python scripts/make_icons.py
``--check`` renders into memory and fails if a committed file is missing or
its pixels drifted from the art (so CI catches a forgotten re-run).
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QRectF, Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

ROOT = Path(__file__).resolve().parent.parent
ICONS = ROOT / "resources" / "icons"
SMALL_MAX = 24

PNG_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 20, 24, 32, 40, 48, 64, 128, 256)
ICNS_TYPES = (
    # (OSType, pixels): PNG payloads, understood by macOS 10.7 and later.
    (b"icp4", 16),
    (b"icp5", 32),
    (b"icp6", 64),
    (b"ic07", 128),
    (b"ic08", 256),
    (b"ic09", 512),
    (b"ic10", 1024),  # 512@2x
    (b"ic11", 32),  # 16@2x
    (b"ic12", 64),  # 32@2x
    (b"ic13", 256),  # 128@2x
    (b"ic14", 512),  # 256@2x
)
EXTENSION_ICON = ROOT / "resources" / "vscode-extension" / "icon.png"
DRIFT_TOLERANCE = 2.0
"""Mean absolute channel difference (0–255) a re-render may show: Qt updates
change anti-aliasing slightly; a changed drawing changes far more."""


def render(size: int, icons: Path = ICONS) -> QImage:
    small = icons / "presence-small.svg"
    source = small if size <= SMALL_MAX and small.is_file() else icons / "presence.svg"
    renderer = QSvgRenderer(str(source))
    if not renderer.isValid():
        raise SystemExit(f"cannot read SVG art: {source}")
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter, QRectF(0, 0, size, size))
    painter.end()
    return image


def png_bytes(image: QImage) -> bytes:
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buffer, "PNG"):  # type: ignore[call-overload]  # stubs say bytes, runtime wants str
        raise SystemExit("Qt could not encode a PNG")
    buffer.close()
    return bytes(data.data())


def ico_container(images: Iterable[tuple[int, bytes]]) -> bytes:
    """ICONDIR + ICONDIRENTRY table + PNG payloads (a 0 in width/height means 256)."""
    entries = list(images)
    header = struct.pack("<HHH", 0, 1, len(entries))
    offset = len(header) + 16 * len(entries)
    table = b""
    payload = b""
    for size, png in entries:
        dim = 0 if size >= 256 else size
        table += struct.pack("<BBBBHHII", dim, dim, 0, 0, 1, 32, len(png), offset)
        offset += len(png)
        payload += png
    return header + table + payload


def icns_container(images: Iterable[tuple[bytes, bytes]]) -> bytes:
    """'icns' + total length, then (OSType, length incl. 8-byte header, PNG) blocks."""
    body = b"".join(kind + struct.pack(">I", len(png) + 8) + png for kind, png in images)
    return b"icns" + struct.pack(">I", len(body) + 8) + body


def ico_pngs(data: bytes) -> list[bytes]:
    count = struct.unpack_from("<HHH", data)[2]
    entries = [struct.unpack_from("<BBBBHHII", data, 6 + 16 * i) for i in range(count)]
    return [data[off : off + size] for *_rest, size, off in entries]


def icns_pngs(data: bytes) -> list[bytes]:
    found, pos = [], 8
    while pos + 8 <= len(data):
        length = struct.unpack_from(">I", data, pos + 4)[0]
        found.append(data[pos + 8 : pos + length])
        pos += max(length, 8)
    return found


def container_drift(committed: bytes, fresh: bytes, pngs: Callable[[bytes], list[bytes]]) -> float:
    try:
        old, new = pngs(committed), pngs(fresh)
    except struct.error:
        return float("inf")
    if len(old) != len(new):
        return float("inf")
    return max((drift(a, b) for a, b in zip(old, new, strict=True)), default=0.0)


def outputs(icons: Path = ICONS) -> dict[Path, bytes]:
    """Every generated file and its bytes, rendering each size once."""
    sizes = set(PNG_SIZES) | set(ICO_SIZES) | {px for _t, px in ICNS_TYPES}
    pngs = {size: png_bytes(render(size, icons)) for size in sorted(sizes)}
    files = {icons / f"presence-{size}.png": pngs[size] for size in PNG_SIZES}
    files[icons / "presence.ico"] = ico_container((s, pngs[s]) for s in ICO_SIZES)
    files[icons / "presence.icns"] = icns_container((k, pngs[px]) for k, px in ICNS_TYPES)
    return files


def drift(committed: bytes, fresh: bytes) -> float:
    """Mean absolute channel difference of two PNGs; inf when sizes differ or unreadable."""
    a = QImage.fromData(committed).convertToFormat(QImage.Format.Format_ARGB32)
    b = QImage.fromData(fresh).convertToFormat(QImage.Format.Format_ARGB32)
    if a.isNull() or a.size() != b.size():
        return float("inf")
    pa, pb = bytes(a.constBits()), bytes(b.constBits())
    return sum(abs(x - y) for x, y in zip(pa, pb, strict=True)) / len(pa)


def _drift_of(path: Path, fresh: bytes) -> float:
    committed = path.read_bytes()
    if path.suffix == ".ico":
        return container_drift(committed, fresh, ico_pngs)
    if path.suffix == ".icns":
        return container_drift(committed, fresh, icns_pngs)
    return drift(committed, fresh)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="verify committed outputs instead of writing"
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=ICONS,
        help="folder with the SVG art and the outputs (default: resources/icons)",
    )
    args = parser.parse_args(argv)
    _app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    icons: Path = args.dir.resolve()
    files = outputs(icons)
    if args.check:
        stale = []
        for path, data in files.items():
            if not path.is_file():
                stale.append(f"{path.name} missing")
            elif _drift_of(path, data) > DRIFT_TOLERANCE:
                stale.append(f"{path.name} differs from the SVG art")
        if stale:
            print("icons out of date; run scripts/make_icons.py:", *stale, sep="\n  ")
            return 1
        print(f"{len(files)} icon files up to date")
        return 0
    for path, data in files.items():
        path.write_bytes(data)
        print(f"wrote {path.name} ({len(data)} bytes)")
    if icons == ICONS and EXTENSION_ICON.parent.is_dir() and not EXTENSION_ICON.exists():
        EXTENSION_ICON.write_bytes(png_bytes(render(128)))
        print(f"wrote {EXTENSION_ICON.relative_to(ROOT)} (Marketplace icon, 128 px)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
