"""What an operator reads: /healthz, /readyz, /metrics, JSON logs, the environment."""

from __future__ import annotations

import json
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from presence_protocol import Message, MessageSent, SendMessage
from presence_server import RunningServer, ServerConfig, start_server
from presence_server.__main__ import build_parser
from tests.server.client import Client, befriend, login_dev
from tests.support.processes import Spawn
from tests.support.services import free_port

pytestmark = pytest.mark.slow  # presence-server processes


def sqlite(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'ops.sqlite3'}"


async def get(server: RunningServer, path: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.get(f"http://127.0.0.1:{server.port}{path}", timeout=10)


@pytest.fixture
async def servers() -> AsyncIterator[list[RunningServer]]:
    started: list[RunningServer] = []
    yield started
    for server in started:
        await server.stop()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text page, keyed by name and sorted labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_health_and_readiness_of_a_single_instance(
    tmp_path: Path, servers: list[RunningServer]
) -> None:
    server = await start_server(ServerConfig(port=0, database_url=sqlite(tmp_path)))
    servers.append(server)
    health = await get(server, "/healthz")
    assert (health.status_code, health.text) == (200, "ok\n")
    ready = await get(server, "/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "database": "ok",
        "draining": False,
        "ready": True,
        "redis": "not configured",
    }


async def test_unreachable_redis_is_reported_and_local_friends_keep_working(
    tmp_path: Path, servers: list[RunningServer]
) -> None:
    config = ServerConfig(
        port=0,
        dev_login=True,
        database_url=sqlite(tmp_path),
        redis_url=f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
    )
    server = await start_server(config)
    servers.append(server)
    ready = await get(server, "/readyz")
    assert ready.status_code == 503
    assert ready.json()["database"] == "ok"
    assert ready.json()["redis"].startswith("unreachable")
    alice = await login_dev(server.url, "alice")
    bob = await login_dev(server.url, "bob")
    await befriend(alice, bob)
    sent = await alice.request(SendMessage(to=bob.me, text="still here", client_msg_id="m"))
    assert isinstance(sent, MessageSent)
    assert (await bob.expect(Message)).message_id == sent.message_id
    metrics = samples((await get(server, "/metrics")).text)
    assert metrics[("presence_redis_up", ())] == 0
    await alice.close()
    await bob.close()


async def test_metrics_count_what_happened(
    postgres_url: str, redis_url: str, redis_prefix: str, servers: list[RunningServer]
) -> None:
    config = ServerConfig(
        port=0,
        dev_login=True,
        database_url=postgres_url,
        redis_url=redis_url,
        redis_prefix=redis_prefix,
    )
    one = await start_server(config)
    servers.append(one)
    two = await start_server(config)
    servers.append(two)
    assert (await get(one, "/readyz")).json()["redis"] == "ok"

    alice = await login_dev(one.url, "alice")
    bob = await login_dev(two.url, "bob")  # on the other instance
    carol = await login_dev(one.url, "carol")
    await befriend(alice, bob)
    await befriend(alice, carol)
    for friend in (bob, carol):
        sent = await alice.request(
            SendMessage(to=friend.me, text="hi", client_msg_id=f"{friend.me}")
        )
        assert isinstance(sent, MessageSent)
        assert (await friend.expect(Message)).message_id == sent.message_id
    await alice.send("not json")
    await alice.barrier()

    first = samples((await get(one, "/metrics")).text)
    second = samples((await get(two, "/metrics")).text)
    assert first[("presence_connections", ())] == 2
    assert first[("presence_authenticated_users", ())] == 2
    assert first[("presence_messages_in_total", (("type", "send_message"),))] == 2
    assert first[("presence_messages_in_total", (("type", "invalid"),))] == 1
    assert first[("presence_errors_total", (("code", "bad_frame"),))] == 1
    assert first[("presence_messages_out_total", ())] > 10
    assert first[("presence_redis_up", ())] == 1
    assert first[("presence_deliveries_total", (("path", "local"),))] >= 1
    assert first[("presence_fanout_latency_seconds_count", (("path", "local"),))] >= 1
    # Events from instance one reached bob on instance two through Redis.
    assert second[("presence_deliveries_total", (("path", "redis"),))] >= 2
    assert second[("presence_fanout_latency_seconds_count", (("path", "redis"),))] >= 2
    for client in (alice, bob, carol):
        await client.close()


async def test_json_logs_are_one_object_per_line_without_secrets(spawn: Spawn) -> None:
    server = await spawn("--port", "0", "--dev-login", env={"PRESENCE_LOG_FORMAT": "json"})
    await server.listening()
    alice = await login_dev(server.url, "alice")
    bob = await login_dev(server.url, "bob")
    await befriend(alice, bob)
    text = "meet me at the secret place"
    await alice.request(SendMessage(to=bob.me, text=text, client_msg_id="m-1"))
    await bob.expect(Message)
    await bob.barrier()
    server.proc.send_signal(signal.SIGTERM)
    assert await server.wait() == 0

    lines = server.stderr.splitlines()
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    events = {e.get("event") for e in entries}
    assert {"listening", "login", "draining", "stopped"} <= events
    # One login event per user, each with the address (the two may be written in
    # either order: alice's handler logs after her snapshot is sent).
    logins = {e["user"]: e for e in entries if e.get("event") == "login"}
    assert set(logins) == {alice.me, bob.me}
    assert logins[alice.me]["ip"] == "127.0.0.1"
    for entry in entries:
        assert {"ts", "level", "logger", "msg"} <= set(entry)
    for secret in (alice.session, bob.session, text):
        assert secret and secret not in server.stderr


async def test_every_setting_has_an_environment_variable() -> None:
    parser = build_parser({})
    for action in parser._actions:
        if (
            not action.option_strings
            or action.help in (None, "==SUPPRESS==")
            or action.dest == "help"
        ):
            continue
        if action.dest != "help":
            assert "$PRESENCE_" in (action.help or ""), action.option_strings


async def test_production_settings_from_the_environment(
    spawn: Spawn, postgres_url: str, redis_url: str, redis_prefix: str
) -> None:
    server = await spawn(
        env={
            "PRESENCE_PORT": "0",
            "PRESENCE_DATABASE": postgres_url,
            "PRESENCE_REDIS": redis_url,
            "PRESENCE_REDIS_PREFIX": redis_prefix,
            "PRESENCE_TTL": "5",
            "PRESENCE_INSTANCE_ID": "env-test",
            "PRESENCE_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.0.0/16",
            "PRESENCE_ALLOWED_ORIGINS": "https://app.example",
            "PRESENCE_MAX_CONNECTIONS_PER_USER": "3",
            "PRESENCE_LOG_FORMAT": "json",
        }
    )
    await server.listening()
    ready = await server.get("/readyz")
    assert ready.status_code == 200 and ready.json()["redis"] == "ok"
    allowed = await Client.open(server.url, origin="https://app.example")
    await allowed.close()
    assert await server.terminate() == 0
    listening = next(
        json.loads(line) for line in server.stderr.splitlines() if '"listening"' in line
    )
    assert listening["instance"] == "env-test"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"PRESENCE_TTL": "soon"}, "PRESENCE_TTL"),
        ({"PRESENCE_TTL": "0.5"}, "--presence-ttl"),
        ({"PRESENCE_TRUSTED_PROXIES": "the proxy"}, "--trusted-proxy"),
        ({"PRESENCE_ALLOWED_ORIGINS": "app.example"}, "--allowed-origin"),
        ({"PRESENCE_REDIS": "localhost:6379"}, "--redis"),
        ({"PRESENCE_DATABASE": "mysql://db/presence"}, "unsupported database"),
        ({"PRESENCE_MAX_CONNECTIONS_PER_USER": "many"}, "PRESENCE_MAX_CONNECTIONS_PER_USER"),
    ],
    ids=["ttl-word", "ttl-range", "proxy", "origin", "redis", "database", "cap"],
)
async def test_bad_production_settings_are_explained(
    spawn: Spawn, env: dict[str, str], named: str
) -> None:
    server = await spawn("--port", "0", env=env)
    assert await server.wait() == 2
    assert named in server.stderr
