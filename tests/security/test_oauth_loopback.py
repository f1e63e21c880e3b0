"""The OAuth loopback listener under attack (extends tests/github/test_oauth.py).

What is new here: where the listener is reachable from (loopback only, never
another interface), that each attempt has its own state and verifier and
the listener honours only its own, that it answers exactly once and is gone
after success or timeout, and 20,000 hostile requests that never end the
wait, never crash it and leave it serving the real redirect.
"""

from __future__ import annotations

import asyncio
import random
import socket
import time
import urllib.parse

import pytest

from presence_desktop.net.oauth import GitHubSignIn, LoopbackListener, Phase, SignInError, s256
from presence_protocol import LoginGitHubCode
from tests.fakes.github import FakeGitHub
from tests.github.test_oauth import ScriptedBrowser, _config, _refused, _wait_for_phase

FUZZ_REQUESTS = 20_000
STATE = "s" * 43


def _non_loopback_address() -> str | None:
    """An address of this machine that is not loopback (None on an isolated box)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: no packet is sent for UDP connect
            address: str = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


async def _get(port: int, target: str, host: str = "127.0.0.1") -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    return answer


async def test_the_listener_is_reachable_from_loopback_only() -> None:
    listener = LoopbackListener(STATE)
    uri = await listener.start()
    try:
        assert listener._server is not None
        for sock in listener._server.sockets:
            host = sock.getsockname()[0]
            assert host in ("127.0.0.1", "::1"), host
        port = urllib.parse.urlsplit(uri).port
        assert port is not None
        other = _non_loopback_address()
        if other is not None:
            with pytest.raises(OSError):
                await asyncio.wait_for(_get(port, "/callback", host=other), 5)
    finally:
        await listener.close()


async def test_every_attempt_has_its_own_state_and_verifier(fake_github: FakeGitHub) -> None:
    seen_states: set[str] = set()
    seen_verifiers: set[str] = set()
    for _ in range(5):
        browser = ScriptedBrowser()
        sign_in = GitHubSignIn(_config(fake_github), opener=browser)
        login = await sign_in.run()
        assert isinstance(login, LoginGitHubCode)
        page = await browser.last_page()
        url = urllib.parse.urlsplit(str(page.history[0].url))
        query = dict(urllib.parse.parse_qsl(url.query))
        assert query["code_challenge_method"] == "S256"
        assert query["code_challenge"] == s256(login.code_verifier)
        assert len(query["state"]) >= 43 and len(login.code_verifier) >= 43  # 256 random bits
        assert login.code_verifier not in page.text + str(page.url)
        seen_states.add(query["state"])
        seen_verifiers.add(login.code_verifier)
    assert len(seen_states) == len(seen_verifiers) == 5


async def test_only_the_exact_state_counts_and_only_once() -> None:
    listener = LoopbackListener(STATE)
    uri = await listener.start()
    port = urllib.parse.urlsplit(uri).port
    assert port is not None
    try:
        near_misses = [STATE[:-1], STATE + "s", STATE.upper(), STATE[:-1] + "t", "", " " + STATE]
        for state in near_misses:
            answer = await _get(
                port, "/callback?" + urllib.parse.urlencode({"state": state, "code": "x"})
            )
            assert answer.startswith(b"HTTP/1.1 400"), state
        twice = f"/callback?state={STATE}&state={STATE}&code=x"
        assert (await _get(port, twice)).startswith(b"HTTP/1.1 400")
        assert not listener.result.done()
        good = f"/callback?state={STATE}&code=first"
        assert (await _get(port, good)).startswith(b"HTTP/1.1 200")
        again = f"/callback?state={STATE}&code=second"
        assert (await _get(port, again)).startswith(b"HTTP/1.1 409")
        assert listener.result.result().code == "first"
    finally:
        await listener.close()
    assert _refused(uri)


async def test_the_listener_is_gone_after_a_timeout(fake_github: FakeGitHub) -> None:
    sign_in = GitHubSignIn(_config(fake_github), opener=lambda url: True, timeout=0.5)
    task = asyncio.ensure_future(sign_in.run())
    status = await _wait_for_phase(sign_in, Phase.WAITING_FOR_BROWSER)
    redirect = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(status.url).query))["redirect_uri"]
    assert not _refused(redirect)
    with pytest.raises(SignInError):
        await task
    assert _refused(redirect)


def _hostile(rng: random.Random, port: int) -> bytes:
    """One hostile HTTP request (or something that is not HTTP at all)."""
    choice = rng.randrange(12)
    path = rng.choice(["/callback", "/", "/callback/", "/favicon.ico", "/%2e%2e/etc", "//callback"])
    state = rng.choice([STATE[:-1], "", STATE.lower() + "x", "\x00", "ä" * 10, STATE * 3])
    query = urllib.parse.urlencode(
        {"state": state, "code": rng.choice(["x", "", "a" * 300]), "error": rng.choice(["", "x"])}
    )
    if choice == 0:
        return rng.randbytes(rng.randrange(1, 400))
    if choice == 1:
        method = rng.choice(["POST", "PUT", "DELETE", "OPTIONS", "TRACE"])
        return f"{method} {path}?{query} HTTP/1.1\r\n\r\n".encode()
    if choice == 2:
        return b"GET /callback?" + b"a" * rng.randrange(16_000, 40_000) + b" HTTP/1.1\r\n\r\n"
    if choice == 3:
        return f"GET {path}?{query} HTTP/1.1\r\n".encode() + b"X: " + b"y" * 20_000 + b"\r\n\r\n"
    if choice == 4:
        return b"GET /callback?state=" + rng.randbytes(30) + b" HTTP/1.1\r\n\r\n"
    if choice == 5:
        return f"GET {path}?{query}\r\n\r\n".encode()  # no HTTP version
    if choice == 6:
        return f"GET http://127.0.0.1:{port}/callback?{query} HTTP/1.1\r\n\r\n".encode()
    if choice == 7:
        return b"GET /callback?state=%ff%fe&code=%00 HTTP/1.1\r\n\r\n"
    if choice == 8:
        return b"\r\n\r\n"
    if choice == 9:
        return f"GET /callback?{query}&{query} HTTP/1.0\r\nHost: evil.example\r\n\r\n".encode()
    if choice == 10:
        return (
            b"GET /callback?"
            + "&".join(f"k{i}=v" for i in range(2000)).encode()
            + b" HTTP/1.1\r\n\r\n"
        )
    return f"GET {path}?{query} HTTP/1.1\r\n".encode()  # never finishes its head


@pytest.mark.slow
async def test_twenty_thousand_hostile_requests_never_end_the_wait() -> None:
    listener = LoopbackListener(STATE)
    uri = await listener.start()
    try:
        port = urllib.parse.urlsplit(uri).port
        assert port is not None
        rng = random.Random(1)
        statuses: dict[bytes, int] = {}
        sent = 0

        async def attack(batch: list[bytes]) -> None:
            nonlocal sent
            for request in batch:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                try:
                    writer.write(request)
                    if b"\r\n\r\n" not in request:
                        writer.write_eof()  # a head that never ends: the peer gives up
                    await writer.drain()
                    answer = await asyncio.wait_for(reader.read(), 15)
                except ConnectionError:
                    answer = b""
                finally:
                    writer.close()
                status = answer[:12]
                statuses[status] = statuses.get(status, 0) + 1
                sent += 1

        started = time.monotonic()
        requests = [_hostile(rng, port) for _ in range(FUZZ_REQUESTS)]
        workers = 50
        await asyncio.gather(*(attack(requests[i::workers]) for i in range(workers)))
        elapsed = time.monotonic() - started
        assert sent == FUZZ_REQUESTS
        assert not listener.result.done(), listener.result
        allowed = {b"", b"HTTP/1.1 400", b"HTTP/1.1 404", b"HTTP/1.1 405", b"HTTP/1.1 431"}
        assert set(statuses) <= allowed, statuses
        assert not listener._writers  # every hostile connection was let go
        # The real redirect still works, once.
        answer = await _get(port, f"/callback?state={STATE}&code=real")
        assert answer.startswith(b"HTTP/1.1 200")
        assert listener.result.result().code == "real"
    finally:
        await listener.close()  # also when an assertion failed: no listening socket left
    assert _refused(uri)
    print(f"\noauth listener fuzz: {sent} requests in {elapsed:.1f}s, answers {statuses}")
