"""Guard against the PySide6 6.12.0 reference-count bug on Python 3.11.

There, every ``Signal.emit`` released one reference to ``True`` it never
took, and ``beginInsertRows``/``endInsertRows`` did the same to ``None``;
after a few thousand presence updates the interpreter aborted with
"deallocating True". Python 3.12+ makes these objects immortal, so the
check only means something on 3.11. A PySide6 upgrade that brings the bug
back fails here instead of crashing a running tray app hours later.
"""

from __future__ import annotations

import sys

import pytest
from PySide6.QtCore import QAbstractListModel, QModelIndex, QObject, QPersistentModelIndex, Signal

pytestmark = pytest.mark.skipif(
    sys.version_info >= (3, 12), reason="True and None are immortal from Python 3.12 on"
)


class _Emitter(QObject):
    fired = Signal(int)


class _Model(QAbstractListModel):
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 10

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = 0) -> object:
        return None


def test_signal_emit_keeps_the_refcount_of_true(qapp: object) -> None:
    emitter = _Emitter()
    before = sys.getrefcount(True)
    for _ in range(200):
        emitter.fired.emit(1)
    assert sys.getrefcount(True) - before > -50


def test_row_insertion_keeps_the_refcount_of_none(qapp: object) -> None:
    model = _Model()
    root = QModelIndex()
    before = sys.getrefcount(None)
    for _ in range(200):
        model.beginInsertRows(root, 1, 1)
        model.endInsertRows()
    assert sys.getrefcount(None) - before > -50
