"""The real ``presence-server`` console script, as an operator runs it."""

from __future__ import annotations

import signal
import sqlite3
import sys
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

from presence_protocol import Auth, AuthOk, CloseCode, Hello, PresenceUpdate, SetPresence, Status
from presence_server.storage.database import MIGRATIONS
from tests.support.processes import Spawn

from .client import Client, befriend, login_dev

pytestmark = pytest.mark.slow  # each test starts presence-server processes


def head_revision() -> str:
    """The newest migration in the package (what ``migrate`` must reach)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_signal_closes_clients_with_4000_and_persists_last_seen(
    spawn: Spawn, tmp_path: Path, sig: signal.Signals
) -> None:
    db = tmp_path / "server.sqlite3"
    server = await spawn("--port", "0", "--dev-login", "--database", f"sqlite+aiosqlite:///{db}")
    port = (await server.listening()).port
    url = f"ws://127.0.0.1:{port}"
    alice = await login_dev(url, "alice")
    bob = await login_dev(url, "bob")
    await befriend(alice, bob)
    await alice.ok(SetPresence(status=Status.DND))
    await bob.expect(PresenceUpdate)

    server.proc.send_signal(sig)
    assert await alice.closed() == CloseCode.SERVER_RESTART
    assert await bob.closed() == CloseCode.SERVER_RESTART
    code, rest = await server.finish()
    assert code == 0, server.stderr
    assert rest == ""  # the listening line was the only line on stdout
    # The process ends without tearing down its heap (os._exit): its logs are
    # flushed first, down to the drain's last line.
    assert "server stopped" in server.stderr.splitlines()[-1], server.stderr[-2000:]
    with sqlite3.connect(db) as conn:
        seen = dict(conn.execute("SELECT login, last_seen FROM users").fetchall())
    assert seen["alice"] is not None and seen["bob"] is not None

    # Clients reconnect to the restarted server with their sessions.
    again = await spawn("--port", "0", "--database", f"sqlite+aiosqlite:///{db}")
    url = f"ws://127.0.0.1:{(await again.listening()).port}"
    client = await Client.open(url)
    await client.expect(Hello)
    ok = await client.request(Auth(session=alice.session or ""))
    assert isinstance(ok, AuthOk) and ok.user.login == "alice"
    await client.close()
    again.proc.send_signal(signal.SIGTERM)
    assert (await again.finish())[0] == 0


async def test_environment_configures_the_server(spawn: Spawn, tmp_path: Path) -> None:
    db = tmp_path / "env.sqlite3"
    server = await spawn(
        env={
            "PRESENCE_PORT": "0",
            "PRESENCE_DEV_LOGIN": "yes",
            "PRESENCE_DATABASE": f"sqlite+aiosqlite:///{db}",
            "PRESENCE_LOG_LEVEL": "warning",
        }
    )
    port = (await server.listening()).port
    client = await login_dev(f"ws://127.0.0.1:{port}", "alice")  # dev login is on
    await client.close()
    server.proc.send_signal(signal.SIGTERM)
    assert (await server.finish())[0] == 0
    assert db.exists()
    assert "INFO" not in server.stderr


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--host", "0.0.0.0", "--dev-login", "--port", "0"], {}),
        (["--port", "0"], {"PRESENCE_HOST": "192.0.2.10", "PRESENCE_DEV_LOGIN": "1"}),
    ],
    ids=["flags", "environment"],
)
async def test_dev_login_off_loopback_is_refused(
    spawn: Spawn, args: list[str], env: dict[str, str]
) -> None:
    server = await spawn(*args, env=env)
    code, out = await server.finish()
    assert code == 2
    assert out == ""
    assert "loopback" in server.stderr


@pytest.mark.parametrize(
    "env",
    [{"PRESENCE_PORT": "eighty"}, {"PRESENCE_DEV_LOGIN": "maybe"}],
    ids=["port", "dev-login"],
)
async def test_bad_environment_values_are_explained(spawn: Spawn, env: dict[str, str]) -> None:
    server = await spawn(env=env)
    code, out = await server.finish()
    assert (code, out) == (2, "")
    assert next(iter(env)) in server.stderr


async def test_migrate_subcommand(spawn: Spawn, tmp_path: Path) -> None:
    db = tmp_path / "migrated.sqlite3"
    process = await spawn("migrate", "--database", f"sqlite+aiosqlite:///{db}")
    code, out = await process.finish()
    assert code == 0, process.stderr
    assert f"revision {head_revision()}" in out
    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert {"users", "sessions", "friendships", "friend_requests", "blocks", "messages"} <= tables
    assert mode == "wal"


@pytest.mark.skipif(sys.platform != "linux", reason="XDG data dir layout is Linux's")
async def test_default_database_is_in_the_user_data_dir(spawn: Spawn, tmp_path: Path) -> None:
    server = await spawn("--port", "0")
    await server.listening()
    server.proc.send_signal(signal.SIGTERM)
    assert (await server.finish())[0] == 0
    assert (tmp_path / "data" / "presence-server" / "presence.sqlite3").exists()
