"""Chaos tests record the session tokens their apps receive (for the final secret
scan), and keep the apps' own DEBUG log in ``apps.log`` beside the servers' logs."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.security import issued

issued.install()


@pytest.fixture
def app_log(tmp_path: Path) -> Iterator[None]:
    """The apps' own log, at DEBUG, in a file (read by the final secret scan too);
    for the chaos runs (``usefixtures``)."""
    handler = logging.FileHandler(tmp_path / "apps.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("presence_desktop")
    old = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield
    logger.removeHandler(handler)
    logger.setLevel(old)
    handler.close()
