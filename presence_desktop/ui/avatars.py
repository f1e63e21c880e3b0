"""Friends' avatars: fetched once over HTTP on the asyncio loop, kept on disk.

Painting never waits: the delegate asks for a pixmap, gets None (and draws
initials) until the download or the disk read has finished on the loop, then
``ready`` names the user whose row should repaint. A failed fetch is not
retried during this run, so a broken URL costs one request, not one per paint.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QImage, QPixmap

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

AVATAR_PX = 96
"""Stored size: crisp for a 36 px circle at device pixel ratio 2."""
MAX_BYTES = 2 * 1024 * 1024
CONCURRENCY = 4
TIMEOUT = 15.0


class AvatarStore(QObject):
    ready = Signal(object)
    """A user's avatar is now available (user id).

    ``object``, not ``int``: a Qt ``int`` is 32 bits and user ids go past 2^52
    (dev-login ids start there), which would raise ``OverflowError`` on emit."""

    def __init__(
        self,
        cache_dir: Path,
        *,
        client_factory: Callable[[], httpx.AsyncClient] | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._dir = cache_dir / "avatars"
        self._client_factory = client_factory or _default_client
        self._client: httpx.AsyncClient | None = None
        self._pixmaps: dict[str, QPixmap] = {}
        self._users: dict[str, set[int]] = {}
        self._failed: set[str] = set()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._limit = asyncio.Semaphore(CONCURRENCY)
        # Our own worker for the few disk reads and writes: qasync's default
        # executor would be a QThread pool.
        self._disk: ThreadPoolExecutor | None = None

    def pixmap(self, user_id: int, url: str | None) -> QPixmap | None:
        """The avatar if loaded; otherwise starts loading it and returns None."""
        if not url or not url.startswith(("https://", "http://")):
            return None
        found = self._pixmaps.get(url)
        if found is not None:
            return found
        self._users.setdefault(url, set()).add(user_id)
        if url in self._failed or url in self._tasks:
            return None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None  # no loop (a synchronous test): placeholders only
        task = loop.create_task(self._load(url))
        self._tasks[url] = task
        task.add_done_callback(functools.partial(self._forget_task, url))
        return None

    def _forget_task(self, url: str, _task: asyncio.Task[None]) -> None:
        self._tasks.pop(url, None)

    async def wait_idle(self) -> None:
        """Until every started load finished (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    async def aclose(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        await self.wait_idle()
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        if self._disk is not None:
            self._disk.shutdown(wait=False)
            self._disk = None

    def _executor(self) -> ThreadPoolExecutor:
        if self._disk is None:
            self._disk = ThreadPoolExecutor(max_workers=1, thread_name_prefix="avatar-disk")
        return self._disk

    def path_for(self, url: str) -> Path:
        return self._dir / (hashlib.sha256(url.encode()).hexdigest()[:32] + ".png")

    async def _load(self, url: str) -> None:
        try:
            image = await self._from_disk(url)
            if image is None:
                async with self._limit:
                    image = await self._download(url)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.info("avatar unavailable (%s): %s", type(exc).__name__, exc)
            self._failed.add(url)
            return
        if image is None:
            self._failed.add(url)
            return
        self._pixmaps[url] = QPixmap.fromImage(image)
        for user_id in sorted(self._users.get(url, ())):
            self.ready.emit(user_id)

    async def _from_disk(self, url: str) -> QImage | None:
        path = self.path_for(url)
        try:
            data = await asyncio.get_running_loop().run_in_executor(
                self._executor(), path.read_bytes
            )
        except FileNotFoundError:
            return None
        image = QImage.fromData(data)
        return None if image.isNull() else image

    async def _download(self, url: str) -> QImage | None:
        if self._client is None:
            self._client = self._client_factory()
        response = await self._client.get(url)
        response.raise_for_status()
        if len(response.content) > MAX_BYTES:
            raise ValueError(f"avatar larger than {MAX_BYTES} bytes")
        image = QImage.fromData(response.content)
        if image.isNull():
            raise ValueError("not an image")
        image = image.scaled(
            AVATAR_PX,
            AVATAR_PX,
            Qt.AspectRatioMode.KeepAspectRatioByExpanding,
            Qt.TransformationMode.SmoothTransformation,
        )
        path = self.path_for(url)
        await asyncio.get_running_loop().run_in_executor(self._executor(), _save_png, image, path)
        return image


def _save_png(image: QImage, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".part.png")  # the suffix tells Qt the format
    if image.save(str(tmp)):
        tmp.replace(path)


def _default_client() -> httpx.AsyncClient:
    # Imported on the first download, not at start: httpx and its dependencies
    # are a few MiB the first screen does not need (issue 18, memory).
    import httpx

    return httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=True)
