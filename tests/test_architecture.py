"""The dependency arrows of DESIGN.md, checked on the source.

desktop → protocol ← server; inside the desktop ui → core/net → protocol.
Only ui/ (and the entry point that builds it) may import Qt widgets; core/
imports no Qt at all, so nearly all behaviour is testable without a display.

Every import counts: absolute and relative (``from ..ui import x`` is
resolved to ``presence_desktop.ui.x``), at module level, inside functions and
under ``TYPE_CHECKING`` — a lazy or type-only import is still an arrow a
reader has to follow. No two modules of a package may reach each other
through imports (no cycles).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


PACKAGES = ("presence_protocol", "presence_server", "presence_desktop")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> set[str]:
    return {module_name(path) for package in PACKAGES for path in modules(package)}


def imports_of(
    path: Path, known: frozenset[str] | set[str] = frozenset(), *, name: str | None = None
) -> set[str]:
    """Absolute names of what ``path`` imports; relative imports resolved
    (as if the file were module ``name``, by default its own).

    ``from pkg import name`` yields ``pkg.name`` when that is a module in
    ``known``, else ``pkg`` (a name defined in the package's ``__init__``).
    """
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = (name or module_name(path)).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                found.add(submodule if submodule in known else source)
    return found


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def import_graph(package: str) -> dict[str, set[str]]:
    """Module → the modules of the same top-level package it imports."""
    known = all_modules()
    graph: dict[str, set[str]] = {}
    for path in modules(package):
        name = module_name(path)
        graph[name] = {
            other
            for other in imports_of(path, known)
            if other in known and other != name and other.split(".")[0] == package
        }
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def offenders(package: str, forbidden: tuple[str, ...]) -> list[str]:
    bad = []
    known = all_modules()
    for path in modules(package):
        for name in imports_of(path, known):
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
        # The session is socket-free and reads time only through its injected clock.
        ("presence_server/session", ("websockets", "socket", "time", "presence_server.edge")),
        ("presence_desktop", ("presence_server.storage.store", "presence_server.session.handlers")),
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


@pytest.mark.parametrize(
    "package",
    [
        "presence_protocol",
        "presence_desktop",
        "presence_server",
    ],
)
def test_no_import_cycles(package: str) -> None:
    assert cycles(import_graph(package)) == []


SERVER_LAYERS = {
    # Leaves every layer may use: what an instance is started with, identities
    # and tokens, and the metrics every part counts into.
    "config": 0,
    "auth": 0,
    "metrics": 0,
    "storage": 1,
    "domain": 2,
    "cluster": 3,
    "session": 4,
    "edge": 5,
    "__main__": 6,
    "": 6,
}
"""presence_server's layers, lowest first (DESIGN.md): edge → session → domain →
storage; cluster (who is online where, fan-out) serves the session and uses the
domain's presence merge. An arrow may only point to the same layer or lower."""


def server_layer(module: str) -> str:
    parts = module.split(".")[1:]
    return parts[0] if parts else ""


def test_every_server_module_is_in_a_layer() -> None:
    for module in import_graph("presence_server"):
        assert server_layer(module) in SERVER_LAYERS, f"{module}: put it in a layer package"


def test_server_layers_only_point_down() -> None:
    upward = [
        f"{module} -> {target}"
        for module, targets in import_graph("presence_server").items()
        for target in targets
        if SERVER_LAYERS[server_layer(target)] > SERVER_LAYERS[server_layer(module)]
    ]
    assert upward == []


def test_the_checker_sees_relative_imports_and_cycles(tmp_path: Path) -> None:
    """A relative import from core/ up into ui/ is an offence, and modules that
    reach each other are a cycle (the checker itself, so it cannot pass vacuously)."""
    core = ROOT / "presence_desktop" / "core" / "format.py"
    probe = tmp_path / "format.py"
    probe.write_text(core.read_text(encoding="utf-8") + "\nfrom ..ui.panel import Panel\n")
    found = imports_of(probe, all_modules(), name="presence_desktop.core.format")
    assert "presence_desktop.ui.panel" in found
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
