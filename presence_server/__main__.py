"""``presence-server``: run the server, or bring its database schema up to date.

Every flag has an environment variable, so a container or a service unit can
be configured without a command line. Logs go to stderr; stdout carries
exactly one line, ``listening on ws://HOST:PORT``, once the server accepts
connections (scripts and tests wait for it and read the port from it).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence

from sqlalchemy.engine import make_url

from . import github
from .config import (
    DAY,
    DEFAULT_HOST,
    DEFAULT_PORT,
    ConfigError,
    RetentionPolicy,
    ServerConfig,
    validate,
)
from .database import create_engine, current_revision, default_database_url, migrate
from .server import WIRE_LOG, start_server

log = logging.getLogger("presence_server")

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def _env_flag(env: Mapping[str, str], name: str) -> bool:
    value = env.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"${name} must be 1/0, true/false, yes/no or on/off, not {value!r}")


def _env_port(env: Mapping[str, str]) -> int:
    value = env.get("PRESENCE_PORT", "").strip()
    if not value:
        return DEFAULT_PORT
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"$PRESENCE_PORT must be a port number, not {value!r}") from None


def _env_days(env: Mapping[str, str], name: str, default: int) -> float:
    value = env.get(name, "").strip()
    if not value:
        return default / DAY
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"${name} must be a number of days, not {value!r}") from None


def _retention_arguments(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    keep = RetentionPolicy()
    for flag, var, default, what in (
        (
            "--keep-delivered-days",
            "PRESENCE_KEEP_DELIVERED_DAYS",
            keep.delivered_messages,
            "days a delivered (acknowledged) message is kept after sending",
        ),
        (
            "--keep-undelivered-days",
            "PRESENCE_KEEP_UNDELIVERED_DAYS",
            keep.undelivered_messages,
            "days an undelivered message is kept before it is deleted and its sender told",
        ),
        (
            "--session-idle-days",
            "PRESENCE_SESSION_IDLE_DAYS",
            keep.idle_sessions,
            "days of disuse after which a session stops working",
        ),
    ):
        parser.add_argument(
            flag,
            type=float,
            metavar="DAYS",
            default=_env_days(env, var, default),
            help=f"{what} (${var}; default {default / DAY:g})",
        )


def _retention(args: argparse.Namespace) -> RetentionPolicy:
    return RetentionPolicy(
        delivered_messages=round(args.keep_delivered_days * DAY),
        undelivered_messages=round(args.keep_undelivered_days * DAY),
        idle_sessions=round(args.session_idle_days * DAY),
    )


def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    """The command line; defaults come from the environment, then built-in values."""
    parser = argparse.ArgumentParser(
        prog="presence-server",
        description="The presence server: friends, presence and messages over presence.v1.",
    )
    parser.add_argument(
        "command",
        nargs="?",
        choices=("serve", "migrate"),
        default="serve",
        help="serve (default), or migrate: update the database schema and exit",
    )
    parser.add_argument(
        "--host",
        default=env.get("PRESENCE_HOST") or DEFAULT_HOST,
        help=f"address to listen on ($PRESENCE_HOST; default {DEFAULT_HOST})",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=_env_port(env),
        help=f"port; 0 picks a free one ($PRESENCE_PORT; default {DEFAULT_PORT})",
    )
    parser.add_argument(
        "--database",
        metavar="URL",
        default=env.get("PRESENCE_DATABASE") or "",
        help="SQLAlchemy async URL, e.g. sqlite+aiosqlite:///path.sqlite3 ($PRESENCE_DATABASE; "
        "default: a SQLite file in the user data directory)",
    )
    parser.add_argument(
        "--dev-login",
        action="store_true",
        default=_env_flag(env, "PRESENCE_DEV_LOGIN"),
        help="allow logging in with just a username; loopback addresses only "
        "($PRESENCE_DEV_LOGIN=1)",
    )
    parser.add_argument(
        "--log-level",
        type=str.upper,
        choices=LOG_LEVELS,
        default=(env.get("PRESENCE_LOG_LEVEL") or "INFO").upper(),
        help="($PRESENCE_LOG_LEVEL; default INFO)",
    )
    _retention_arguments(parser, env)
    github.add_arguments(parser)
    return parser


def _safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


async def _migrate(database_url: str) -> int:
    engine = create_engine(database_url)
    try:
        await migrate(engine)
        revision = await current_revision(engine)
    finally:
        await engine.dispose()
    print(f"database {_safe_url(database_url)} is at revision {revision}", flush=True)
    return 0


async def _serve(config: ServerConfig, settings: github.GitHubSettings | None) -> int:
    auth = github.GitHubAuth(settings) if settings is not None else None
    try:
        try:
            server = await start_server(dataclasses.replace(config, github=auth))
        except OSError as exc:
            print(
                f"presence-server: cannot listen on {config.host}:{config.port}: {exc.strerror}",
                file=sys.stderr,
            )
            return 1
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, stop.set)
            except NotImplementedError:  # Windows: no loop signal handlers
                signal.signal(sig, lambda *_: loop.call_soon_threadsafe(stop.set))
        log.info("database %s", _safe_url(config.database_url))
        print(f"listening on {server.url}", flush=True)
        await stop.wait()
        log.info("shutting down: closing connections with 4000 (reconnect)")
        await server.stop()
        return 0
    finally:
        if auth is not None:
            await auth.aclose()


def main(argv: Sequence[str] | None = None) -> int:
    env = os.environ
    try:
        parser = build_parser(env)
    except ConfigError as exc:
        print(f"presence-server: error: {exc}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # The wire logger stays above DEBUG (frame dumps would hold token bytes)
    # but follows a quieter level when one is asked for.
    WIRE_LOG.setLevel(max(logging.INFO, logging.getLevelName(args.log_level)))
    database_url = args.database or default_database_url()
    if args.command == "migrate":
        return asyncio.run(_migrate(database_url))
    config = ServerConfig(
        host=args.host,
        port=args.port,
        database_url=database_url,
        dev_login=args.dev_login,
        retention=_retention(args),
    )
    try:
        validate(config)
        settings = github.settings_from(args, env)
    except (ConfigError, github.ConfigError) as exc:
        print(f"presence-server: error: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(_serve(config, settings))


if __name__ == "__main__":
    sys.exit(main())
