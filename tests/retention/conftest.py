"""Retention tests read the server's SQLite file directly (``rows``), as an
operator (or a thief) would. Servers, databases and service URLs come from
the suite's plugin (``tests/support``)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any


def rows(db_path: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Read the server's SQLite file directly, as an operator (or a thief) would."""
    with sqlite3.connect(db_path) as conn:
        return list(conn.execute(sql, args))
