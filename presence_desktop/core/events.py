"""A minimal observer, so core logic can announce changes without importing Qt.

The ui layer connects Qt slots (or plain callables) to these; the core never
knows who listens.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

log = logging.getLogger(__name__)


class Signal(Generic[T]):
    """Callbacks with one argument, called in connection order."""

    __slots__ = ("_slots",)

    def __init__(self) -> None:
        self._slots: list[Callable[[T], object]] = []

    def connect(self, slot: Callable[[T], object]) -> None:
        self._slots.append(slot)

    def disconnect(self, slot: Callable[[T], object]) -> None:
        self._slots.remove(slot)

    def emit(self, value: T) -> None:
        for slot in list(self._slots):
            try:
                slot(value)
            except Exception:
                # One broken listener must not stop the others or the caller.
                log.exception("listener %r failed", slot)
