"""Every ui test gets the QApplication (widgets abort without one)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtWidgets import QApplication


@pytest.fixture(autouse=True)
def _qt_app(qapp: QApplication) -> QApplication:
    return qapp


@pytest.fixture
def app_stays_open(qapp: QApplication) -> Iterator[None]:
    """Like the real app: closing the last window must not stop the (qasync) loop."""
    before = qapp.quitOnLastWindowClosed()
    qapp.setQuitOnLastWindowClosed(False)
    yield
    qapp.setQuitOnLastWindowClosed(before)
