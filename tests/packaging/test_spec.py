"""build.spec, executed with stand-ins for PyInstaller's build steps.

The real build runs in scripts/build_binary.sh (too slow for the suite);
here the spec's decisions are checked for all three platforms on any OS:
windowed, icon per platform, version from pyproject, one-folder by default,
the one-file switch, the macOS bundle, what is bundled and what is dropped.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "build.spec"
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


class Step:
    """Records how the spec called one PyInstaller build step."""

    def __init__(self, calls: dict[str, list[Step]], kind: str, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs
        calls.setdefault(kind, []).append(self)
        if kind == "Analysis":
            self.scripts = ["entry"]
            self.pure = ["pure"]
            self.binaries = [
                ("PySide6/Qt/lib/libQt6Core.so.6", "src", "BINARY"),
                ("PySide6/Qt/lib/libQt6Quick.so.6", "src", "BINARY"),
                ("PySide6/Qt/plugins/platforms/libqxcb.so", "src", "BINARY"),
                ("PySide6/Qt/plugins/platformthemes/libqgtk3.so", "src", "BINARY"),
                ("PySide6\\opengl32sw.dll", "src", "BINARY"),
                ("libgtk-3.so.0", "src", "BINARY"),
            ]
            self.datas = [
                ("PySide6/Qt/translations/qtbase_de.qm", "src", "DATA"),
                ("resources/icons/presence.svg", "src", "DATA"),
            ]


def run_spec(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, platform: str, onefile: bool = False
) -> dict[str, list[Step]]:
    calls: dict[str, list[Step]] = {}
    dist = tmp_path / "dist"
    namespace: dict[str, Any] = {
        "SPECPATH": str(ROOT),
        "DISTPATH": str(dist),
        "workpath": str(tmp_path / "build"),
    }
    for kind in ("Analysis", "PYZ", "EXE", "BUNDLE"):
        namespace[kind] = lambda *a, _k=kind, **kw: Step(calls, _k, *a, **kw)

    def collect(*args: Any, **kwargs: Any) -> Step:
        (dist / kwargs["name"]).mkdir(parents=True)
        return Step(calls, "COLLECT", *args, **kwargs)

    namespace["COLLECT"] = collect
    monkeypatch.delenv("PRESENCE_SPEC_ENTRY", raising=False)
    if onefile:
        monkeypatch.setenv("PRESENCE_ONEFILE", "1")
    else:
        monkeypatch.delenv("PRESENCE_ONEFILE", raising=False)
    code = compile(SPEC.read_text(), str(SPEC), "exec")
    with monkeypatch.context() as m:
        m.setattr(sys, "platform", platform)
        exec(code, namespace)
    calls["namespace"] = [namespace]  # type: ignore[list-item]
    return calls


def test_spec_is_valid_python() -> None:
    ast.parse(SPEC.read_text())


def test_linux_one_folder_windowed_with_desktop_entry_beside_binary(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls = run_spec(monkeypatch, tmp_path, "linux")
    (exe,) = calls["EXE"]
    assert exe.kwargs["console"] is False
    assert exe.kwargs["name"] == "presence-desktop"
    assert exe.kwargs["exclude_binaries"] is True  # one-folder
    assert exe.kwargs["upx"] is False
    assert exe.kwargs["version"] is None
    assert "COLLECT" in calls and "BUNDLE" not in calls
    out = tmp_path / "dist" / "presence-desktop"
    desktop = (out / "presence-desktop.desktop").read_text()
    assert "Exec=presence-desktop" in desktop
    assert (out / "presence-desktop.png").read_bytes()[:4] == b"\x89PNG"


def test_analysis_bundles_resources_and_excludes_what_a_tray_app_never_uses(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls = run_spec(monkeypatch, tmp_path, "linux")
    (analysis,) = calls["Analysis"]
    assert analysis.args[0] == [str(ROOT / "scripts" / "frozen_entry.py")]
    excludes = set(analysis.kwargs["excludes"])
    for module in (
        "PySide6.QtQml",
        "PySide6.QtQuick",
        "PySide6.QtWebEngineCore",
        "PySide6.QtMultimedia",
        "PySide6.QtPdf",
        "PySide6.QtCharts",
        "PySide6.Qt3DCore",
        "asyncpg",
        "redis",
        "keyrings.alt",
        "pytest",
        "numpy",
        "PIL",
    ):
        assert module in excludes
    # --demo runs an embedded server, so the server package stays in.
    assert not {"presence_server", "sqlalchemy", "aiosqlite"} & excludes
    for needed in ("PySide6.QtWidgets", "PySide6.QtSvg", "PySide6.QtNetwork", "PySide6.QtDBus"):
        assert needed not in excludes
    bundled = {(Path(src).name, dest) for src, dest in analysis.kwargs["datas"]}
    assert ("presence.svg", "resources/icons") in bundled
    assert ("badge-online.svg", "resources/icons") in bundled
    assert ("presence-256.png", "resources/icons") in bundled
    assert ("presence-desktop.desktop", "resources/linux") in bundled
    # --demo's server: Alembic reads its scripts as files, SQLAlchemy imports the driver by name.
    assert ("env.py", "presence_server/storage/migrations") in bundled
    assert ("r0001_initial.py", "presence_server/storage/migrations/versions") in bundled
    assert "aiosqlite" in analysis.kwargs["hiddenimports"]
    # The filtered TOC: Qt Quick, translations and the GTK theme are gone.
    assert [b[0] for b in analysis.binaries] == [
        "PySide6/Qt/lib/libQt6Core.so.6",
        "PySide6/Qt/plugins/platforms/libqxcb.so",
    ]
    assert [d[0] for d in analysis.datas] == ["resources/icons/presence.svg"]


def test_windows_gets_the_ico_and_a_version_resource_from_pyproject(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls = run_spec(monkeypatch, tmp_path, "win32")
    (exe,) = calls["EXE"]
    assert exe.kwargs["icon"] == str(ROOT / "resources" / "icons" / "presence.ico")
    assert exe.kwargs["console"] is False
    text = Path(exe.kwargs["version"]).read_text()
    nums = (*(int(p) for p in VERSION.split(".")), 0)
    assert f"filevers={nums}" in text
    assert f"StringStruct('FileVersion', '{VERSION}')" in text
    assert f"StringStruct('ProductVersion', '{VERSION}')" in text
    assert "StringStruct('OriginalFilename', 'presence-desktop.exe')" in text
    # Windows keeps its DLLs; the Linux-only GTK list does not apply there.
    (analysis,) = calls["Analysis"]
    names = [b[0] for b in analysis.binaries]
    assert "libgtk-3.so.0" in names
    assert "PySide6\\opengl32sw.dll" not in names


def test_windows_version_text_is_what_pyinstaller_loads(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls = run_spec(monkeypatch, tmp_path, "win32")
    text_of = calls["namespace"][0]["windows_version_text"]  # type: ignore[index]
    # Evaluate with stand-ins of PyInstaller's versioninfo classes.
    seen: dict[str, Any] = {}

    def record(kind: str) -> Any:
        def make(*args: Any, **kwargs: Any) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
            seen.setdefault(kind, []).append((args, kwargs))
            return (kind, args, kwargs)

        return make

    names = ["VSVersionInfo", "FixedFileInfo", "StringFileInfo", "StringTable"]
    names += ["StringStruct", "VarFileInfo", "VarStruct"]
    eval(text_of("2.10.3rc1+local"), {n: record(n) for n in names})
    (ffi,) = seen["FixedFileInfo"]
    assert ffi[1]["filevers"] == (2, 10, 3, 0)
    assert ffi[1]["prodvers"] == (2, 10, 3, 0)
    strings = dict(args for args, _kw in seen["StringStruct"])
    assert strings["FileVersion"] == "2.10.3rc1+local"


def test_macos_builds_an_app_bundle_without_a_dock_icon(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls = run_spec(monkeypatch, tmp_path, "darwin", onefile=True)
    (bundle,) = calls["BUNDLE"]
    assert bundle.kwargs["name"] == "Presence.app"
    assert bundle.kwargs["icon"] == str(ROOT / "resources" / "icons" / "presence.icns")
    plist = bundle.kwargs["info_plist"]
    assert plist["LSUIElement"] is True
    assert plist["CFBundleShortVersionString"] == VERSION
    assert bundle.kwargs["version"] == VERSION
    # An .app is a folder: the one-file switch is ignored on macOS.
    assert calls["EXE"][0].kwargs["exclude_binaries"] is True


@pytest.mark.parametrize("platform", ["linux", "win32"])
def test_onefile_switch_puts_everything_in_the_executable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, platform: str
) -> None:
    calls = run_spec(monkeypatch, tmp_path, platform, onefile=True)
    (exe,) = calls["EXE"]
    assert "COLLECT" not in calls
    assert "exclude_binaries" not in exe.kwargs
    binaries = exe.args[2]
    assert ("PySide6/Qt/lib/libQt6Core.so.6", "src", "BINARY") in binaries


def test_baseline_entry_is_frozen_the_same_way_without_app_resources(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    app = run_spec(monkeypatch, tmp_path / "app", "linux")
    monkeypatch.setenv("PRESENCE_SPEC_ENTRY", str(ROOT / "benchmarks" / "baseline_tray.py"))
    monkeypatch.setattr(sys, "platform", "linux")
    calls: dict[str, list[Step]] = {}
    namespace: dict[str, Any] = {
        "SPECPATH": str(ROOT),
        "DISTPATH": str(tmp_path / "dist"),
        "workpath": str(tmp_path / "build"),
    }
    for kind in ("Analysis", "PYZ", "EXE", "COLLECT", "BUNDLE"):
        namespace[kind] = lambda *a, _k=kind, **kw: Step(calls, _k, *a, **kw)
    exec(compile(SPEC.read_text(), str(SPEC), "exec"), namespace)

    (analysis,) = calls["Analysis"]
    assert analysis.args[0] == [str(ROOT / "benchmarks" / "baseline_tray.py")]
    assert analysis.kwargs["datas"] == []
    assert analysis.kwargs["hiddenimports"] == []
    assert analysis.kwargs["excludes"] == app["Analysis"][0].kwargs["excludes"]
    (exe,) = calls["EXE"]
    assert exe.kwargs["name"] == "baseline-tray"
    for option in ("console", "strip", "upx", "exclude_binaries"):
        assert exe.kwargs[option] == app["EXE"][0].kwargs[option]
    assert not (tmp_path / "dist").exists()  # no desktop entry copied
