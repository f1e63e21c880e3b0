"""Loopback trust at the edge: the trap of a local proxy that sends no X-Forwarded-For.

By default the loopback addresses are trusted proxies and loopback clients
are never handshake-limited. A reverse proxy on the same machine that sends
no X-Forwarded-For therefore makes every client 127.0.0.1 and the per-address
limit silently stops for everyone. These tests check what an operator sees:
the warning (once per interval, naming the fix), the counter in /metrics, the
``warnings`` entry in a /readyz that stays 200, and ``--limit-loopback``
(flag and environment variable) turning the exemption off for real.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.datastructures import Headers
from websockets.exceptions import InvalidStatus

from presence_server.edge import handshake as edge
from tests.server.client import Client, login_dev
from tests.support.clock import FakeClock
from tests.support.processes import ServerProcess
from tests.support.servers import StartServer

WARNING_TEXT = "carried no usable X-Forwarded-For"
FIX_TEXT = "Configure the proxy to send X-Forwarded-For"
UNFORWARDED = "presence_handshakes_unforwarded_total"


def forwarded(address: str) -> dict[str, Any]:
    return {"additional_headers": [("X-Forwarded-For", address)]}


async def knock(url: str, **connect: Any) -> int:
    """One handshake: 101 when it was let in (then closed), else the HTTP status."""
    try:
        client = await Client.open(url, **connect)
    except InvalidStatus as exc:
        return exc.response.status_code
    await client.close()
    return 101


async def refusal(url: str, **connect: Any) -> Headers:
    """The headers of a handshake that must be refused with 429."""
    with pytest.raises(InvalidStatus) as caught:
        await Client.open(url, **connect)
    assert caught.value.response.status_code == 429
    return caught.value.response.headers


async def http_get(port: int, path: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.get(f"http://127.0.0.1:{port}{path}", timeout=10)


def unforwarded_count(text: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == UNFORWARDED:
                return sample.value
    raise AssertionError(f"{UNFORWARDED} is not exported")


def warnings_logged(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.levelno == logging.WARNING and getattr(r, "event", None) == "proxy_unforwarded"
    ]


async def test_a_local_proxy_without_the_header_is_reported_once_and_counted(
    start: StartServer, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock(1000.0)  # stands in for ``time`` inside the edge module
    monkeypatch.setattr(edge, "time", clock)
    caplog.set_level(logging.INFO, "presence_server")
    server = await start(handshakes_per_minute=3)
    ready = await http_get(server.port, "/readyz")
    assert ready.status_code == 200 and "warnings" not in ready.json()

    # Ten clients behind a local proxy that does not forward their address:
    # all look like 127.0.0.1, loopback is exempt, so none of them is limited.
    assert [await knock(server.url) for _ in range(10)] == [101] * 10
    logged = warnings_logged(caplog)
    assert len(logged) == 1  # one line, not one per handshake
    message = logged[0].getMessage()
    assert WARNING_TEXT in message and FIX_TEXT in message and "127.0.0.1" in message
    assert "never rate limited" in message
    assert unforwarded_count(server.metrics.render()[0].decode()) == 10

    ready = await http_get(server.port, "/readyz")
    assert ready.status_code == 200  # a warning, not an outage
    body = ready.json()
    assert body["ready"] is True
    assert len(body["warnings"]) == 1 and "X-Forwarded-For" in body["warnings"][0]
    # Health and metrics requests are not handshakes and are not counted.
    assert unforwarded_count((await http_get(server.port, "/metrics")).text) == 10

    # A proxy that does send the header is not a problem.
    client = await login_dev(server.url, "alice", **forwarded("203.0.113.7"))
    await client.close()
    assert unforwarded_count(server.metrics.render()[0].decode()) == 10

    # Ten minutes later, still happening: one more line, with the count since the last.
    clock.now += edge.WARN_INTERVAL
    assert await knock(server.url) == 101
    logged = warnings_logged(caplog)
    assert len(logged) == 2 and logged[1].getMessage().startswith("10 handshake(s)")
    # Fixed (no more such handshakes for the interval): /readyz drops the warning.
    clock.now += edge.WARN_INTERVAL
    assert "warnings" not in (await http_get(server.port, "/readyz")).json()


async def test_limit_loopback_turns_the_exemption_off(start: StartServer) -> None:
    server = await start(handshakes_per_minute=3, limit_loopback=True)
    assert [await knock(server.url) for _ in range(3)] == [101] * 3
    headers = await refusal(server.url)
    assert 1 <= int(headers["Retry-After"]) <= 60
    # Clients a proxy does name keep their own budgets beside the flood.
    alice = await login_dev(server.url, "alice", **forwarded("203.0.113.7"))
    await alice.barrier()
    await alice.close()


async def test_an_explicit_proxy_without_the_header_is_reported_and_limited_as_one(
    start: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "presence_server")
    server = await start(
        handshakes_per_minute=2, trusted_proxies=("127.0.0.1/32",), limit_loopback=True
    )
    assert [await knock(server.url) for _ in range(2)] == [101] * 2
    await refusal(server.url)  # every client behind it shares the proxy's budget: loud
    # An X-Forwarded-For that names nothing usable is no better than none.
    assert await knock(server.url, **forwarded("not-an-address")) == 429
    (record,) = warnings_logged(caplog)
    assert "share one handshake budget" in record.getMessage()
    assert unforwarded_count(server.metrics.render()[0].decode()) == 4


async def test_no_warning_when_loopback_is_not_a_proxy(
    start: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    """With --trusted-proxy set to the real proxy, a local client is just a client."""
    caplog.set_level(logging.INFO, "presence_server")
    server = await start(handshakes_per_minute=2, trusted_proxies=("192.0.2.10/32",))
    assert [await knock(server.url) for _ in range(4)] == [101] * 4  # loopback: exempt
    assert warnings_logged(caplog) == []
    assert unforwarded_count(server.metrics.render()[0].decode()) == 0
    assert "warnings" not in (await http_get(server.port, "/readyz")).json()


@pytest.mark.slow  # a presence-server process
@pytest.mark.parametrize("how", ["flag", "environment"])
async def test_the_real_server_limits_loopback_when_told(
    how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The installed command, configured the way an operator would."""
    extra: tuple[str, ...] = ("--handshakes-per-minute", "3")
    if how == "flag":
        extra += ("--limit-loopback",)
    else:
        monkeypatch.setenv("PRESENCE_LIMIT_LOOPBACK", "yes")
    process = ServerProcess(tmp_path / "server", extra=extra)
    await process.start()
    try:
        assert [await knock(process.url) for _ in range(3)] == [101] * 3
        headers = await refusal(process.url)
        assert 1 <= int(headers["Retry-After"]) <= 60
        metrics = (await http_get(process.port, "/metrics")).text
        assert unforwarded_count(metrics) == 4
        assert 'presence_handshakes_rejected_total{reason="rate"} 1.0' in metrics
        assert (await http_get(process.port, "/readyz")).json()["warnings"]
    finally:
        assert await process.stop() == 0
    log = process.log_path.read_text()
    assert log.count(WARNING_TEXT) == 1 and FIX_TEXT in log


@pytest.mark.slow  # a presence-server process
async def test_without_the_flag_the_real_server_keeps_the_loopback_exemption(
    tmp_path: Path,
) -> None:
    process = ServerProcess(tmp_path / "server", extra=("--handshakes-per-minute", "3"))
    await process.start()
    try:
        assert [await knock(process.url) for _ in range(6)] == [101] * 6
    finally:
        assert await process.stop() == 0
    assert process.log_path.read_text().count(WARNING_TEXT) == 1


async def test_no_proxy_means_no_warning_and_no_header_trusted(
    start: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "presence_server")
    server = await start(handshakes_per_minute=3, trusted_proxies=("none",))
    assert [await knock(server.url) for _ in range(4)] == [101] * 4  # loopback: exempt
    assert warnings_logged(caplog) == []
    assert unforwarded_count(server.metrics.render()[0].decode()) == 0
    # With no proxy, a client naming someone else in X-Forwarded-For is still
    # itself (loopback, exempt), never the address it made up.
    assert [await knock(server.url, **forwarded("203.0.113.9")) for _ in range(4)] == [101] * 4
    assert "warnings" not in (await http_get(server.port, "/readyz")).json()
