"""Before the upgrade: who the client is (proxies), where it comes from (origins),
how often it may knock (per-IP handshake limit)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus

from presence_server import RunningServer, ServerConfig, start_server
from tests.server.client import Client, login_dev

Start = Callable[..., Awaitable[RunningServer]]


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[Start]:
    started: list[RunningServer] = []

    async def _start(**options: Any) -> RunningServer:
        config = ServerConfig(
            port=0,
            dev_login=True,
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'edge.sqlite3'}",
            **options,
        )
        server = await start_server(config)
        started.append(server)
        return server

    yield _start
    for server in started:
        await server.stop()


async def signed_in(url: str, login: str, device: str = "test", **connect: Any) -> Client:
    """Logged in, and the login fully processed (its log line written)."""
    client = await login_dev(url, login, device, **connect)
    await client.barrier()
    return client


def forwarded(address: str) -> dict[str, Any]:
    return {"additional_headers": [("X-Forwarded-For", address)]}


async def refused(url: str, **connect: Any) -> InvalidStatus:
    with pytest.raises(InvalidStatus) as caught:
        await Client.open(url, **connect)
    return caught.value


def login_ips(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.ip for r in caplog.records if getattr(r, "event", None) == "login"]  # type: ignore[attr-defined]


async def test_a_local_proxy_is_trusted_and_each_forwarded_client_has_its_own_budget(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "presence_server")
    server = await start(handshakes_per_minute=2)
    first = await signed_in(server.url, "alice", **forwarded("203.0.113.7"))
    second = await signed_in(server.url, "alice", "other", **forwarded("203.0.113.7"))
    rejected = await refused(server.url, **forwarded("203.0.113.7"))
    assert rejected.response.status_code == 429
    assert 1 <= int(rejected.response.headers["Retry-After"]) <= 60
    # Another client behind the same proxy is not affected.
    third = await signed_in(server.url, "bob", **forwarded("203.0.113.8"))
    # The right-most address the proxy did not add itself is the client.
    fourth = await signed_in(server.url, "carol", **forwarded("198.51.100.1, 203.0.113.9"))
    assert login_ips(caplog) == ["203.0.113.7", "203.0.113.7", "203.0.113.8", "203.0.113.9"]
    for client in (first, second, third, fourth):
        await client.close()


async def test_forwarded_headers_count_only_from_the_configured_proxy(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "presence_server")
    server = await start(handshakes_per_minute=2, trusted_proxies=("192.0.2.10/32",))
    # We connect from 127.0.0.1, which is not the proxy: the header is ignored
    # (the address is ours, and this machine's own connections are not limited).
    clients = [
        await signed_in(server.url, f"user{i}", **forwarded("203.0.113.7")) for i in range(4)
    ]
    assert login_ips(caplog) == ["127.0.0.1"] * 4
    for client in clients:
        await client.close()


async def test_a_chain_of_trusted_proxies_is_walked_from_the_right(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "presence_server")
    server = await start(trusted_proxies=("127.0.0.1/32", "10.0.0.0/8"))
    client = await signed_in(
        server.url, "alice", **forwarded("198.51.100.23, 203.0.113.5, 10.1.2.3")
    )
    assert login_ips(caplog) == ["203.0.113.5"]  # the first hop we do not trust
    await client.close()


async def test_browser_origins_need_the_allowlist(start: Start) -> None:
    closed = await start()
    rejected = await refused(closed.url, origin="https://evil.example")
    assert rejected.response.status_code == 403
    native = await signed_in(closed.url, "alice")  # no Origin header: not a browser
    await native.close()

    server = await start(allowed_origins=("https://app.example",))
    for origin in ("https://app.example", "https://APP.example"):
        client = await signed_in(server.url, "bob", origin=origin)
        await client.close()
    for origin in ("http://app.example", "https://app.example.evil.example"):
        assert (await refused(server.url, origin=origin)).response.status_code == 403
    metrics = server.metrics.render()[0].decode()
    assert 'presence_handshakes_rejected_total{reason="origin"} 2.0' in metrics
