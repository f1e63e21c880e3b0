"""Opening the database and bringing its schema up to date.

The schema is owned by the Alembic migrations in ``presence_server/storage/migrations``;
the server runs them on every start, so an operator never has to remember a
separate step (``presence-server migrate`` exists for those who want to).

On PostgreSQL several instances may start at once: the migration runs inside
one transaction that first takes a PostgreSQL advisory lock, so the first
instance migrates and the others wait, then find the schema at head.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import platformdirs
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError as AlembicCommandError
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from ..config import ConfigError

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
APP_NAME = "presence-server"

MIGRATION_LOCK = int.from_bytes(b"presence", "big")
"""Advisory lock key held while migrating. Far above any user id (<= 2**53),
so it never meets the per-user keys of ``advisory_lock``."""
DEV_ID_LOCK = int.from_bytes(b"presdevs", "big")
"""Advisory lock key held while a new dev-login id is allocated."""
RETENTION_LOCK = int.from_bytes(b"presswep", "big")
"""Advisory lock key held by the one instance whose retention sweep runs now."""

_POSTGRES_NAMES = {"postgres", "postgresql"}


def normalize_url(url: str) -> str:
    """The async SQLAlchemy URL for what an operator typed.

    ``postgres://`` and ``postgresql://`` (as PaaS providers hand them out)
    become ``postgresql+asyncpg://``, with libpq's ``sslmode`` turned into
    asyncpg's ``ssl``; ``sqlite:///`` becomes ``sqlite+aiosqlite:///``.
    Anything else is refused with the forms that work.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            "--database must be a URL such as postgresql://user:password@host/dbname "
            "or sqlite:///path/to/presence.sqlite3"
        ) from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend in _POSTGRES_NAMES and driver in ("", "asyncpg"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
        query = dict(parsed.query)
        if "sslmode" in query:
            query["ssl"] = query.pop("sslmode")
            parsed = parsed.set(query=query)
    elif backend == "sqlite" and driver in ("", "aiosqlite"):
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    else:
        raise ConfigError(
            f"unsupported database {parsed.drivername!r}: use postgresql://… (asyncpg) "
            "or sqlite:///… (aiosqlite)"
        )
    return _render(parsed)


def _render(url: URL) -> str:
    return url.render_as_string(hide_password=False)


def safe_url(url: str) -> str:
    """The URL with its password masked, for logs and messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unparsable URL)"


def default_database_url() -> str:
    """A SQLite file in the user's data directory (created on first use)."""
    path = Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)) / "presence.sqlite3"
    return f"sqlite+aiosqlite:///{path}"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers run while one writer commits; foreign keys are off by default."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
    finally:
        cursor.close()


def create_engine(url: str, pool_size: int = 5) -> AsyncEngine:
    """An async engine; for a SQLite file its directory is created first.

    ``pool_size`` bounds the PostgreSQL connections of this instance (as many
    again may open briefly under bursts); N instances hold up to 2·N·pool_size.
    """
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        url, pool_pre_ping=True, pool_size=pool_size, max_overflow=pool_size, pool_timeout=10
    )


async def advisory_lock(conn: AsyncConnection, *keys: int, wait: bool = True) -> bool:
    """Serialize this transaction with other instances' on the same keys (PostgreSQL).

    Keys are taken in ascending order, so two transactions locking the same
    users cannot deadlock. Released at commit or rollback. On SQLite it does
    nothing: the store already runs one write transaction at a time.
    With ``wait=False`` a key another transaction holds is not waited for:
    the result is False and the caller should give up its turn (keys taken
    before it stay held until the transaction ends).
    """
    if conn.dialect.name != "postgresql":
        return True
    function = "pg_advisory_xact_lock" if wait else "pg_try_advisory_xact_lock"
    for key in sorted(set(keys)):
        taken = await conn.scalar(sa.text(f"SELECT {function}(:key)"), {"key": key})
        if not wait and not taken:
            return False
    return True


def _alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        # Held until this transaction commits: a second instance starting at
        # the same moment waits here, then finds nothing left to do.
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    config = _alembic_config(connection)
    current = _current(connection)
    if current is not None and not _known(config, current):
        # A newer version of the server migrated this database (a rolling
        # deploy, or a rollback of the code). Migrations only ever add, so
        # this version still runs on it; refusing to start would turn a
        # rollback into an outage.
        log.warning(
            "the database schema is at revision %s, newer than this version of the server "
            "knows; running without migrating",
            current,
            extra={"event": "schema_newer", "revision": current},
        )
        return
    command.upgrade(config, "head")


def _known(config: Config, revision: str) -> bool:
    try:
        return ScriptDirectory.from_config(config).get_revision(revision) is not None
    except AlembicCommandError:
        return False


async def migrate(engine: AsyncEngine) -> None:
    """Apply every migration that the database has not seen yet."""
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)


def _current(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(_current)
