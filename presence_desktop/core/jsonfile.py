"""Versioned JSON files that survive crashes, corruption and downgrades.

A settings file is written by one version of the app and may be read by an
older or newer one, or be half-written when the machine lost power. Writes go
to a temporary file that replaces the old one in a single ``os.replace``, so a
reader sees either the old or the new content. A file that cannot be read is
moved aside (never deleted) and the app starts from defaults.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import msgspec

log = logging.getLogger(__name__)

T = TypeVar("T", bound=msgspec.Struct)

Migration = Callable[[dict[str, Any]], dict[str, Any]]
"""Turns the raw dict of version ``n`` into the raw dict of version ``n + 1``."""

_encoder = msgspec.json.Encoder(order="deterministic")


@dataclasses.dataclass(frozen=True, slots=True)
class LoadResult:
    """What happened while loading, for logs and for telling the user."""

    problem: str = ""
    """Empty when the file was read as is or migrated; else why defaults were used."""
    backup: Path | None = None
    """Where the unreadable file was moved."""
    migrated_from: int | None = None


def load_versioned(
    path: Path,
    schema: type[T],
    *,
    version: int,
    migrations: Mapping[int, Migration],
) -> tuple[T, LoadResult]:
    """Read ``path`` as ``schema``; fall back to ``schema()`` on any problem.

    The file's ``version`` field says which schema wrote it (a missing field
    means 1). Older versions pass through ``migrations[n]`` for each step.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return schema(), LoadResult()
    except OSError as exc:
        # Unreadable (permissions, a directory in its place): do not try to move it.
        log.warning("cannot read %s (%s); using defaults", path, exc)
        return schema(), LoadResult(problem=f"cannot read the file: {exc.strerror or exc}")

    try:
        raw = msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        return schema(), _set_aside(path, "corrupt", f"not valid JSON ({exc})")
    if not isinstance(raw, dict):
        return schema(), _set_aside(path, "corrupt", "not a JSON object")
    found = raw.get("version", 1)
    if isinstance(found, bool) or not isinstance(found, int) or found < 1:
        return schema(), _set_aside(path, "corrupt", f"bad version field {found!r}")
    if found > version:
        return schema(), _set_aside(
            path, f"v{found}", f"written by a newer version of the app (schema {found})"
        )

    migrated_from = None
    if found < version:
        migrated_from = found
        for step in range(found, version):
            migrate = migrations.get(step)
            if migrate is None:
                return schema(), _set_aside(path, f"v{found}", f"no migration from schema {step}")
            try:
                raw = migrate(dict(raw))
            except Exception as exc:
                log.exception("migration of %s from schema %d failed", path, step)
                return schema(), _set_aside(path, f"v{found}", f"migration failed: {exc}")
        raw["version"] = version
    try:
        value = msgspec.convert(raw, schema)
    except msgspec.ValidationError as exc:
        return schema(), _set_aside(path, "corrupt", f"invalid content: {exc}")
    if migrated_from is not None:
        log.info("migrated %s from schema %d to %d", path, migrated_from, version)
    return value, LoadResult(migrated_from=migrated_from)


def _set_aside(path: Path, label: str, problem: str) -> LoadResult:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    backup = path.with_name(f"{path.name}.{label}-{stamp}.bak")
    try:
        os.replace(path, backup)
    except OSError as exc:
        log.warning("%s: %s; could not keep a backup (%s); using defaults", path, problem, exc)
        return LoadResult(problem=problem)
    log.warning("%s: %s; kept it as %s and started from defaults", path, problem, backup.name)
    return LoadResult(problem=problem, backup=backup)


def save_atomic(path: Path, value: msgspec.Struct) -> None:
    """Write ``value`` as indented JSON so that a crash never leaves half a file.

    ``mkstemp`` creates the file readable by its owner only, which suits the
    cached inbox (message texts) as well as the settings.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    body = msgspec.json.format(_encoder.encode(value), indent=2) + b"\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
