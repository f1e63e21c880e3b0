"""Migrations on PostgreSQL from the command line, and a schema newer than the code."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from tests.server.client import login_dev
from tests.server.test_cli import head_revision
from tests.support.processes import Spawn

pytestmark = pytest.mark.slow  # presence-server processes


def libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def test_migrate_subcommand_on_postgres_url_forms(postgres_url: str, spawn: Spawn) -> None:
    # The form PaaS platforms hand out: postgres://
    url = libpq(postgres_url).replace("postgresql://", "postgres://", 1)
    process = await spawn("migrate", "--database", url)
    assert await process.wait() == 0, process.stderr
    out = (await process.proc.stdout.read()).decode() if process.proc.stdout else ""
    assert f"is at revision {head_revision()}" in out
    assert "postgresql+asyncpg://" in out
    conn = await asyncpg.connect(libpq(postgres_url))
    try:
        tables = {r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables")}
    finally:
        await conn.close()
    assert {"users", "sessions", "friendships", "messages", "friend_request_times"} <= tables


async def test_a_database_migrated_by_a_newer_version_still_serves(
    postgres_url: str, spawn: Spawn
) -> None:
    migrate = await spawn("migrate", "--database", postgres_url)
    assert await migrate.wait() == 0
    conn = await asyncpg.connect(libpq(postgres_url))
    try:
        await conn.execute("UPDATE alembic_version SET version_num = '9999'")
    finally:
        await conn.close()
    server = await spawn("--port", "0", "--dev-login", "--database", postgres_url)
    await server.listening()
    client = await login_dev(server.url, "alice")
    await client.close()
    assert await server.terminate() == 0
    assert "newer than this version" in server.stderr
