"""The committed icon files: every size the platforms ask for, in the right containers.

Containers are parsed here with struct, independently of the script that
writes them, so a writer bug shows up as a wrong size or a bad offset.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ICONS = ROOT / "resources" / "icons"
SCRIPT = ROOT / "scripts" / "make_icons.py"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_MAGIC, "not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.mark.parametrize("size", [16, 24, 32, 48, 64, 128, 256, 512])
def test_png_sizes_exist(size: int) -> None:
    data = (ICONS / f"presence-{size}.png").read_bytes()
    assert png_size(data) == (size, size)


def test_ico_holds_every_windows_size_from_16_to_256() -> None:
    data = (ICONS / "presence.ico").read_bytes()
    reserved, kind, count = struct.unpack_from("<HHH", data)
    assert (reserved, kind) == (0, 1)
    sizes = []
    for i in range(count):
        w, h, _colors, _res, planes, bpp, length, offset = struct.unpack_from(
            "<BBBBHHII", data, 6 + 16 * i
        )
        payload = data[offset : offset + length]
        assert len(payload) == length
        stated = w or 256
        assert (planes, bpp) == (1, 32)
        assert png_size(payload) == (stated, h or 256)
        sizes.append(stated)
    assert {16, 24, 32, 48, 256} <= set(sizes)
    assert sizes == sorted(sizes)


def test_icns_has_retina_and_standard_entries_up_to_1024() -> None:
    data = (ICONS / "presence.icns").read_bytes()
    assert data[:4] == b"icns"
    assert struct.unpack(">I", data[4:8])[0] == len(data)
    entries: dict[bytes, tuple[int, int]] = {}
    pos = 8
    while pos < len(data):
        kind = data[pos : pos + 4]
        length = struct.unpack(">I", data[pos + 4 : pos + 8])[0]
        entries[kind] = png_size(data[pos + 8 : pos + length])
        pos += length
    assert pos == len(data)
    expected = {b"ic07": 128, b"ic08": 256, b"ic09": 512, b"ic10": 1024, b"ic11": 32}
    expected |= {b"ic12": 64, b"ic13": 256, b"ic14": 512, b"icp4": 16, b"icp5": 32}
    for kind, px in expected.items():
        assert entries.get(kind) == (px, px), kind


def test_linux_desktop_entry_names_the_binary_and_icon() -> None:
    text = (ROOT / "resources" / "linux" / "presence-desktop.desktop").read_text()
    assert "\nExec=presence-desktop\n" in text
    assert "\nIcon=presence-desktop\n" in text


def run_check(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--check", "--dir", str(folder)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin"},
    )


@pytest.mark.slow
def test_committed_icons_match_the_svg_art() -> None:
    result = run_check(ICONS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "up to date" in result.stdout


@pytest.mark.slow
def test_check_catches_stale_and_missing_outputs(tmp_path: Path) -> None:
    copy = tmp_path / "icons"
    shutil.copytree(ICONS, copy)
    # The art changed (bubbles swapped colour) but nobody re-ran the script.
    svg = copy / "presence.svg"
    svg.write_text(svg.read_text().replace("#8fc4ff", "#ff2020"))
    (copy / "presence-16.png").unlink()

    result = run_check(copy)

    assert result.returncode == 1
    assert "presence-16.png missing" in result.stdout
    assert "presence-256.png differs from the SVG art" in result.stdout
    assert "presence.icns differs from the SVG art" in result.stdout
    # The 24 px output comes from the unchanged small art: not reported.
    assert "presence-24.png" not in result.stdout
