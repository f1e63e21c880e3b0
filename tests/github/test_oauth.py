"""The desktop's half of GitHub sign-in: loopback listener, PKCE, device flow.

A scripted browser (httpx following redirects) stands in for a person here;
``test_browser_e2e.py`` does the same with real Chromium.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import urllib.parse
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from presence_desktop.net import oauth
from presence_desktop.net.oauth import (
    GitHubSignIn,
    LoopbackListener,
    Phase,
    SignInCancelled,
    SignInError,
    SignInStatus,
)
from presence_protocol import GitHubConfig, LoginGitHubCode, LoginGitHubToken
from presence_server.edge.github import GitHubAuth
from tests.fakes.github import FakeGitHub


def _config(fake: FakeGitHub, device_flow: bool = True) -> GitHubConfig:
    return GitHubConfig(client_id=fake.client_id, web_url=fake.web_url, device_flow=device_flow)


class ScriptedBrowser:
    """Follows the authorize URL and its redirect like a browser that clicks nothing."""

    def __init__(self) -> None:
        self.pages: list[httpx.Response] = []
        self.done = threading.Event()

    def __call__(self, url: str) -> bool:
        try:
            self.pages.append(httpx.get(url, follow_redirects=True, timeout=10))
        finally:
            self.done.set()
        return True

    async def last_page(self) -> httpx.Response:
        assert await asyncio.to_thread(self.done.wait, 10)
        return self.pages[-1]


def _record(sign_in: GitHubSignIn) -> list[SignInStatus]:
    statuses: list[SignInStatus] = []
    sign_in.status.connect(statuses.append)
    return statuses


async def _wait_for_phase(sign_in: GitHubSignIn, *phases: Phase) -> SignInStatus:
    future: asyncio.Future[SignInStatus] = asyncio.get_running_loop().create_future()

    def check(status: SignInStatus) -> None:
        if status.phase in phases and not future.done():
            future.set_result(status)

    if sign_in.current.phase in phases:
        return sign_in.current
    sign_in.status.connect(check)
    try:
        return await asyncio.wait_for(future, 10)
    finally:
        sign_in.status.disconnect(check)


def _refused(redirect_uri: str) -> bool:
    url = urllib.parse.urlsplit(redirect_uri)
    family = socket.AF_INET6 if ":" in (url.hostname or "") else socket.AF_INET
    with socket.socket(family) as s:
        try:
            s.connect((url.hostname, url.port))
        except ConnectionRefusedError:
            return True
    return False


# ---------------------------------------------------------------- PKCE and URL


def test_pkce_and_authorize_url() -> None:
    pkce = oauth.Pkce.new()
    assert 43 <= len(pkce.verifier) <= 128
    assert pkce.challenge == oauth.s256(pkce.verifier) and "=" not in pkce.challenge
    assert pkce.verifier not in repr(pkce)
    url = oauth.authorize_url(
        "https://ghe.example/", "cid", "http://127.0.0.1:5/callback", "st", pkce.challenge
    )
    parts = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    assert parts.netloc == "ghe.example" and parts.path == "/login/oauth/authorize"
    assert query["client_id"] == "cid" and query["state"] == "st"
    assert query["redirect_uri"] == "http://127.0.0.1:5/callback"
    assert query["code_challenge"] == pkce.challenge
    assert query["code_challenge_method"] == "S256"
    assert query["scope"] == ""
    assert pkce.verifier not in url


# ---------------------------------------------------------------- the listener


@pytest.fixture
async def listener() -> AsyncIterator[LoopbackListener]:
    lst = LoopbackListener("the-state")
    await lst.start()
    yield lst
    await lst.close()


async def test_listener_accepts_only_get_callback(listener: LoopbackListener) -> None:
    uri = listener.redirect_uri
    assert uri.startswith("http://127.0.0.1:") and uri.endswith("/callback")
    base = uri.removesuffix("/callback")
    async with httpx.AsyncClient() as client:
        for path in ("/", "/callback/", "/favicon.ico", "/callbackx?state=the-state&code=x"):
            response = await client.get(base + path)
            assert response.status_code == 404, path
        for method in ("POST", "PUT", "HEAD", "DELETE"):
            response = await client.request(method, uri + "?state=the-state&code=x")
            assert response.status_code == 405, method
            assert response.headers["allow"] == "GET"
        wrong = await client.get(uri, params={"state": "other", "code": "stolen"})
        assert wrong.status_code == 400
        assert "not from your current sign-in" in wrong.text
        missing = await client.get(uri, params={"code": "stolen"})
        assert missing.status_code == 400
        assert not listener.result.done()
        ok = await client.get(uri, params={"state": "the-state", "code": "good"})
    assert ok.status_code == 200
    assert "You can close this tab" in ok.text
    assert ok.headers["referrer-policy"] == "no-referrer"
    assert ok.headers["cache-control"] == "no-store"
    assert "default-src 'none'" in ok.headers["content-security-policy"]
    assert (await listener.result).code == "good"


async def test_listener_shows_denial_and_ends(listener: LoopbackListener) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.get(
            listener.redirect_uri,
            params={"state": "the-state", "error": "access_denied", "error_description": "no"},
        )
    assert response.status_code == 200
    assert "declined" in response.text
    with pytest.raises(SignInError) as err:
        await listener.result
    assert err.value.error.code == "access_denied"


async def test_listener_survives_garbage(listener: LoopbackListener) -> None:
    url = urllib.parse.urlsplit(listener.redirect_uri)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    writer.write(b"NONSENSE\r\n\r\n")
    await writer.drain()
    assert (await reader.read()).startswith(b"HTTP/1.1 400")
    writer.close()
    await writer.wait_closed()
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    writer.write(b"GET /callback?" + b"a" * 20_000 + b" HTTP/1.1\r\n\r\n")
    await writer.drain()
    assert (await reader.read()).startswith(b"HTTP/1.1 431")
    writer.close()
    await writer.wait_closed()
    assert not listener.result.done()


async def test_busy_port_falls_back_to_ipv6_loopback() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        lst = LoopbackListener("s")
        try:
            try:
                uri = await lst.start(("127.0.0.1", "::1"), port)
            except SignInError as exc:
                pytest.skip(f"no IPv6 loopback here: {exc.error.message}")
            assert uri == f"http://[::1]:{port}/callback"
            async with httpx.AsyncClient() as client:
                response = await client.get(uri, params={"state": "s", "code": "c"})
            assert response.status_code == 200
        finally:
            await lst.close()


async def test_no_port_at_all_is_a_clear_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        lst = LoopbackListener("s")
        with pytest.raises(SignInError) as err:
            await lst.start(("127.0.0.1",), port)
        await lst.close()
    assert err.value.error.code == "listener_failed"
    assert "code instead" in err.value.error.message


# ---------------------------------------------------------------- browser flow


async def test_browser_flow_against_fake_github(
    fake_github: FakeGitHub, github_auth: GitHubAuth
) -> None:
    browser = ScriptedBrowser()
    sign_in = GitHubSignIn(_config(fake_github), opener=browser)
    statuses = _record(sign_in)
    login = await sign_in.run(device="laptop")
    assert isinstance(login, LoginGitHubCode)
    assert login.device == "laptop"
    assert login.redirect_uri.startswith("http://127.0.0.1:")
    assert [s.phase for s in statuses] == [Phase.WAITING_FOR_BROWSER, Phase.FINISHING]
    assert statuses[0].url.startswith(fake_github.web_url + "/login/oauth/authorize?")
    assert "You can close this tab" in (await browser.last_page()).text
    assert _refused(login.redirect_uri), "the listener must close after one answer"
    identity = await github_auth.exchange_code(login.code, login.code_verifier, login.redirect_uri)
    assert identity.login == "octocat"


async def test_denied_consent(fake_github: FakeGitHub) -> None:
    fake_github.consent = "deny"
    browser = ScriptedBrowser()
    sign_in = GitHubSignIn(_config(fake_github), opener=browser)
    with pytest.raises(SignInError) as err:
        await sign_in.run()
    assert err.value.error.code == "access_denied"
    assert sign_in.current.phase is Phase.FAILED
    assert sign_in.current.error == err.value.error
    assert "declined" in (await browser.last_page()).text
    assert fake_github.count("POST", "/login/oauth/access_token") == 0


async def test_no_browser_offers_the_link_and_waits(fake_github: FakeGitHub) -> None:
    sign_in = GitHubSignIn(_config(fake_github), opener=lambda url: False)
    task = asyncio.ensure_future(sign_in.run())
    status = await _wait_for_phase(sign_in, Phase.BROWSER_NOT_OPENED)
    assert status.url.startswith(fake_github.web_url)
    # The person copies the link into a browser elsewhere on this machine.
    await asyncio.to_thread(ScriptedBrowser(), status.url)
    login = await asyncio.wait_for(task, 10)
    assert isinstance(login, LoginGitHubCode)


async def test_broken_opener_counts_as_no_browser(fake_github: FakeGitHub) -> None:
    def boom(url: str) -> bool:
        raise OSError("no display")

    sign_in = GitHubSignIn(_config(fake_github), opener=boom)
    task = asyncio.ensure_future(sign_in.run())
    await _wait_for_phase(sign_in, Phase.BROWSER_NOT_OPENED)
    sign_in.cancel()
    with pytest.raises(SignInCancelled):
        await task


async def test_open_browser_again(fake_github: FakeGitHub) -> None:
    loop = asyncio.get_running_loop()
    opened: list[str] = []
    second = loop.create_future()

    def opener(url: str) -> bool:
        opened.append(url)
        if len(opened) == 2:
            loop.call_soon_threadsafe(second.set_result, None)
        return False

    sign_in = GitHubSignIn(_config(fake_github), opener=opener)
    task = asyncio.ensure_future(sign_in.run())
    await _wait_for_phase(sign_in, Phase.BROWSER_NOT_OPENED)
    sign_in.open_browser_again()
    await asyncio.wait_for(second, 10)
    assert opened[0] == opened[1]
    sign_in.cancel()
    with pytest.raises(SignInCancelled):
        await task


async def test_cancel_closes_the_listener(fake_github: FakeGitHub) -> None:
    sign_in = GitHubSignIn(_config(fake_github), opener=lambda url: True)
    task = asyncio.ensure_future(sign_in.run())
    status = await _wait_for_phase(sign_in, Phase.WAITING_FOR_BROWSER)
    redirect = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(status.url).query))
    sign_in.cancel()
    with pytest.raises(SignInCancelled):
        await task
    assert sign_in.current.phase is Phase.CANCELLED
    assert _refused(redirect["redirect_uri"])


async def test_timeout(fake_github: FakeGitHub) -> None:
    sign_in = GitHubSignIn(_config(fake_github), opener=lambda url: True, timeout=0.2)
    with pytest.raises(SignInError) as err:
        await sign_in.run()
    assert err.value.error.code == "timeout"
    assert sign_in.current.phase is Phase.FAILED
    assert "five minutes" in err.value.error.message


async def test_sign_in_task_cancelled_from_outside_propagates(fake_github: FakeGitHub) -> None:
    sign_in = GitHubSignIn(_config(fake_github), opener=lambda url: True)
    task = asyncio.ensure_future(sign_in.run())
    await _wait_for_phase(sign_in, Phase.WAITING_FOR_BROWSER)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


# ---------------------------------------------------------------- device flow


class FakeTime:
    """Sleeps that advance the fake GitHub's clock instead of waiting."""

    def __init__(self, fake: FakeGitHub, short_first: float = 0.0) -> None:
        self.fake = fake
        self.slept: list[float] = []
        self.short_first = short_first
        self.skew = 0.0
        self.on_sleep: Callable[[int], None] = lambda n: None

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        skew = self.short_first if len(self.slept) == 2 else 0.0
        self.fake.advance(seconds - skew)
        self.on_sleep(len(self.slept))

    def clock(self) -> float:
        return self.fake.now - self.skew


async def _device_sign_in(
    fake: FakeGitHub, time: FakeTime, approve_after: int | None, deny: bool = False
) -> tuple[GitHubSignIn, asyncio.Future[LoginGitHubCode | LoginGitHubToken]]:
    sign_in = GitHubSignIn(
        _config(fake), opener=lambda url: True, sleep=time.sleep, clock=time.clock
    )

    def on_sleep(n: int) -> None:
        if approve_after is not None and n == approve_after:
            code = sign_in.current.user_code
            if deny:
                fake.deny_device(code)
            else:
                fake.approve_device(code)

    time.on_sleep = on_sleep
    task = asyncio.ensure_future(sign_in.run(device="desk"))
    await _wait_for_phase(sign_in, Phase.WAITING_FOR_BROWSER)
    sign_in.use_device_flow()
    return sign_in, task


async def test_device_flow_after_switching(
    fake_github: FakeGitHub, github_auth: GitHubAuth
) -> None:
    time = FakeTime(fake_github)
    sign_in, task = await _device_sign_in(fake_github, time, approve_after=3)
    status = await _wait_for_phase(sign_in, Phase.DEVICE_CODE)
    assert len(status.user_code) == 9 and status.user_code[4] == "-"
    assert status.verification_uri == fake_github.web_url + "/login/device"
    login = await asyncio.wait_for(task, 10)
    assert isinstance(login, LoginGitHubToken) and login.device == "desk"
    assert time.slept == [5, 5, 5]
    identity = await github_auth.check_token(login.access_token)
    assert identity.login == "octocat"


async def test_device_flow_slows_down_when_told(fake_github: FakeGitHub) -> None:
    # The second wait ends two seconds early (a sleeping laptop's clock jump, say):
    # GitHub answers slow_down and every later poll must be five seconds slower.
    time = FakeTime(fake_github, short_first=2.0)
    sign_in, task = await _device_sign_in(fake_github, time, approve_after=4)
    login = await asyncio.wait_for(task, 10)
    assert isinstance(login, LoginGitHubToken)
    assert time.slept == [5, 5, 10, 10]
    assert sign_in.device_flow is not None and sign_in.device_flow.intervals == time.slept


async def test_device_flow_denied(fake_github: FakeGitHub) -> None:
    time = FakeTime(fake_github)
    sign_in, task = await _device_sign_in(fake_github, time, approve_after=2, deny=True)
    with pytest.raises(SignInError) as err:
        await asyncio.wait_for(task, 10)
    assert err.value.error.code == "access_denied"
    assert sign_in.current.phase is Phase.FAILED


async def test_device_code_expires(fake_github: FakeGitHub) -> None:
    time = FakeTime(fake_github)
    sign_in, task = await _device_sign_in(fake_github, time, approve_after=None)
    time.on_sleep = lambda n: fake_github.advance(95)  # nobody types the code for 15 minutes
    with pytest.raises(SignInError) as err:
        await asyncio.wait_for(task, 10)
    assert err.value.error.code == "expired_code"
    assert "new code" in err.value.error.message
    assert sign_in.current.phase is Phase.FAILED
    assert len(time.slept) == 9


async def test_github_expiry_is_reported_too(fake_github: FakeGitHub) -> None:
    # GitHub's clock runs ahead of ours: its expired_token must end the flow.
    time = FakeTime(fake_github)
    _sign_in, task = await _device_sign_in(fake_github, time, approve_after=None)

    def github_jumps(n: int) -> None:
        if n == 2:
            fake_github.advance(1000)
            time.skew += 1000  # ... while our own clock does not move

    time.on_sleep = github_jumps
    with pytest.raises(SignInError) as err:
        await asyncio.wait_for(task, 10)
    assert err.value.error.code == "expired_code"
    assert len(time.slept) == 2  # ended by GitHub's answer, not by our own deadline


async def test_listener_failure_falls_back_to_device_flow(fake_github: FakeGitHub) -> None:
    time = FakeTime(fake_github)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        sign_in = GitHubSignIn(
            _config(fake_github),
            opener=lambda url: True,
            sleep=time.sleep,
            clock=time.clock,
            listen_hosts=("127.0.0.1",),
            listen_port=busy.getsockname()[1],
        )
        time.on_sleep = lambda n: fake_github.approve_device(sign_in.current.user_code)
        login = await asyncio.wait_for(sign_in.run(), 10)
    assert isinstance(login, LoginGitHubToken)


async def test_listener_failure_without_device_flow_is_explained(
    fake_github: FakeGitHub,
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        sign_in = GitHubSignIn(
            _config(fake_github, device_flow=False),
            opener=lambda url: True,
            listen_hosts=("127.0.0.1",),
            listen_port=busy.getsockname()[1],
        )
        with pytest.raises(SignInError) as err:
            await sign_in.run()
    assert err.value.error.code == "listener_failed"
    assert sign_in.current.phase is Phase.FAILED


async def test_device_flow_disabled_on_github(fake_github: FakeGitHub) -> None:
    fake_github.device_flow = False
    time = FakeTime(fake_github)
    _sign_in, task = await _device_sign_in(fake_github, time, approve_after=None)
    with pytest.raises(SignInError) as err:
        await asyncio.wait_for(task, 10)
    assert err.value.error.code == "device_flow_disabled"


async def test_device_flow_survives_a_blip_but_not_an_outage(fake_github: FakeGitHub) -> None:
    time = FakeTime(fake_github)
    sign_in, task = await _device_sign_in(fake_github, time, approve_after=3)
    await _wait_for_phase(sign_in, Phase.DEVICE_CODE)
    fake_github.fail_next["/login/oauth/access_token"] = 502
    login = await asyncio.wait_for(task, 10)
    assert isinstance(login, LoginGitHubToken)

    def outage(n: int) -> None:
        fake_github.fail_next["/login/oauth/access_token"] = 503

    time2 = FakeTime(fake_github)
    _sign_in2, task2 = await _device_sign_in(fake_github, time2, approve_after=None)
    time2.on_sleep = outage  # before the device phase starts: every poll fails
    with pytest.raises(SignInError) as err:
        await asyncio.wait_for(task2, 10)
    assert err.value.error.code == "upstream_unavailable"
    assert len(time2.slept) == oauth.MAX_POLL_FAILURES


async def test_a_browser_command_that_blocks_does_not_stall_sign_in(
    fake_github: FakeGitHub,
) -> None:
    # Some BROWSER commands return only when the browser quits (a first Firefox window).
    release = threading.Event()
    browser = ScriptedBrowser()

    def blocking_opener(url: str) -> bool:
        browser(url)
        return release.wait(30)

    sign_in = GitHubSignIn(_config(fake_github), opener=blocking_opener)
    try:
        login = await asyncio.wait_for(sign_in.run(), 10)
    finally:
        release.set()
    assert isinstance(login, LoginGitHubCode)
    assert sign_in.current.phase is Phase.FINISHING
