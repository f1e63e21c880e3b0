"""Fixtures for GitHub sign-in tests: a running fake GitHub and settings pointing at it.

The in-memory keychain every test gets comes from the suite-wide
``memory_keyring`` fixture in ``tests/conftest.py`` (autouse, restores the
previous backend), so nothing here can touch a real keychain.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest

from presence_server.github import GitHubAuth, GitHubSettings
from tests.fakes.github import FakeGitHub

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
