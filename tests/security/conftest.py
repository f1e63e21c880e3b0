"""Security suite plumbing: record issued secrets, log everything to a file, scan last.

``issued.install()`` runs when this directory is collected, before any test
of the session runs, so tokens issued by every test (not only these) are
known to the final scan (``test_zz_secret_scan.py``, moved to the very end
of the session by ``pytest_collection_modifyitems``). Every log record of
the session also goes to ``suite.log`` in the session's temporary directory,
one of the files that scan reads.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path

import pytest

from tests.qt_loop import qasync_loop
from tests.server.helpers import StartServer, running_servers, sqlite_url

from . import issued

__all__ = ["StartServer"]  # the suite's tests import it from here
QUIET = ("websockets", "aiosqlite", "asyncio")
"""Kept at INFO: the test's own raw clients' frame dumps and library chatter."""

issued.install()

SCAN_MODULE = "test_zz_secret_scan.py"
LOG_NAME = "suite.log"
_handler: logging.Handler | None = None


@pytest.hookimpl(trylast=True)  # after the tmp_path plugin made its factory
def pytest_configure(config: pytest.Config) -> None:
    global _handler
    if _handler is not None:
        return
    factory: pytest.TempPathFactory = config._tmp_path_factory  # type: ignore[attr-defined]
    _handler = logging.FileHandler(factory.getbasetemp() / LOG_NAME, encoding="utf-8")
    _handler.setLevel(logging.DEBUG)
    _handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(_handler)


def pytest_unconfigure(config: pytest.Config) -> None:
    global _handler
    if _handler is not None:
        logging.getLogger().removeHandler(_handler)
        _handler.close()
        _handler = None


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """The secret scan reads what every other test left behind: it runs last."""
    last = [item for item in items if item.path.name == SCAN_MODULE]
    if last:
        items[:] = [item for item in items if item.path.name != SCAN_MODULE] + last


@pytest.fixture(autouse=True)
def debug_logging() -> Iterator[None]:
    """Product loggers at DEBUG (where leaks hide); websockets' frame dumps of
    the test's own raw clients stay off, they are not the product."""
    quiet = [logging.getLogger(name) for name in QUIET]
    root = logging.getLogger()
    old = [root.level, *(q.level for q in quiet)]
    root.setLevel(logging.DEBUG)
    for logger in quiet:
        logger.setLevel(logging.INFO)
    yield
    for logger, level in zip([root, *quiet], old, strict=True):
        logger.setLevel(level)


QT_TESTS = ("test_fuzz_bridge.py",)
"""Modules whose tests run on the qasync loop (the bridge is a QLocalServer)."""


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    if item.path.name in QT_TESTS:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        return {"qasync": qasync_loop}
    return {"asyncio": asyncio.new_event_loop}


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "presence.sqlite3"


@pytest.fixture
async def start(db_path: Path) -> AsyncIterator[StartServer]:
    """In-process servers on this test's SQLite file; stopped at teardown."""
    async with running_servers(sqlite_url(db_path)) as start:
        yield start
