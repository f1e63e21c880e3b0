"""The dependency arrows of DESIGN.md, checked on the source.

desktop → protocol ← server; inside the desktop ui → core/net → protocol.
Only ui/ (and the entry point that builds it) may import Qt widgets; core/
imports no Qt at all, so nearly all behaviour is testable without a display.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def offenders(package: str, forbidden: tuple[str, ...]) -> list[str]:
    bad = []
    for path in modules(package):
        for name in imports_of(path):
            if name.startswith(forbidden):
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
    return bad


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        (
            "presence_protocol",
            (
                "presence_server",
                "presence_desktop",
                "websockets",
                "PySide6",
                "asyncio",
                "sqlalchemy",
                "socket",
            ),
        ),
        ("presence_server", ("presence_desktop", "PySide6", "qasync")),
        ("presence_desktop", ("presence_server.store", "presence_server.handlers")),
        (
            "presence_desktop/core",
            (
                "PySide6",
                "qasync",
                "websockets",
                "httpx",
                "keyring",
                "presence_desktop.ui",
                "presence_desktop.net",
            ),
        ),
        ("presence_desktop/net", ("PySide6.QtWidgets", "PySide6.QtGui", "presence_desktop.ui")),
        ("presence_desktop/platform", ("PySide6.QtWidgets", "presence_desktop.ui")),
    ],
)
def test_dependency_arrows(package: str, forbidden: tuple[str, ...]) -> None:
    assert modules(package), f"{package} has no modules"
    assert offenders(package, forbidden) == []


def test_only_ui_and_entry_points_import_qt_widgets() -> None:
    allowed = {"ui", "__main__.py", "selftest.py"}
    bad = []
    for path in modules("presence_desktop"):
        rel = path.relative_to(ROOT / "presence_desktop")
        if rel.parts[0] in allowed:
            continue
        if any(n.startswith(("PySide6.QtWidgets", "PySide6.QtGui")) for n in imports_of(path)):
            bad.append(str(rel))
    assert bad == []
