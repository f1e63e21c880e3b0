"""Every ui test gets the QApplication (widgets abort without one)."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QApplication


@pytest.fixture(autouse=True)
def _qt_app(qapp: QApplication) -> QApplication:
    return qapp
