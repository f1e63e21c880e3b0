"""A keyring backend that keeps its entries in a JSON file, for keychain helper tests.

The keychain helper (``platform/keychain_process.py``) is a separate
process, so the in-memory keyring of ``tests/conftest.py`` cannot reach it.
A child started with ``PYTHON_KEYRING_BACKEND=tests.desktop.keychain_file.FileKeyring``
and ``KEYCHAIN_FILE=<path>`` uses this instead; every call is also logged in
the file (operation and the child's argv), so a test can see how many
processes read the keychain and what their command lines held.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import keyring.backend
import keyring.errors


def _load(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {"items": {}, "calls": []}
    data: dict[str, Any] = json.loads(path.read_text())
    return data


class FileKeyring(keyring.backend.KeyringBackend):
    priority = 1

    @property
    def _path(self) -> Path:
        return Path(os.environ["KEYCHAIN_FILE"])

    def _record(self, op: str) -> dict[str, Any]:
        data = _load(self._path)
        data["calls"].append({"op": op, "argv": sys.argv, "env": dict(os.environ)})
        return data

    def get_password(self, service: str, username: str) -> str | None:
        data = self._record("get")
        self._path.write_text(json.dumps(data))
        value = data["items"].get(f"{service}\n{username}")
        return value if isinstance(value, str) else None

    def set_password(self, service: str, username: str, password: str) -> None:
        data = self._record("set")
        data["items"][f"{service}\n{username}"] = password
        self._path.write_text(json.dumps(data))

    def delete_password(self, service: str, username: str) -> None:
        data = self._record("delete")
        key = f"{service}\n{username}"
        if key not in data["items"]:
            self._path.write_text(json.dumps(data))
            raise keyring.errors.PasswordDeleteError(username)
        del data["items"][key]
        self._path.write_text(json.dumps(data))


def calls(path: Path) -> list[dict[str, Any]]:
    """Every keychain call the helpers made, oldest first."""
    found: list[dict[str, Any]] = _load(path)["calls"]
    return found
