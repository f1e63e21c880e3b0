"""Security suite plumbing: record issued secrets, log everything to a file, scan last.

``issued.install()`` runs when this directory is collected, before any test
of the session runs, so tokens issued by every test (not only these) are
known to the final scan (``test_zz_secret_scan.py``, moved to the very end
of the session by ``pytest_collection_modifyitems``). Every log record of
the session also goes to ``suite.log`` in the session's temporary directory,
one of the files that scan reads.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from . import issued

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
