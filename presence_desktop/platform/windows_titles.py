"""Editor activity without the extension: read VS Code's window titles.

VS Code's default title is ``● file — folder — Visual Studio Code`` (the
separator is `` - `` outside macOS and can be changed; ``●`` marks unsaved
changes). That tells the file, the folder name and whether I am editing.
Each platform lists top-level windows behind the small ``WindowLister``
interface; where none can (Wayland), ``running_editors`` still tells from
the process list that VS Code is open. ``TitleDetector`` feeds what it finds
into the ``ActivityMerger`` as ``Source.TITLE``, which counts only while no
editor is connected over the bridge.

Title-derived reports carry names, never paths, so folder and remote
privacy rules cannot match them: the default level always applies.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import sys
from collections.abc import Hashable, Iterable
from pathlib import Path

from presence_protocol import ActivityKind

from ..core.activity import ActivityMerger, EditorReport, Scheduler, Source, TimerHandle
from ..core.languages import language_for_file
from .top_window import TopWindow, WindowLister

log = logging.getLogger(__name__)

POLL_SECONDS = 10.0
"""Titles change without any event we can subscribe to from every platform."""

_APPS = (
    ("Visual Studio Code - Insiders", "VS Code Insiders"),
    ("Visual Studio Code", "Visual Studio Code"),
    ("VSCodium - Insiders", "VSCodium Insiders"),
    ("VSCodium", "VSCodium"),
    ("Code - OSS", "Code - OSS"),
)
_DIRTY = ("●", "•", "*")
_NOT_FILES = {
    "welcome",
    "get started",
    "settings",
    "keyboard shortcuts",
    "extensions",
    "release notes",
    "running extensions",
    "walkthrough",
    "untitled (workspace)",
}
_SUFFIX = re.compile(r"\s*(?:\[[^\]]*\]|\((?:Workspace|Working Tree|Index|Read-only)\))\s*$")
_FILE_SHAPE = re.compile(
    r"^[^\s].*\.[A-Za-z0-9_+-]{1,10}$|^Untitled-\d+$|^(?:Makefile|Dockerfile)$"
)


@dataclasses.dataclass(frozen=True, slots=True)
class ParsedTitle:
    editor: str
    file: str = ""
    folder: str = ""
    dirty: bool = False
    remote: str = ""
    """``SSH: host``, ``WSL: Ubuntu``, ``Dev Container: …`` — local knowledge only."""


def _strip_suffixes(text: str) -> tuple[str, str]:
    remote = ""
    while True:
        match = _SUFFIX.search(text)
        if match is None or match.start() == 0:
            return text.strip(), remote
        inner = match.group(0).strip()[1:-1]
        if ":" in inner and not remote:
            remote = inner
        text = text[: match.start()]


def parse_title(title: str) -> ParsedTitle | None:
    """The parts of a VS Code-family window title; None for other windows."""
    text = " ".join(title.split())
    dirty = False
    for marker in _DIRTY:
        if text.startswith(marker + " "):
            dirty, text = True, text[len(marker) + 1 :]
            break
    # The app name ends the title, maybe followed by "[Administrator]" and the like.
    core = text
    while (m := re.search(r"\s*\[[^\]]*\]\s*$", core)) is not None and m.start() > 0:
        core = core[: m.start()]
    for app, label in _APPS:
        if core == app:
            return ParsedTitle(editor=label, dirty=dirty)
        if not core.endswith(app):
            continue
        head = core[: -len(app)]
        sep_match = re.search(r"(\s*[^\w\s\[\]().]{1,3}\s*)$", head)
        if sep_match is None or not sep_match.group(1).strip():
            continue
        sep = sep_match.group(1)
        rest = head[: sep_match.start()]
        parts = [p for p in rest.split(sep) if p.strip()] if rest else []
        return _assign(label, parts, dirty)
    return None


def _assign(editor: str, parts: list[str], dirty: bool) -> ParsedTitle:
    file = folder = remote = ""
    cleaned = []
    for part in parts:
        text, found = _strip_suffixes(part)
        remote = remote or found
        cleaned.append(text)
    if len(cleaned) >= 2:
        file, folder = cleaned[0], cleaned[1]
    elif cleaned:
        only = cleaned[0]
        if _FILE_SHAPE.match(only) and only.lower() not in _NOT_FILES:
            file = only
        else:
            folder = only
    if file.lower() in _NOT_FILES or file.lower().startswith(("extension: ", "preview ")):
        file = ""
    return ParsedTitle(editor=editor, file=file, folder=folder, dirty=dirty, remote=remote)


def report_from_title(parsed: ParsedTitle, focused: bool) -> EditorReport:
    """An activity report from a title; no path or remote, so only default rules apply."""
    language = language_for_file(parsed.file) if parsed.file else None
    return EditorReport(
        editor=parsed.editor,
        workspace=parsed.folder,
        file=parsed.file,
        language=language or "",
        kind=ActivityKind.CODING if parsed.dirty else ActivityKind.READING,
        focused=focused,
    )


_PROCESS_NAMES = {
    "code": "Visual Studio Code",
    "code-insiders": "VS Code Insiders",
    "codium": "VSCodium",
    "code-oss": "Code - OSS",
    "Code.exe": "Visual Studio Code",
    "VSCodium.exe": "VSCodium",
}


def running_editors(proc: Path = Path("/proc")) -> list[str]:
    """Editors whose process runs, from ``/proc`` (Linux); for sessions without titles."""
    found: set[str] = set()
    try:
        entries = list(proc.iterdir())
    except OSError:
        return []
    for entry in entries:
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if comm in _PROCESS_NAMES:
            found.add(_PROCESS_NAMES[comm])
    return sorted(found)


class ProcessLister:
    """Wayland: no titles, but "VS Code running" from the process list."""

    def __init__(self, proc: Path = Path("/proc")) -> None:
        self._proc = proc

    def list_windows(self) -> list[TopWindow] | None:
        return [TopWindow(("process", name), name) for name in running_editors(self._proc)]


class TitleDetector:
    """Polls a ``WindowLister`` and keeps the merger's title windows current."""

    def __init__(
        self,
        lister: WindowLister,
        merger: ActivityMerger,
        scheduler: Scheduler,
        interval: float = POLL_SECONDS,
    ) -> None:
        self._lister = lister
        self._merger = merger
        self._scheduler = scheduler
        self._interval = interval
        self._timer: TimerHandle | None = None
        self._known: dict[Hashable, EditorReport] = {}

    def start(self) -> None:
        self.scan()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._forget(list(self._known))

    def scan(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._scheduler.call_later(self._interval, self.scan)
        if self._merger.has_bridge_windows():
            # The extension tells more and tells it better.
            self._forget(list(self._known))
            return
        try:
            windows = self._lister.list_windows()
        except Exception:
            log.exception("listing windows failed")
            windows = None
        if windows is None:
            return
        self.apply(windows)

    def apply(self, windows: Iterable[TopWindow]) -> None:
        seen: dict[Hashable, EditorReport] = {}
        for window in windows:
            if isinstance(window.window_id, tuple) and window.window_id[:1] == ("process",):
                report = EditorReport(editor=window.title, kind=ActivityKind.CODING)
            else:
                parsed = parse_title(window.title)
                if parsed is None:
                    continue
                report = report_from_title(parsed, window.focused)
            key = ("title", window.window_id)
            seen[key] = report
            if self._known.get(key) != report:
                self._merger.update(key, report, Source.TITLE)
        self._forget([k for k in self._known if k not in seen])
        # An unchanged title is not news: its quiet timer keeps running, so a
        # window left untouched drops out like a silent bridge window does.
        self._known = seen

    def _forget(self, keys: list[Hashable]) -> None:
        for key in keys:
            self._known.pop(key, None)
            self._merger.remove(key)


def system_window_lister() -> WindowLister | None:
    """The window lister for this session, or None."""
    if sys.platform == "win32":
        from .windows_titles_windows import Win32Lister

        return Win32Lister()
    if sys.platform == "darwin":
        from .windows_titles_macos import QuartzLister

        return QuartzLister.open()
    if os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        from .windows_titles_x11 import X11Lister

        lister = X11Lister.open()
        if lister is not None:
            return lister
    if sys.platform.startswith("linux"):
        return ProcessLister()
    return None
