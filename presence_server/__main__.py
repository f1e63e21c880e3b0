"""``presence-server``: run the server, or bring its database schema up to date.

Every flag has an environment variable, so a container or a service unit can
be configured without a command line. Logs go to stderr; stdout carries
exactly one line, ``listening on ws://HOST:PORT`` (``wss://`` with TLS), once
the server accepts connections (scripts and tests wait for it and read the
port from it).
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
from typing import Any

from presence_protocol import limits

from . import github, logs
from .config import (
    DAY,
    DEFAULT_HOST,
    DEFAULT_PORT,
    ConfigError,
    RetentionPolicy,
    ServerConfig,
    ServerLimits,
    validate,
)
from .database import (
    create_engine,
    current_revision,
    default_database_url,
    migrate,
    normalize_url,
    safe_url,
)
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


def _env_number(env: Mapping[str, str], name: str, default: float, kind: type = float) -> Any:
    value = env.get(name, "").strip()
    if not value:
        return default
    try:
        return kind(value)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise ConfigError(f"${name} must be {what}, not {value!r}") from None


def _env_list(env: Mapping[str, str], name: str) -> list[str]:
    """A comma- or space-separated list."""
    return [item for item in env.get(name, "").replace(",", " ").split() if item]


def _production_arguments(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    """Scale-out, TLS, edge limits and logs (see docs/deployment.md)."""
    defaults = ServerConfig()
    group = parser.add_argument_group("scale-out (several instances on PostgreSQL and Redis)")
    group.add_argument(
        "--redis",
        metavar="URL",
        default=env.get("PRESENCE_REDIS") or "",
        help="Redis for fan-out and presence across instances, e.g. redis://host:6379/0 "
        "($PRESENCE_REDIS; default: none, this process alone)",
    )
    group.add_argument(
        "--presence-ttl",
        type=float,
        metavar="SECONDS",
        default=_env_number(env, "PRESENCE_TTL", defaults.presence_ttl),
        help="a crashed instance's users turn offline for friends within 1.25 x this "
        f"($PRESENCE_TTL; default {defaults.presence_ttl:g})",
    )
    group.add_argument(
        "--redis-prefix",
        metavar="PREFIX",
        default=env.get("PRESENCE_REDIS_PREFIX") or defaults.redis_prefix,
        help="prefix of every Redis key and channel "
        f"($PRESENCE_REDIS_PREFIX; default {defaults.redis_prefix!r})",
    )
    group.add_argument(
        "--instance-id",
        metavar="NAME",
        default=env.get("PRESENCE_INSTANCE_ID") or "",
        help="this instance's name in Redis and logs "
        "($PRESENCE_INSTANCE_ID; default: host name and a random suffix)",
    )
    group.add_argument(
        "--db-pool-size",
        type=int,
        metavar="N",
        default=_env_number(env, "PRESENCE_DB_POOL_SIZE", defaults.db_pool_size, int),
        help="PostgreSQL connections per instance, as many again in bursts "
        f"($PRESENCE_DB_POOL_SIZE; default {defaults.db_pool_size})",
    )
    edge = parser.add_argument_group("TLS and edges")
    edge.add_argument(
        "--certfile",
        metavar="PEM",
        default=env.get("PRESENCE_CERTFILE") or "",
        help="serve wss:// with this certificate chain ($PRESENCE_CERTFILE)",
    )
    edge.add_argument(
        "--keyfile",
        metavar="PEM",
        default=env.get("PRESENCE_KEYFILE") or "",
        help="the certificate's private key, if not in --certfile ($PRESENCE_KEYFILE)",
    )
    edge.add_argument(
        "--trusted-proxy",
        action="append",
        metavar="CIDR",
        default=_env_list(env, "PRESENCE_TRUSTED_PROXIES"),
        help="a reverse proxy whose X-Forwarded-For names the client; repeatable; "
        "'none' when clients connect directly (default: loopback) "
        "($PRESENCE_TRUSTED_PROXIES, comma-separated)",
    )
    edge.add_argument(
        "--allowed-origin",
        action="append",
        metavar="ORIGIN",
        default=_env_list(env, "PRESENCE_ALLOWED_ORIGINS"),
        help="a web page origin (https://host) allowed to connect, or *; clients that send "
        "no Origin are always allowed; repeatable ($PRESENCE_ALLOWED_ORIGINS)",
    )
    edge.add_argument(
        "--handshakes-per-minute",
        type=int,
        metavar="N",
        default=_env_number(
            env, "PRESENCE_HANDSHAKES_PER_MINUTE", defaults.handshakes_per_minute, int
        ),
        help="connection attempts per client IP (IPv6: per /64); 0 = unlimited "
        f"($PRESENCE_HANDSHAKES_PER_MINUTE; default {defaults.handshakes_per_minute})",
    )
    edge.add_argument(
        "--limit-loopback",
        action="store_true",
        default=_env_flag(env, "PRESENCE_LIMIT_LOOPBACK"),
        help="apply --handshakes-per-minute to loopback clients too; by default this "
        "machine's own connections are never limited, which also lifts the limit for "
        "everyone behind a local proxy that sends no X-Forwarded-For "
        "($PRESENCE_LIMIT_LOOPBACK=1)",
    )
    edge.add_argument(
        "--max-connections-per-user",
        type=int,
        metavar="N",
        default=_env_number(
            env, "PRESENCE_MAX_CONNECTIONS_PER_USER", defaults.max_connections_per_user, int
        ),
        help="connected devices per account on all instances; more are closed with 4004; "
        f"0 = unlimited ($PRESENCE_MAX_CONNECTIONS_PER_USER; default "
        f"{defaults.max_connections_per_user})",
    )
    edge.add_argument(
        "--commands-per-minute",
        type=int,
        metavar="N",
        default=_env_number(env, "PRESENCE_COMMANDS_PER_MINUTE", limits.COMMANDS_PER_MINUTE, int),
        help="commands one connection may send per rolling minute (announced in hello) "
        f"($PRESENCE_COMMANDS_PER_MINUTE; default {limits.COMMANDS_PER_MINUTE})",
    )
    edge.add_argument(
        "--drain-seconds",
        type=float,
        metavar="SECONDS",
        default=_env_number(env, "PRESENCE_DRAIN_SECONDS", defaults.drain_seconds),
        help="on SIGTERM, how long connections may take to flush before they are cut "
        f"($PRESENCE_DRAIN_SECONDS; default {defaults.drain_seconds:g})",
    )
    edge.add_argument(
        "--no-gc-freeze",
        action="store_true",
        default=_env_flag(env, "PRESENCE_NO_GC_FREEZE"),
        help="leave Python's garbage collector as it is; by default long-lived objects "
        "are frozen so that full collections do not pause thousands of connections "
        "($PRESENCE_NO_GC_FREEZE=1)",
    )


def _production(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "redis_url": args.redis,
        "presence_ttl": args.presence_ttl,
        "redis_prefix": args.redis_prefix,
        "instance_id": args.instance_id,
        "db_pool_size": args.db_pool_size,
        "certfile": args.certfile,
        "keyfile": args.keyfile,
        "trusted_proxies": tuple(args.trusted_proxy),
        "allowed_origins": tuple(args.allowed_origin),
        "handshakes_per_minute": args.handshakes_per_minute,
        "limit_loopback": args.limit_loopback,
        "max_connections_per_user": args.max_connections_per_user,
        "drain_seconds": args.drain_seconds,
        "gc_freeze": not args.no_gc_freeze,
    }


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
        help="postgresql://user:password@host/dbname (or postgres://) or "
        "sqlite:///path.sqlite3 ($PRESENCE_DATABASE; default: a SQLite file in the user "
        "data directory)",
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
    parser.add_argument(
        "--log-format",
        type=str.lower,
        choices=logs.FORMATS,
        default=(env.get("PRESENCE_LOG_FORMAT") or "text").lower(),
        help="text for people, json for log pipelines: one object per line "
        "($PRESENCE_LOG_FORMAT; default text)",
    )
    _production_arguments(parser, env)
    _retention_arguments(parser, env)
    github.add_arguments(parser)
    return parser


async def _migrate(database_url: str) -> int:
    engine = create_engine(database_url)
    try:
        await migrate(engine)
        revision = await current_revision(engine)
    finally:
        await engine.dispose()
    print(f"database {safe_url(database_url)} is at revision {revision}", flush=True)
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
        except ConfigError as exc:
            print(f"presence-server: error: {exc}", file=sys.stderr)
            return 2
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, stop.set)
            except NotImplementedError:  # Windows: no loop signal handlers
                signal.signal(sig, lambda *_: loop.call_soon_threadsafe(stop.set))
        log.info(
            "database %s",
            safe_url(config.database_url),
            extra={"event": "database", "database": safe_url(config.database_url)},
        )
        print(f"listening on {server.url}", flush=True)
        await stop.wait()
        log.info(
            "shutting down: closing connections with 4000 (reconnect)",
            extra={"event": "draining"},
        )
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
    logs.configure(args.log_level, args.log_format)
    # The wire logger stays above DEBUG (frame dumps would hold token bytes)
    # but follows a quieter level when one is asked for.
    WIRE_LOG.setLevel(max(logging.INFO, logging.getLevelName(args.log_level)))
    database_url = args.database or default_database_url()
    try:
        database_url = normalize_url(database_url)
    except ConfigError as exc:
        print(f"presence-server: error: {exc}", file=sys.stderr)
        return 2
    if args.command == "migrate":
        return asyncio.run(_migrate(database_url))
    config = ServerConfig(
        host=args.host,
        port=args.port,
        database_url=database_url,
        dev_login=args.dev_login,
        retention=_retention(args),
        limits=ServerLimits(commands_per_minute=args.commands_per_minute),
        **_production(args),
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
