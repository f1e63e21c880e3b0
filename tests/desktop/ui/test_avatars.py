"""Avatars: fetched once over HTTP on the loop, cached on disk, placeholders meanwhile."""

from __future__ import annotations

import tempfile
from pathlib import Path

import httpx
from PySide6.QtGui import QColor, QImage

from presence_desktop.ui.avatars import AVATAR_PX, AvatarStore

from .helpers import next_emit

URL = "https://avatars.example.org/u/2"


def png_bytes(size: int = 200) -> bytes:
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(QColor("#3366cc"))
    path = Path(tempfile.mkdtemp()) / "avatar.png"
    assert image.save(str(path))
    return path.read_bytes()


class Server:
    """An httpx transport that serves one image and counts requests."""

    def __init__(self, status: int = 200, body: bytes | None = None) -> None:
        self.requests: list[str] = []
        self.status = status
        self.body = png_bytes() if body is None else body

    def client(self) -> httpx.AsyncClient:
        def handle(request: httpx.Request) -> httpx.Response:
            self.requests.append(str(request.url))
            return httpx.Response(self.status, content=self.body)

        return httpx.AsyncClient(transport=httpx.MockTransport(handle))


async def test_fetched_once_cached_on_disk_and_reused_by_a_new_store(tmp_path: Path) -> None:
    server = Server()
    store = AvatarStore(tmp_path, client_factory=server.client)
    assert store.pixmap(2, URL) is None  # placeholder while loading
    assert store.pixmap(2, URL) is None  # a second paint does not start a second fetch
    (user_id,) = await next_emit(store.ready)
    assert user_id == 2
    pixmap = store.pixmap(2, URL)
    assert pixmap is not None and pixmap.width() == AVATAR_PX
    assert server.requests == [URL]
    assert store.path_for(URL).exists()
    await store.aclose()

    offline = Server(status=500)
    again = AvatarStore(tmp_path, client_factory=offline.client)
    assert again.pixmap(2, URL) is None
    await next_emit(again.ready)
    assert again.pixmap(2, URL) is not None
    assert offline.requests == []  # served from the disk cache
    await again.aclose()


async def test_failure_is_not_retried_and_leaves_the_placeholder(tmp_path: Path) -> None:
    server = Server(status=404)
    store = AvatarStore(tmp_path, client_factory=server.client)
    assert store.pixmap(2, URL) is None
    await store.wait_idle()
    assert store.pixmap(2, URL) is None
    await store.wait_idle()
    assert server.requests == [URL]
    garbage = Server(body=b"not an image")
    other = AvatarStore(tmp_path / "b", client_factory=garbage.client)
    other.pixmap(3, URL)
    await other.wait_idle()
    assert other.pixmap(3, URL) is None
    assert not other.path_for(URL).exists()
    await store.aclose()
    await other.aclose()


def test_no_url_or_no_loop_means_initials(tmp_path: Path) -> None:
    store = AvatarStore(tmp_path)
    assert store.pixmap(2, None) is None
    assert store.pixmap(2, "file:///etc/passwd") is None
    assert store.pixmap(2, URL) is None  # no running loop in a sync test: nothing started
