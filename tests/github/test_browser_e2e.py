"""GitHub sign-in driven by a real headless Chromium.

Chromium opens the authorize URL the desktop produced, the fake GitHub
approves (or denies) and redirects to the desktop's loopback listener, and the
page Chromium ends on is the one the person would see.
"""

from __future__ import annotations

import pytest

from presence_desktop.net.oauth import GitHubSignIn, Phase, SignInError
from presence_protocol import GitHubConfig, LoginGitHubCode
from presence_server.edge.github import GitHubAuth
from tests.fakes.github import FakeGitHub
from tests.support.github import Chromium

pytestmark = pytest.mark.slow


def _config(fake: FakeGitHub) -> GitHubConfig:
    return GitHubConfig(client_id=fake.client_id, web_url=fake.web_url, device_flow=True)


async def test_chromium_signs_in_through_loopback(
    fake_github: FakeGitHub, github_auth: GitHubAuth, chromium: Chromium
) -> None:
    sign_in = GitHubSignIn(_config(fake_github), opener=chromium.open)
    login = await sign_in.run(device="e2e")
    assert isinstance(login, LoginGitHubCode)
    assert chromium.opened[0].startswith(fake_github.web_url + "/login/oauth/authorize?")
    assert fake_github.count("GET", "/login/oauth/authorize") == 1
    identity = await github_auth.exchange_code(login.code, login.code_verifier, login.redirect_uri)
    assert identity.login == "octocat"
    # What the person's tab shows at the end (Chromium has exited by now).
    assert "You can close this tab" in await chromium.last_page()


async def test_chromium_denied_consent(fake_github: FakeGitHub, chromium: Chromium) -> None:
    fake_github.consent = "deny"
    sign_in = GitHubSignIn(_config(fake_github), opener=chromium.open)
    with pytest.raises(SignInError) as err:
        await sign_in.run()
    assert err.value.error.code == "access_denied"
    assert sign_in.current.phase is Phase.FAILED
    assert "Access was declined on GitHub" in await chromium.last_page()
    assert fake_github.count("POST", "/login/oauth/access_token") == 0
