"""GitHub for tests: a running fake GitHub, settings pointing at it, and a real Chromium.

The in-memory keychain every test gets comes from the suite-wide
``memory_keyring`` fixture in ``tests/conftest.py`` (autouse, restores the
previous backend), so nothing here can touch a real keychain.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import threading
import webbrowser
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from presence_server.edge.github import GitHubAuth, GitHubSettings
from tests.fakes.github import FakeGitHub

from .services import require

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture
def fake_github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        fake.add_user(583231, "octocat", "The Octocat", following=[1001, 1002, 424242])
        fake.add_user(1001, "hubot", "Hubot")
        fake.add_user(1002, "monalisa", None)
        yield fake


@pytest.fixture
def github_settings(fake_github: FakeGitHub) -> GitHubSettings:
    return GitHubSettings(
        client_id=fake_github.client_id,
        client_secret=fake_github.client_secret,
        web_url=fake_github.web_url,
        api_url=fake_github.api_url,
        device_flow=True,
    )


@pytest.fixture
async def github_auth(github_settings: GitHubSettings) -> AsyncIterator[GitHubAuth]:
    auth = GitHubAuth(github_settings, timeout=5.0)
    yield auth
    await auth.aclose()


@dataclasses.dataclass
class Chromium:
    """Opens URLs in a real headless Chromium, like ``webbrowser`` would.

    The opener runs through ``webbrowser.get`` with a wrapper script, the way a
    user's ``BROWSER`` setting would, and keeps each page's final DOM so tests
    can read what the person saw.
    """

    wrapper: Path
    pages: Path
    opened: list[str] = dataclasses.field(default_factory=list)
    exited: threading.Event = dataclasses.field(default_factory=threading.Event)

    def open(self, url: str) -> bool:
        self.opened.append(url)
        self.exited.clear()
        try:
            return webbrowser.get(f"{self.wrapper} %s").open(url)
        finally:
            self.exited.set()

    async def last_page(self) -> str:
        """The final DOM of the last page, once Chromium has exited."""
        assert await asyncio.to_thread(self.exited.wait, 60), "Chromium did not exit"
        return self.pages.read_text(errors="replace")


_FLAGS = (
    "--headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
    "--disable-background-networking --disable-component-update --disable-sync "
    "--password-store=basic"
)


@pytest.fixture
def chromium(tmp_path: Path) -> Chromium:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    require(binary is not None, "Chromium is not installed (apt-get install chromium)")
    home = tmp_path / "browser-home"
    home.mkdir()
    pages = tmp_path / "page.html"
    wrapper = tmp_path / "browser.sh"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'export HOME="{home}"\n'
        f'exec timeout 60 "{binary}" {_FLAGS} --user-data-dir="$(mktemp -d "{home}/p.XXXXXX")" '
        f'--dump-dom "$1" > "{pages}" 2> "{home}/stderr.log"\n'
    )
    wrapper.chmod(0o755)
    return Chromium(wrapper, pages)
