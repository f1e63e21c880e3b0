"""What a platform's window lister returns, apart from the title rules.

Its own module so the per-platform listers (X11, Windows, macOS) and the
title detector that chooses among them do not import each other.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable
from typing import Protocol


@dataclasses.dataclass(frozen=True, slots=True)
class TopWindow:
    window_id: Hashable
    title: str
    focused: bool = False


class WindowLister(Protocol):
    def list_windows(self) -> list[TopWindow] | None:
        """Top-level windows with titles, or None when the platform cannot tell."""
        ...
