"""The tray's "Install VS Code extension": offered only when it can work.

Availability is asked again each time the menu opens (a handful of file
checks), so installing VS Code while the app runs makes the entry appear.
The install itself runs the editor's CLI as an asyncio subprocess on the
app's loop (``platform.vscode.install_extension``); the ui shows the result
with a title and a message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from ..platform.vscode import Editor, InstallResult, bundled_vsix, find_editors, install_extension

log = logging.getLogger(__name__)

TITLE = "Install VS Code extension"


class ExtensionInstaller(QObject):
    started = Signal()
    finished = Signal(object)
    """One ``InstallResult`` for the whole run (every editor found)."""

    def __init__(
        self,
        find: Callable[[], list[Editor]] = find_editors,
        vsix: Callable[[], Path | None] = bundled_vsix,
        install: Callable[[Editor, Path], Awaitable[InstallResult]] = install_extension,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._find = find
        self._vsix = vsix
        self._install = install
        self.task: asyncio.Task[InstallResult] | None = None
        self.running = False
        """From ``start`` until ``finished`` is emitted (the menu greys the entry)."""

    def targets(self) -> tuple[list[Editor], Path | None]:
        """The editors found and the bundled package, asked afresh."""
        try:
            return self._find(), self._vsix()
        except OSError:
            log.warning("could not look for VS Code", exc_info=True)
            return [], None

    def available(self) -> bool:
        editors, vsix = self.targets()
        return bool(editors) and vsix is not None

    def start(self) -> asyncio.Task[InstallResult] | None:
        """Begin installing into every editor found; None if already running."""
        if self.running:
            return None
        loop = asyncio.get_running_loop()
        self.running = True
        self.task = loop.create_task(self.run())
        self.started.emit()
        return self.task

    async def run(self) -> InstallResult:
        try:
            editors, vsix = self.targets()
            if not editors or vsix is None:
                result = InstallResult(
                    False, TITLE, "No VS Code installation or extension package was found."
                )
            else:
                results = [await self._install(editor, vsix) for editor in editors]
                result = results[0] if len(results) == 1 else _combine(results)
        finally:
            self.running = False
        log.info("extension install: %s — %s", result.title, result.message)
        self.finished.emit(result)
        return result


def _combine(results: list[InstallResult]) -> InstallResult:
    lines = [f"{r.title.removeprefix('Install extension in ')}: {r.message}" for r in results]
    return InstallResult(all(r.ok for r in results), TITLE, "\n".join(lines))
