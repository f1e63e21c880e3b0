"""``presence-server``: run the server, or bring its database schema up to date.

Every flag has an environment variable, so a container or a service unit can
be configured without a command line; both come from the one table of
options in ``options.py``. Logs go to stderr; stdout carries
exactly one line, ``listening on ws://HOST:PORT`` (``wss://`` with TLS), once
the server accepts connections (scripts and tests wait for it and read the
port from it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from typing import NoReturn

from .config import ConfigError, RetentionPolicy, ServerConfig
from .edge import github, logs, options
from .edge.options import validate
from .edge.server import WIRE_LOG, start_server
from .storage.database import (
    create_engine,
    current_revision,
    default_database_url,
    migrate,
    normalize_url,
    safe_url,
)

log = logging.getLogger("presence_server")


def _retention(args: argparse.Namespace) -> RetentionPolicy:
    """The retention part of the config (kept for callers that only want it)."""
    return options.config_from(args).retention


def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    """The command line; defaults come from the environment, then built-in values
    (one rule for every option, declared in ``options.OPTIONS``)."""
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
    options.add_arguments(parser, env, exclude=(options.GITHUB_GROUP,))
    github.add_arguments(parser, env)
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


STOP_REPORT_AFTER_SECONDS = 20.0
"""A stop that outlasts the drain by this much logs where it is stuck."""


def _report_stuck_stop() -> None:
    """Log the stack of every task still running, so an operator (or a test's
    log tail) sees what a stop that does not end is waiting for."""
    tasks = [t for t in asyncio.all_tasks() if not t.done()]
    lines = [f"stop is taking long; {len(tasks)} tasks still running:"]
    for task in tasks:
        frames = task.get_stack(limit=8)
        where = " <- ".join(
            f"{f.f_code.co_name} ({f.f_code.co_filename.rsplit('/', 1)[-1]}:{f.f_lineno})"
            for f in reversed(frames)
        )
        lines.append(f"  {task.get_name()}: {where or 'not started'}")
    log.error("\n".join(lines), extra={"event": "stop_stuck"})


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
        watchdog = asyncio.get_running_loop().call_later(
            config.drain_seconds + STOP_REPORT_AFTER_SECONDS, _report_stuck_stop
        )
        try:
            await server.stop()
        finally:
            watchdog.cancel()
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
    try:
        config = options.config_from(args, database_url=database_url)
    except ConfigError as exc:
        print(f"presence-server: error: {exc}", file=sys.stderr)
        return 2
    try:
        validate(config)
        settings = github.settings_from(args, env)
    except ConfigError as exc:
        print(f"presence-server: error: {exc}", file=sys.stderr)
        return 2
    code = asyncio.run(_serve(config, settings))
    if argv is None:  # the process's own command line: it ends here
        exit_now(code)
    return code


def exit_now(code: int) -> NoReturn:
    """End the process without tearing down its heap.

    By now the server has stopped: every connection is closed, every durable
    write is committed and the database released. What an ordinary exit would
    still do is free every object one by one and run a last full garbage
    collection over them: about 1.4 s after a stop of 6,000 connections,
    several seconds at 15,000, and a supervisor that restarts the service
    once the old process is gone (systemd, the reconnect-storm benchmark)
    waits for all of it (docs/performance.md, "Reconnect storm"). Logs and
    standard streams are flushed first; nothing else registers exit work.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
